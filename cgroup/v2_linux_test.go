package cgroup

import (
	"path/filepath"
	"strconv"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/berth-run/berth/internal/errdefs"
	"github.com/berth-run/berth/internal/testutil"
)

// TestV2SubtreeControl: controllers are enabled from the nearest existing
// ancestor down to the leaf's parent, only those needed, only once.
func TestV2SubtreeControl(t *testing.T) {
	f := newFakeV2(t)
	m := fakeManager(t, f)
	h := m.hiers[0]
	require.NoError(t, m.Create(&specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptr(int64(10))}}))
	want := "cpuset cpu io memory pids"
	for d := filepath.Dir(h.dir); ; d = filepath.Dir(d) {
		assert.Equal(t, want, f.get(filepath.Join(d, "cgroup.subtree_control")), d)
		if d == f.root {
			break
		}
	}
	assert.Empty(t, f.get(filepath.Join(h.dir, "cgroup.subtree_control")), "the leaf enables nothing")
	assert.Equal(t, want, f.get(filepath.Join(h.dir, "cgroup.controllers")))
	assert.Equal(t, "10", f.get(filepath.Join(h.dir, "pids.max")))

	// A sibling needing nothing new writes no subtree_control at all.
	n := len(f.wrote())
	sib, err := New(filepath.Dir(m.Name())+"/sibling", WithRoot(f.root), withFS(f))
	require.NoError(t, err)
	require.NoError(t, sib.Create(&specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptr(int64(10))}}))
	for _, w := range f.wrote()[n:] {
		assert.NotContains(t, w, "cgroup.subtree_control", "nothing new to enable")
	}
	// An Update needing a controller Create did not enable, by a Manager
	// that did not create the cgroup: with a relative path it is enabled
	// from the caller's cgroup down.
	other, err := New(sib.Name(), WithRoot(f.root), withFS(f))
	require.NoError(t, err)
	require.NoError(t, other.Update(&specs.LinuxResources{Rdma: map[string]specs.LinuxRdma{"mlx5_0": {HcaHandles: ptr(uint32(3))}}}))
	assert.Equal(t, "mlx5_0 hca_handle=3 hca_object=max", f.get(filepath.Join(sib.hiers[0].dir, "rdma.max")))
	assert.Equal(t, want+" rdma", f.get(filepath.Join(f.root, "cgroup.subtree_control")))
	// cpuset is among the controllers every cgroup gets, for docker update --cpuset-cpus.
	require.NoError(t, sib.Update(&specs.LinuxResources{CPU: &specs.LinuxCPU{Cpus: "1"}}))
	assert.Equal(t, "1", f.get(filepath.Join(sib.hiers[0].dir, "cpuset.cpus")))
	require.NoError(t, sib.Delete())
}

// TestV2SubtreeControlAbsolute: with an absolute path the Manager writes
// subtree_control only in what its Create made and the nearest existing
// ancestor; another Manager only in the leaf's parent.
func TestV2SubtreeControlAbsolute(t *testing.T) {
	f := newFakeV2(t)
	require.NoError(t, f.mkdir(filepath.Join(f.root, "system.slice")))
	name := "/system.slice/" + uniqueName(t)
	top, err := New(name, WithRoot(f.root), withFS(f))
	require.NoError(t, err)
	cleanupCgroup(t, top)
	m, err := New(name+"/c", WithRoot(f.root), withFS(f))
	require.NoError(t, err)

	// system.slice offers nothing (the root enables nothing) and is not
	// berth's: its parent is never written.
	err = m.Create(&specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptr(int64(5))}})
	assert.ErrorIs(t, err, errdefs.ErrNotSupported)
	assert.Contains(t, err.Error(), "system.slice does not offer it")
	assert.Empty(t, f.get(filepath.Join(f.root, "cgroup.subtree_control")))

	require.NoError(t, f.write(filepath.Join(f.root, "cgroup.subtree_control"), "+pids +memory"))
	require.NoError(t, m.Create(&specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptr(int64(5))}}))
	assert.Equal(t, "memory pids", f.get(filepath.Join(f.root, "system.slice", "cgroup.subtree_control")),
		"the nearest existing ancestor gets what it offers")
	assert.Equal(t, "5", f.get(filepath.Join(m.Path(""), "pids.max")))

	other, err := New(name+"/c", WithRoot(f.root), withFS(f))
	require.NoError(t, err)
	err = other.Update(&specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: ptr(uint64(100))}})
	assert.ErrorIs(t, err, errdefs.ErrNotSupported, "cpu is not offered above, and nothing above the leaf's parent is written")
	require.NoError(t, other.Update(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr(int64(1 << 20))}}))
}

