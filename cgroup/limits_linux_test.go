package cgroup

import (
	"context"
	"fmt"

	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-run/berth/internal/errdefs"
	"github.com/berth-run/berth/internal/testutil"
)

// realManager returns a Manager for a fresh cgroup on this machine's own
// hierarchy with controllers: a relative path on v1, an absolute one on
// v2 (see TestConformanceV2). Cleanup removes it and asserts it is gone.
func realManager(t *testing.T) *Manager {
	t.Helper()
	testutil.RequiresRoot(t)
	switch DetectMode() {
	case Legacy:
		return managerAt(false)(t)
	case Unified:
		return managerAt(true)(t)
	}
	testutil.Unavailable(t, "no cgroup file system is mounted")
	return nil
}

// requireLegacy skips a test of v1 files on a machine without v1.
func requireLegacy(t *testing.T) {
	t.Helper()
	testutil.RequiresRoot(t)
	if DetectMode() != Legacy {
		t.Skip("this machine has no cgroup v1 hierarchy")
	}
}

func TestOOMKill(t *testing.T) {
	m := realManager(t)
	res := &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr(int64(32 << 20)), Swap: ptr(int64(32 << 20))}}
	require.NoError(t, m.Create(res))
	n, err := m.OOMKillCount()
	require.NoError(t, err)
	assert.Zero(t, n)

	c := startChild(t, fmt.Sprintf("alloc:%d", 100<<20))
	require.NoError(t, m.Add(c.pid()))
	c.release(t)
	ws := c.wait(t, time.Minute)
	require.True(t, ws.Signaled() && ws.Signal() == syscall.SIGKILL, "a 100 MiB child in a 32 MiB cgroup: %v", ws)

	n, err = m.OOMKillCount()
	require.NoError(t, err)
	assert.GreaterOrEqual(t, n, uint64(1))
	st, err := m.Stats()
	require.NoError(t, err)
	assert.Equal(t, uint64(32<<20), st.Memory.Limit)
	// st.Memory.Failcnt is not checked: recent kernels count failures of
	// memory+swap charges nowhere, and memory+swap is what hit here.
	if m.Mode() == Legacy || fileExists(filepath.Join(m.Path(""), "memory.peak")) {
		assert.GreaterOrEqual(t, st.Memory.MaxUsage, uint64(30<<20))
	}
}

func TestPidsLimitForkBomb(t *testing.T) {
	m := realManager(t)
	require.NoError(t, m.Create(&specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptr(int64(8))}}))
	c := startChild(t, "forkbomb", "GOMAXPROCS=1")
	require.NoError(t, m.Add(c.pid()))
	c.release(t)
	var forked, eagain, other int
	line := c.line(t)
	_, err := fmt.Sscanf(line, "forked %d eagain %d other %d", &forked, &eagain, &other)
	require.NoError(t, err, "child said %q", line)
	t.Logf("fork bomb: %s", line)
	assert.Positive(t, eagain, "fork must fail with EAGAIN at the limit")
	assert.Zero(t, other, "no other fork error")

	st, err := m.Stats()
	require.NoError(t, err)
	assert.LessOrEqual(t, st.Pids.Current, uint64(8))
	assert.Equal(t, uint64(8), st.Pids.Limit)
	ev, err := readKV(filepath.Join(m.Path("pids"), "pids.events"))
	require.NoError(t, err)
	assert.Positive(t, ev["max"], "pids.events counts the refused forks")

	procs, err := m.Procs()
	require.NoError(t, err)
	assert.Equal(t, forked+1, len(procs), "the bomb and its copies")
	require.NoError(t, m.Kill(context.Background()))
	ws := c.wait(t, 30*time.Second)
	assert.True(t, ws.Signaled() && ws.Signal() == syscall.SIGKILL)
	procs, err = m.Procs()
	require.NoError(t, err)
	assert.Empty(t, procs)
}

