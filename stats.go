package berth

import (
	"context"
	"time"

	"github.com/berth-run/berth/cgroup"
)

// ContainerStats is one sample of a container's resource use, what
// `docker stats` computes its columns from. Two samples give the CPU
// use between them (CPUPercent).
type ContainerStats struct {
	// Read is when the sample was taken.
	Read time.Time
	// Running is false for a container that is not running; its numbers
	// are then zero.
	Running bool
	// CPUNanos is the CPU time the container has used; SystemNanos the
	// host's total CPU time (all CPUs) at the same moment; OnlineCPUs
	// the number of CPUs.
	CPUNanos, SystemNanos uint64
	OnlineCPUs            int
	// MemoryUsage is the memory the container uses without the page
	// cache the kernel can drop first (docker's MEM USAGE);
	// MemoryLimit is its limit, or the host's memory when it has none.
	MemoryUsage, MemoryLimit uint64
	// Pids is the number of tasks (threads) in the container.
	Pids uint64
	// BlockRead and BlockWrite are the bytes read from and written to
	// block devices.
	BlockRead, BlockWrite uint64
	// Networks are the counters of the interfaces of the container's
	// network namespace (loopback left out); none with the host's
	// network.
	Networks map[string]NetworkStats
	// Cgroup is the cgroup's raw statistics (nil when not running).
	Cgroup *cgroup.Stats
}

// NetworkStats are the counters of one network interface.
type NetworkStats struct {
	RxBytes, RxPackets, RxErrors, RxDropped uint64
	TxBytes, TxPackets, TxErrors, TxDropped uint64
}

// Stats takes one sample of the container's resource use.
func (c *Container) Stats(ctx context.Context) (*ContainerStats, error) { return c.stats(ctx) }

// CPUPercent is the container's CPU use between prev and s as docker
// computes it: its share of the host's CPU time, times the number of
// CPUs (100% is one CPU busy). Zero when prev is nil or no time passed.
func (s *ContainerStats) CPUPercent(prev *ContainerStats) float64 {
	if prev == nil || s.CPUNanos < prev.CPUNanos || s.SystemNanos <= prev.SystemNanos {
		return 0
	}
	cpu := float64(s.CPUNanos - prev.CPUNanos)
	sys := float64(s.SystemNanos - prev.SystemNanos)
	return cpu / sys * float64(s.OnlineCPUs) * 100
}

// MemoryPercent is MemoryUsage over MemoryLimit, in percent.
func (s *ContainerStats) MemoryPercent() float64 {
	if s.MemoryLimit == 0 {
		return 0
	}
	return float64(s.MemoryUsage) / float64(s.MemoryLimit) * 100
}

// NetIO sums the bytes received and sent on all interfaces.
func (s *ContainerStats) NetIO() (rx, tx uint64) {
	for _, n := range s.Networks {
		rx += n.RxBytes
		tx += n.TxBytes
	}
	return rx, tx
}
