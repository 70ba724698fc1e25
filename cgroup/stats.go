package cgroup

// Stats is a snapshot of a cgroup's resource use (docker stats). Values of
// a controller the cgroup does not have are zero.
type Stats struct {
	Memory MemoryStats
	CPU    CPUStats
	Pids   PidsStats
	BlkIO  BlkIOStats
}

// MemoryStats is the memory controller's view, in bytes.
type MemoryStats struct {
	// Usage is the memory charged now, page cache included
	// (v1 memory.usage_in_bytes, v2 memory.current).
	Usage uint64
	// MaxUsage is the peak of Usage (v1 memory.max_usage_in_bytes, v2
	// memory.peak on Linux >= 5.19, else 0).
	MaxUsage uint64
	// Limit is the memory limit, 0 when unlimited
	// (v1 memory.limit_in_bytes, v2 memory.max).
	Limit uint64
	// Cache is the page cache: v1 total_cache, v2 file.
	Cache uint64
	// RSS is anonymous memory: v1 total_rss, v2 anon.
	RSS uint64
	// InactiveFile is the page cache the kernel may reclaim first; docker
	// shows Usage - InactiveFile as the container's usage.
	InactiveFile uint64
	// Swap is the swap in use (v1 memory.memsw.usage_in_bytes minus
	// Usage, v2 memory.swap.current).
	Swap uint64
	// SwapLimit is the memory+swap limit (v1 memory.memsw.limit_in_bytes;
	// v2 memory.max + memory.swap.max), 0 when unlimited or unknown.
	SwapLimit uint64
	// Failcnt is how often usage hit the limit (v1 memory.failcnt plus
	// memory.memsw.failcnt; v2 memory.events "max").
	Failcnt uint64
	// Stat is memory.stat as read, key to value.
	Stat map[string]uint64
}

// CPUStats is the CPU time the cgroup used, in nanoseconds, and its CFS
// throttling.
type CPUStats struct {
	// UsageNanos is the total CPU time (v1 cpuacct.usage, v2 usage_usec).
	UsageNanos uint64
	// UserNanos and SystemNanos split UsageNanos (v1 cpuacct.usage_user
	// and usage_sys, or cpuacct.stat; v2 user_usec and system_usec).
	UserNanos   uint64
	SystemNanos uint64
	// PerCPUNanos is the CPU time per CPU (v1 cpuacct.usage_percpu;
	// nil on v2, which does not account it).
	PerCPUNanos []uint64
	// Periods is the number of CFS periods with a quota that elapsed,
	// ThrottledPeriods how many of them hit the quota, and ThrottledNanos
	// the total time the cgroup was throttled (cpu.stat).
	Periods          uint64
	ThrottledPeriods uint64
	ThrottledNanos   uint64
}

// PidsStats is the pids controller's view.
type PidsStats struct {
	// Current is the number of tasks (threads) in the cgroup.
	Current uint64
	// Limit is pids.max, 0 when unlimited.
	Limit uint64
}

// BlkIOStats is the block I/O the cgroup did, summed over devices.
type BlkIOStats struct {
	ReadBytes  uint64
	WriteBytes uint64
	ReadOps    uint64
	WriteOps   uint64
	// Devices has the same numbers per device.
	Devices []BlkIODeviceStats
}

// BlkIODeviceStats is the block I/O on one device.
type BlkIODeviceStats struct {
	Major, Minor int64
	ReadBytes    uint64
	WriteBytes   uint64
	ReadOps      uint64
	WriteOps     uint64
}