// TestDockerCPUs: --cpus 0.5 is a quota of 50000us per 100000us period.
func TestDockerCPUs(t *testing.T) {
	quota, period, err := CPUQuota(0.5)
	require.NoError(t, err)
	res := &specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: &quota, Period: &period}}
	check := func(t *testing.T, m *Manager) {
		require.NoError(t, m.Create(res))
		if m.Mode() == Legacy {
			checkFiles(t, m, map[[2]string]string{
				{"cpu", "cpu.cfs_quota_us"}:  "50000",
				{"cpu", "cpu.cfs_period_us"}: "100000",
			})
		} else {
			checkFiles(t, m, map[[2]string]string{{"", "cpu.max"}: "50000 100000"})
		}
	}
	t.Run("real", func(t *testing.T) { check(t, realManager(t)) })
	t.Run("fakeV2", func(t *testing.T) { check(t, fakeManager(t, newFakeV2(t))) })
}

// snapshot reads every readable, writable file of m's directories: the
// settings a refused call must leave alone.
func snapshot(t *testing.T, m *Manager) map[string]string {
	t.Helper()
	snap := make(map[string]string)
	for _, h := range m.hiers {
		ents, err := os.ReadDir(h.dir)
		require.NoError(t, err)
		for _, e := range ents {
			info, err := e.Info()
			if err != nil || e.IsDir() || info.Mode().Perm()&0o200 == 0 || info.Mode().Perm()&0o444 == 0 {
				continue
			}
			b, err := os.ReadFile(filepath.Join(h.dir, e.Name()))
			if err != nil {
				continue
			}
			snap[filepath.Join(h.dir, e.Name())] = string(b)
		}
	}
	return snap
}

func TestBadInputChangesNothing(t *testing.T) {
	m := realManager(t)
	require.NoError(t, m.Create(&specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: ptr(int64(64 << 20))},
		Pids:   &specs.LinuxPids{Limit: ptr(int64(20))},
	}))
	before := snapshot(t, m)
	require.NotEmpty(t, before)
	for _, bad := range badResources() {
		assert.ErrorIs(t, m.Update(bad), errdefs.ErrInvalid, "%+v", bad)
	}
	assert.Equal(t, before, snapshot(t, m))

	// A refused Create makes no directory.
	m2 := realManager(t)
	for _, bad := range badResources() {
		assert.ErrorIs(t, m2.Create(bad), errdefs.ErrInvalid)
		assert.False(t, m2.Exists())
	}
	assert.ErrorIs(t, m.Add(0), errdefs.ErrInvalid)
	assert.ErrorIs(t, m.Add(-4), errdefs.ErrInvalid)
}

func TestStatsReal(t *testing.T) {
	m := realManager(t)
	require.NoError(t, m.Create(nil))
	c := startChild(t, fmt.Sprintf("alloc:%d", 16<<20))
	require.NoError(t, m.Add(c.pid()))
	c.release(t)
	assert.True(t, strings.HasPrefix(c.line(t), "survived"))
	c.wait(t, 30*time.Second)
	st, err := m.Stats()
	require.NoError(t, err)
	t.Logf("stats: %+v", *st)
	assert.Positive(t, st.CPU.UsageNanos)
	assert.LessOrEqual(t, st.CPU.UserNanos+st.CPU.SystemNanos, st.CPU.UsageNanos+20_000_000)
	if m.Mode() == Legacy || fileExists(filepath.Join(m.Path(""), "memory.peak")) { // v2: Linux >= 5.19
		assert.GreaterOrEqual(t, st.Memory.MaxUsage, uint64(16<<20))
	}
	assert.Zero(t, st.Memory.Limit, "unlimited")
	assert.Zero(t, st.Pids.Limit, "unlimited")
	assert.NotEmpty(t, st.Memory.Stat)
	if m.Mode() == Legacy {
		assert.NotEmpty(t, st.CPU.PerCPUNanos)
	}
}

