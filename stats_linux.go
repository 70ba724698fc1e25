package berth

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

func (c *Container) stats(ctx context.Context) (*ContainerStats, error) {
	r := c.rt
	st, err := r.reconcile(ctx, c.rec.ID)
	if err != nil {
		return nil, err
	}
	s := &ContainerStats{Read: time.Now(), Networks: map[string]NetworkStats{}}
	if st.Status != StatusRunning && st.Status != StatusPaused {
		return s, nil
	}
	cg, err := r.liveCgroup(c.rec, st)
	if err != nil {
		return nil, err
	}
	cs, err := cg.Stats()
	if err != nil {
		return nil, fmt.Errorf("stats of container %s: %w", c.rec.Name, err)
	}
	s.SystemNanos, s.OnlineCPUs, err = systemCPU()
	if err != nil {
		return nil, err
	}
	s.Running, s.Cgroup = true, cs
	s.CPUNanos = cs.CPU.UsageNanos
	s.MemoryUsage = cs.Memory.Usage
	if cs.Memory.InactiveFile < s.MemoryUsage {
		s.MemoryUsage -= cs.Memory.InactiveFile
	}
	s.MemoryLimit = cs.Memory.Limit
	if host := uint64(memTotal()); s.MemoryLimit == 0 || host > 0 && s.MemoryLimit > host {
		s.MemoryLimit = host
	}
	s.Pids = cs.Pids.Current
	s.BlockRead, s.BlockWrite = cs.BlkIO.ReadBytes, cs.BlkIO.WriteBytes
	if networkMode(&c.rec.Spec) != "host" {
		if nets, err := readNetDev(fmt.Sprintf("/proc/%d/net/dev", st.Init.PID)); err == nil && st.Init.Alive() {
			s.Networks = nets
		}
	}
	return s, nil
}

// systemCPU is the host's total CPU time in nanoseconds (the "cpu" line
// of /proc/stat, as docker's SystemUsage) and the number of online CPUs.
func systemCPU() (uint64, int, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	var total uint64
	cpus := 0
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[0], "cpu") {
			continue
		}
		if f[0] != "cpu" {
			cpus++
			continue
		}
		// user nice system idle iowait irq softirq steal (guest time is
		// already in user and nice).
		for i := 1; i < len(f) && i <= 8; i++ {
			v, _ := strconv.ParseUint(f[i], 10, 64)
			total += v
		}
	}
	return total * (uint64(time.Second) / clockTicks), cpus, nil
}

// readNetDev reads the interface counters of /proc/PID/net/dev (the
// process's network namespace), leaving out the loopback interface.
func readNetDev(path string) (map[string]NetworkStats, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := map[string]NetworkStats{}
	for _, line := range strings.Split(string(b), "\n") {
		name, rest, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		name = strings.TrimSpace(name)
		f := strings.Fields(rest)
		if name == "lo" || len(f) < 16 {
			continue
		}
		n := func(i int) uint64 { v, _ := strconv.ParseUint(f[i], 10, 64); return v }
		out[name] = NetworkStats{RxBytes: n(0), RxPackets: n(1), RxErrors: n(2), RxDropped: n(3),
			TxBytes: n(8), TxPackets: n(9), TxErrors: n(10), TxDropped: n(11)}
	}
	return out, nil
}