// TestV2FirstParentBusy: below a cgroup that holds processes (the usual
// caller's own cgroup on a v2 system), the kernel enables no controller;
// a cgroup without limits still works, limits fail and explain why.
func TestV2FirstParentBusy(t *testing.T) {
	f := newFakeV2(t)
	require.NoError(t, f.write(filepath.Join(f.root, "cgroup.subtree_control"), "+cpu +memory +pids"))
	own := filepath.Join(f.root, "session.scope")
	require.NoError(t, f.mkdir(own))
	c := startChild(t, "sleep")
	require.NoError(t, f.write(filepath.Join(own, "cgroup.procs"), strconv.Itoa(c.pid())))

	m, err := New("/session.scope/berth/c", WithRoot(f.root), withFS(f))
	require.NoError(t, err)
	err = m.Create(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr(int64(64 << 20))}})
	assert.ErrorIs(t, err, errdefs.ErrNotSupported)
	assert.Contains(t, err.Error(), "absolute cgroup path")
	assert.False(t, m.Exists(), "a failed Create removes what it made")
	assert.NoDirExists(t, filepath.Join(own, "berth"))

	require.NoError(t, m.Create(nil), "a cgroup without limits needs no controller")
	require.NoError(t, m.Delete())
	require.NoError(t, (&Manager{path: "b", mode: Unified, fs: f, hiers: []hierarchy{{mount: f.root, dir: filepath.Join(own, "berth")}}}).Delete())
}