// TestV1MemorySwapOrder moves memory and memory+swap up and down: the
// kernel wants memory <= memory+swap after every single write.
func TestV1MemorySwapOrder(t *testing.T) {
	requireLegacy(t)
	m := realManager(t)
	require.NoError(t, m.Create(nil))
	dir := m.Path("memory")
	if !fileExists(filepath.Join(dir, "memory.memsw.limit_in_bytes")) {
		t.Skip("kernel without swap accounting (memory.memsw.*): swap limits are ignored there")
	}
	set := func(limit, swap int64) error {
		return m.Update(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit, Swap: &swap}})
	}
	check := func(limit, swap string) {
		t.Helper()
		checkFiles(t, m, map[[2]string]string{
			{"memory", "memory.limit_in_bytes"}:       limit,
			{"memory", "memory.memsw.limit_in_bytes"}: swap,
		})
	}
	require.NoError(t, set(64<<20, 128<<20))
	check("67108864", "134217728")
	require.NoError(t, set(256<<20, 512<<20)) // both up: memory+swap first
	check("268435456", "536870912")
	require.NoError(t, set(32<<20, 48<<20)) // both down: memory first
	check("33554432", "50331648")
	require.NoError(t, set(96<<20, 96<<20)) // memory above the old memory+swap
	check("100663296", "100663296")
	require.NoError(t, m.Update(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr(int64(-1))}}))
	unlimited, err := readString(filepath.Join(dir, "memory.limit_in_bytes"))
	require.NoError(t, err)
	check(unlimited, unlimited) // -1 lifts memory+swap too
	// memory+swap below an unlimited memory: the kernel refuses.
	err = m.Update(&specs.LinuxResources{Memory: &specs.LinuxMemory{Swap: ptr(int64(200 << 20))}})
	assert.ErrorIs(t, err, errdefs.ErrInvalid)
}

// TestV1OCIValidationMemory is runtime-tools' linux_cgroups_memory case.
func TestV1OCIValidationMemory(t *testing.T) {
	requireLegacy(t)
	for _, c := range []struct {
		limit      int64
		swappiness uint64
	}{{50593792, 10}, {151781376, 100}} {
		m := realManager(t)
		v := c.limit
		require.NoError(t, m.Create(&specs.LinuxResources{Memory: &specs.LinuxMemory{
			Limit: &v, Reservation: &v, Swap: &v, Kernel: &v, KernelTCP: &v,
			Swappiness: &c.swappiness, DisableOOMKiller: ptr(true),
		}}))
		s := fmt.Sprint(v)
		want := map[[2]string]string{
			{"memory", "memory.limit_in_bytes"}:      s,
			{"memory", "memory.soft_limit_in_bytes"}: s,
			{"memory", "memory.swappiness"}:          fmt.Sprint(c.swappiness),
		}
		dir := m.Path("memory")
		if fileExists(filepath.Join(dir, "memory.memsw.limit_in_bytes")) {
			want[[2]string{"memory", "memory.memsw.limit_in_bytes"}] = s
		}
		if fileExists(filepath.Join(dir, "memory.kmem.tcp.limit_in_bytes")) {
			want[[2]string{"memory", "memory.kmem.tcp.limit_in_bytes"}] = s
		}
		checkFiles(t, m, want)
		oc, err := readKV(filepath.Join(dir, "memory.oom_control"))
		require.NoError(t, err)
		assert.Equal(t, uint64(1), oc["oom_kill_disable"])
	}
}

// TestV1OCIValidationCPU is runtime-tools' linux_cgroups_cpus case (with
// realtime values a child of the root may take).
func TestV1OCIValidationCPU(t *testing.T) {
	requireLegacy(t)
	m := realManager(t)
	require.NoError(t, m.Create(&specs.LinuxResources{CPU: &specs.LinuxCPU{
		Shares: ptr(uint64(2048)), Period: ptr(uint64(500000)), Quota: ptr(int64(200000)),
		Cpus: "0-1", Mems: "0",
	}}))
	checkFiles(t, m, map[[2]string]string{
		{"cpu", "cpu.shares"}:        "2048",
		{"cpu", "cpu.cfs_period_us"}: "500000",
		{"cpu", "cpu.cfs_quota_us"}:  "200000",
		{"cpuset", "cpuset.cpus"}:    "0-1",
		{"cpuset", "cpuset.mems"}:    "0",
	})
	// Empty CPU resources change nothing.
	require.NoError(t, m.Update(&specs.LinuxResources{CPU: &specs.LinuxCPU{}}))

	// Realtime: the kernel wants a parent with enough rt runtime, so this
	// cgroup hangs directly below the root.
	if !fileExists(filepath.Join(m.hier("cpu").mount, "cpu.rt_runtime_us")) {
		assert.ErrorIs(t, m.Update(&specs.LinuxResources{CPU: &specs.LinuxCPU{RealtimeRuntime: ptr(int64(1000))}}), errdefs.ErrNotSupported)
		return
	}
	rt, err := New("/" + uniqueName(t))
	require.NoError(t, err)
	cleanupCgroup(t, rt)
	require.NoError(t, rt.Create(&specs.LinuxResources{CPU: &specs.LinuxCPU{
		RealtimePeriod: ptr(uint64(1000000)), RealtimeRuntime: ptr(int64(10000)),
	}}))
	checkFiles(t, rt, map[[2]string]string{
		{"cpu", "cpu.rt_period_us"}:  "1000000",
		{"cpu", "cpu.rt_runtime_us"}: "10000",
	})
	// A period below the runtime must come after the runtime shrinks:
	// the plan retries the refused write.
	require.NoError(t, rt.Update(&specs.LinuxResources{CPU: &specs.LinuxCPU{
		RealtimePeriod: ptr(uint64(5000)), RealtimeRuntime: ptr(int64(4000)),
	}}))
	checkFiles(t, rt, map[[2]string]string{
		{"cpu", "cpu.rt_period_us"}:  "5000",
		{"cpu", "cpu.rt_runtime_us"}: "4000",
	})
}

// TestV1CpusetInherit: cpuset directories made on the way get the parent's
// cpus and mems, so a process can join the leaf.
func TestV1CpusetInherit(t *testing.T) {
	requireLegacy(t)
	m := realManager(t)
	h := m.hier("cpuset")
	if h == nil {
		t.Skip("no cpuset hierarchy")
	}
	require.NoError(t, m.Create(nil))
	parentCpus, err := readString(filepath.Join(h.base, "cpuset.cpus"))
	require.NoError(t, err)
	for d := h.dir; d != h.base; d = filepath.Dir(d) {
		got, err := readString(filepath.Join(d, "cpuset.cpus"))
		require.NoError(t, err)
		assert.Equal(t, parentCpus, got, d)
		mems, err := readString(filepath.Join(d, "cpuset.mems"))
		require.NoError(t, err)
		assert.NotEmpty(t, mems, d)
	}
	c := startChild(t, "sleep")
	require.NoError(t, m.Add(c.pid()))
}

func TestV1Devices(t *testing.T) {
	requireLegacy(t)
	m := realManager(t)
	res := &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		{Allow: true, Type: "c", Major: ptr(int64(1)), Minor: ptr(int64(3)), Access: "rwm"}, // /dev/null
		{Allow: true, Type: "a", Major: ptr(int64(10)), Minor: ptr(int64(229)), Access: "rw"},
	}}
	require.NoError(t, m.Create(res))
	list, err := readString(filepath.Join(m.Path("devices"), "devices.list"))
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"c 1:3 rwm", "b 10:229 rw", "c 10:229 rw"}, strings.Split(list, "\n"))

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
}

func TestV1BlockIO(t *testing.T) {
	requireLegacy(t)
	m := realManager(t)
	major, minor := blockDevice(t)
	res := &specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{
		Weight:     ptr(uint16(500)),
		LeafWeight: ptr(uint16(300)), // CFQ only: ignored without it
		ThrottleReadBpsDevice: []specs.LinuxThrottleDevice{
			{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: major, Minor: minor}, Rate: 1048576},
		},
		ThrottleWriteIOPSDevice: []specs.LinuxThrottleDevice{
			{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: major, Minor: minor}, Rate: 300},
		},
	}}
	require.NoError(t, m.Create(res))
	dir := m.Path("blkio")
	weight := "blkio.weight"
	if !fileExists(filepath.Join(dir, weight)) {
		weight = "blkio.bfq.weight"
	}
	w, err := readString(filepath.Join(dir, weight))
	require.NoError(t, err)
	assert.Contains(t, w, "500")
	dev := fmt.Sprintf("%d:%d", major, minor)
	checkFiles(t, m, map[[2]string]string{
		{"blkio", "blkio.throttle.read_bps_device"}:   dev + " 1048576",
		{"blkio", "blkio.throttle.write_iops_device"}: dev + " 300",
	})
}