func TestV2Resources(t *testing.T) {
	f := newFakeV2(t)
	m := fakeManager(t, f)
	dir := m.Path("")
	res := &specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: ptr(int64(64 << 20)), Swap: ptr(int64(96 << 20)), Reservation: ptr(int64(16 << 20)),
			Swappiness: ptr(uint64(10)), DisableOOMKiller: ptr(true), Kernel: ptr(int64(1 << 20)), KernelTCP: ptr(int64(1 << 20))},
		CPU:  &specs.LinuxCPU{Shares: ptr(uint64(1024)), Quota: ptr(int64(20000)), Burst: ptr(uint64(1000)), Cpus: "0-1", Mems: "0"},
		Pids: &specs.LinuxPids{Limit: ptr(int64(0))},
		BlockIO: &specs.LinuxBlockIO{
			Weight:       ptr(uint16(500)),
			LeafWeight:   ptr(uint16(500)),
			WeightDevice: []specs.LinuxWeightDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 0}, Weight: ptr(uint16(1000))}},
			ThrottleReadBpsDevice: []specs.LinuxThrottleDevice{
				{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 0}, Rate: 1048576}},
			ThrottleWriteBpsDevice: []specs.LinuxThrottleDevice{
				{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 0}, Rate: 0}},
			ThrottleReadIOPSDevice: []specs.LinuxThrottleDevice{
				{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 0}, Rate: 100},
				{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 16}, Rate: 200}},
		},
		Rdma:    map[string]specs.LinuxRdma{"mlx5_0": {HcaHandles: ptr(uint32(3))}},
		Network: &specs.LinuxNetwork{ClassID: ptr(uint32(7))}, // no v2 controller: skipped
		Unified: map[string]string{"memory.high": "50000000"},
	}
	sizes := sortedKeys(hugePageSizes())
	if len(sizes) > 0 {
		res.HugepageLimits = []specs.LinuxHugepageLimit{{Pagesize: sizes[0], Limit: 2 << 30}}
	}
	require.NoError(t, m.Create(res))
	want := map[string]string{
		"memory.max":      "67108864",
		"memory.swap.max": "33554432", // memory+swap minus memory
		"memory.low":      "16777216",
		"memory.high":     "50000000",
		"cpu.weight":      "39",
		"cpu.max":         "20000 100000",
		"cpu.max.burst":   "1000",
		"cpuset.cpus":     "0-1",
		"cpuset.mems":     "0",
		"pids.max":        "max",
		"io.weight":       "default 4950\n8:0 10000",
		"io.max":          "8:0 rbps=1048576 wbps=max riops=100\n8:16 riops=200",
		"rdma.max":        "mlx5_0 hca_handle=3 hca_object=max",
	}
	if len(sizes) > 0 {
		want["hugetlb."+sizes[0]+".max"] = "2147483648"
		want["hugetlb."+sizes[0]+".rsvd.max"] = "2147483648"
	}
	for file, v := range want {
		assert.Equal(t, v, f.get(filepath.Join(dir, file)), file)
	}

	// Update: -1 lifts memory and swap; a period alone keeps the quota.
	require.NoError(t, m.Update(&specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: ptr(int64(-1))},
		CPU:    &specs.LinuxCPU{Period: ptr(uint64(50000))},
	}))
	assert.Equal(t, "max", f.get(filepath.Join(dir, "memory.max")))
	assert.Equal(t, "max", f.get(filepath.Join(dir, "memory.swap.max")))
	assert.Equal(t, "20000 50000", f.get(filepath.Join(dir, "cpu.max")))
	require.NoError(t, m.Update(&specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: ptr(int64(-1)), Idle: ptr(int64(1))}}))
	assert.Equal(t, "max 50000", f.get(filepath.Join(dir, "cpu.max")))
	assert.Equal(t, "1", f.get(filepath.Join(dir, "cpu.idle")))

	// Swap alone needs a memory limit to subtract.
	err := m.Update(&specs.LinuxResources{Memory: &specs.LinuxMemory{Swap: ptr(int64(1 << 30))}})
	assert.ErrorIs(t, err, errdefs.ErrInvalid)
	require.NoError(t, m.Update(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr(int64(1 << 29))}}))
	require.NoError(t, m.Update(&specs.LinuxResources{Memory: &specs.LinuxMemory{Swap: ptr(int64(1 << 30))}}))
	assert.Equal(t, "536870912", f.get(filepath.Join(dir, "memory.swap.max")))

	// CheckBeforeUpdate refuses a limit below the usage.
	f.put(filepath.Join(dir, "memory.current"), "104857600")
	err = m.Update(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr(int64(50 << 20)), CheckBeforeUpdate: ptr(true)}})
	assert.ErrorIs(t, err, errdefs.ErrConflict)
	assert.Equal(t, "536870912", f.get(filepath.Join(dir, "memory.max")))

	// What v2 cannot do.
	for _, r := range []*specs.LinuxResources{
		{CPU: &specs.LinuxCPU{RealtimeRuntime: ptr(int64(1000))}},
		{Memory: &specs.LinuxMemory{UseHierarchy: ptr(false)}},
		{Unified: map[string]string{"nosuch.file": "1"}},
	} {
		assert.ErrorIs(t, m.Update(r), errdefs.ErrNotSupported, "%+v", r)
	}
	// A page size the machine lacks.
	assert.ErrorIs(t, m.Update(&specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "3MB"}}}), errdefs.ErrInvalid)
}

func TestV2Stats(t *testing.T) {
	f := newFakeV2(t)
	m := fakeManager(t, f)
	require.NoError(t, m.Create(nil))
	dir := m.Path("")
	for file, v := range map[string]string{
		"memory.current":      "1000",
		"memory.peak":         "5000",
		"memory.max":          "1048576",
		"memory.swap.current": "20",
		"memory.swap.max":     "1048576",
		"memory.events":       "low 0\nhigh 0\nmax 7\noom 2\noom_kill 2\noom_group_kill 0",
		"memory.stat":         "anon 300\nfile 600\ninactive_file 100\nkernel 50",
		"cpu.stat":            "usage_usec 3000\nuser_usec 2000\nsystem_usec 1000\nnr_periods 10\nnr_throttled 4\nthrottled_usec 500",
		"pids.current":        "3",
		"pids.max":            "max",
		"io.stat":             "8:16 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n8:0 rbytes=100 wbytes=200 rios=3 wios=4 dbytes=0 dios=0",
	} {
		f.put(filepath.Join(dir, file), v)
	}
	st, err := m.Stats()
	require.NoError(t, err)
	assert.Equal(t, MemoryStats{Usage: 1000, MaxUsage: 5000, Limit: 1048576, Cache: 600, RSS: 300, InactiveFile: 100,
		Swap: 20, SwapLimit: 2097152, Failcnt: 7,
		Stat: map[string]uint64{"anon": 300, "file": 600, "inactive_file": 100, "kernel": 50}}, st.Memory)
	assert.Equal(t, CPUStats{UsageNanos: 3000000, UserNanos: 2000000, SystemNanos: 1000000,
		Periods: 10, ThrottledPeriods: 4, ThrottledNanos: 500000}, st.CPU)
	assert.Equal(t, PidsStats{Current: 3}, st.Pids)
	assert.Equal(t, BlkIOStats{ReadBytes: 110, WriteBytes: 220, ReadOps: 4, WriteOps: 6, Devices: []BlkIODeviceStats{
		{Major: 8, Minor: 0, ReadBytes: 100, WriteBytes: 200, ReadOps: 3, WriteOps: 4},
		{Major: 8, Minor: 16, ReadBytes: 10, WriteBytes: 20, ReadOps: 1, WriteOps: 2},
	}}, st.BlkIO)
	n, err := m.OOMKillCount()
	require.NoError(t, err)
	assert.Equal(t, uint64(2), n)
}

// realV2Manager returns a Manager on a real cgroup2 hierarchy: the
// machine's own when /sys/fs/cgroup is cgroup2, else the cgroup2 tree of a
// hybrid machine.
func realV2Manager(t *testing.T) *Manager {
	t.Helper()
	testutil.RequiresRoot(t)
	if DetectMode() == Unified {
		return managerAt(true)(t)
	}
	const unified = "/sys/fs/cgroup/unified"
	if !fileExists(filepath.Join(unified, "cgroup.controllers")) {
		t.Skip("no cgroup2 hierarchy on this machine")
	}
	return managerAt(false, func() []Option { return []Option{WithRoot(unified)} })(t)
}

// TestV2Devices attaches real eBPF device programs and checks what a
// process in the cgroup may open.
func TestV2Devices(t *testing.T) {
	m := realV2Manager(t)
	require.NoError(t, m.Create(&specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		dev(true, "c", 1, 3, "rwm"), // /dev/null
		dev(true, "c", 1, 5, "w"),   // /dev/zero, write only
	}}))
	open := func(dev string) string {
		c := startChild(t, "open:"+dev)
		require.NoError(t, m.Add(c.pid()))
		c.release(t)
		out := c.line(t)
		c.wait(t, 30*time.Second)
		return out
	}
	assert.Equal(t, "ok", open("/dev/null"))
	assert.Contains(t, open("/dev/zero"), "operation not permitted")
	assert.Contains(t, open("/dev/urandom"), "operation not permitted")

	ids := attachedPrograms(t, m)
	require.Len(t, ids, 1)

	// Update replaces the program: one attached, the new rules apply.
	require.NoError(t, m.Update(&specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: true}}}))
	assert.Equal(t, "ok", open("/dev/zero"))
	newIDs := attachedPrograms(t, m)
	require.Len(t, newIDs, 1)
	assert.NotEqual(t, ids, newIDs)
}

func attachedPrograms(t *testing.T, m *Manager) []uint32 {
	t.Helper()
	fd, err := unix.Open(m.Path(""), unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	require.NoError(t, err)
	defer unix.Close(fd)
	ids, err := attachedDevicePrograms(fd)
	require.NoError(t, err)
	return ids
}