// blockDevice returns a whole disk's numbers from /sys/block.
func blockDevice(t *testing.T) (int64, int64) {
	t.Helper()
	ents, _ := os.ReadDir("/sys/block")
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "loop") || strings.HasPrefix(e.Name(), "zram") || strings.HasPrefix(e.Name(), "ram") {
			continue
		}
		s, err := readString(filepath.Join("/sys/block", e.Name(), "dev"))
		if err != nil {
			continue
		}
		var ma, mi int64
		if _, err := fmt.Sscanf(s, "%d:%d", &ma, &mi); err == nil {
			return ma, mi
		}
	}
	t.Skip("no block device")
	return 0, 0
}

// TestV1Unsupported: what this v1 machine cannot enforce is refused with
// ErrNotSupported, before anything is made; tags of absent net
// controllers are skipped.
func TestV1Unsupported(t *testing.T) {
	requireLegacy(t)
	m := realManager(t)
	err := m.Create(&specs.LinuxResources{Unified: map[string]string{"memory.high": "1000000"}})
	assert.ErrorIs(t, err, errdefs.ErrNotSupported)
	assert.False(t, m.Exists())

	if m.hier("hugetlb") == nil {
		sizes := sortedKeys(hugePageSizes())
		if len(sizes) > 0 {
			err = m.Create(&specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: sizes[0], Limit: 2 << 30}}})
			assert.ErrorIs(t, err, errdefs.ErrNotSupported)
			assert.False(t, m.Exists(), "a refused Create removes what it made")
		}
	}
	err = m.Create(&specs.LinuxResources{Memory: &specs.LinuxMemory{UseHierarchy: ptr(false)}})
	if err != nil {
		assert.ErrorIs(t, err, errdefs.ErrNotSupported)
		assert.False(t, m.Exists())
	}
	// A page size the machine does not have is invalid input.
	err = m.Create(&specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "3MB", Limit: 1}}})
	assert.ErrorIs(t, err, errdefs.ErrInvalid)

	res := &specs.LinuxResources{Network: &specs.LinuxNetwork{ClassID: ptr(uint32(255)),
		Priorities: []specs.LinuxInterfacePriority{{Name: "lo", Priority: 10}}}}
	require.NoError(t, m.Create(res))
	if h := m.hier("net_cls"); h != nil {
		checkFiles(t, m, map[[2]string]string{{"net_cls", "net_cls.classid"}: "255"})
	} else {
		t.Log("net_cls is not mounted here: class ID skipped")
	}
}

// TestV1CoMounted: with cpu and cpuacct co-mounted ("cpu,cpuacct" plus
// symlinks), both controllers name one directory.
func TestV1CoMounted(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"cpu,cpuacct", "memory", "net_cls,net_prio"} {
		require.NoError(t, os.Mkdir(filepath.Join(root, d), 0o755))
	}
	for link, target := range map[string]string{"cpu": "cpu,cpuacct", "cpuacct": "cpu,cpuacct", "net_cls": "net_cls,net_prio"} {
		require.NoError(t, os.Symlink(target, filepath.Join(root, link)))
	}
	m, err := New("/berth/abc", WithRoot(root))
	require.NoError(t, err)
	assert.Equal(t, Legacy, m.Mode())
	assert.Len(t, m.hiers, 3)
	assert.Equal(t, filepath.Join(root, "cpu,cpuacct", "berth", "abc"), m.Path("cpu"))
	assert.Equal(t, m.Path("cpu"), m.Path("cpuacct"))
	assert.Equal(t, filepath.Join(root, "memory", "berth", "abc"), m.Path("memory"))
	assert.Equal(t, filepath.Join(root, "net_cls,net_prio", "berth", "abc"), m.Path("net_prio"))
	assert.Empty(t, m.Path("pids"))
}
