package cgroup

import (
	"math"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-run/berth/internal/errdefs"
)

func TestCPUQuota(t *testing.T) {
	for cpus, want := range map[float64]int64{0.5: 50000, 1: 100000, 1.5: 150000, 0.01: 1000, 16: 1600000} {
		q, p, err := CPUQuota(cpus)
		require.NoError(t, err, cpus)
		assert.Equal(t, want, q, cpus)
		assert.Equal(t, DefaultCPUPeriod, p)
	}
	for _, bad := range []float64{0, -1, 0.001, math.NaN(), math.Inf(1)} {
		_, _, err := CPUQuota(bad)
		assert.ErrorIs(t, err, errdefs.ErrInvalid, "%v", bad)
	}
}

func TestConversions(t *testing.T) {
	for shares, w := range map[uint64]uint64{2: 1, 1: 1, 1024: 39, 512: 20, 262144: 10000, 1 << 30: 10000} {
		assert.Equal(t, w, sharesToWeight(shares), "shares %d", shares)
	}
	for blkio, w := range map[uint16]uint64{10: 1, 1000: 10000, 500: 4950} {
		assert.Equal(t, w, blkioToIOWeight(blkio), "blkio weight %d", blkio)
	}
	assert.Equal(t, "2MB", pageSizeName(2<<20))
	assert.Equal(t, "1GB", pageSizeName(1<<30))
	assert.Equal(t, "64KB", pageSizeName(64<<10))
}

func TestValidate(t *testing.T) {
	good := []*specs.LinuxResources{
		nil,
		{},
		{Memory: &specs.LinuxMemory{Limit: ptr(int64(-1)), Swap: ptr(int64(-1)), Reservation: ptr(int64(0))}},
		{Memory: &specs.LinuxMemory{Limit: ptr(int64(1 << 20)), Swap: ptr(int64(1 << 20)), Swappiness: ptr(uint64(math.MaxUint64))}},
		{CPU: &specs.LinuxCPU{Shares: ptr(uint64(1)), Quota: ptr(int64(-1)), Period: ptr(uint64(1000)), Cpus: "0-3,5,7-8", Mems: "0"}},
		{CPU: &specs.LinuxCPU{Shares: ptr(uint64(1 << 20)), Idle: ptr(int64(0))}},
		{CPU: &specs.LinuxCPU{Quota: ptr(int64(50000)), Burst: ptr(uint64(50000))}},
		{Pids: &specs.LinuxPids{Limit: ptr(int64(0))}},
		{Pids: &specs.LinuxPids{Limit: ptr(int64(-1))}},
		{BlockIO: &specs.LinuxBlockIO{Weight: ptr(uint16(10)), LeafWeight: ptr(uint16(1000))}},
		{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 1}, {Pagesize: "64KB"}}},
		{Devices: []specs.LinuxDeviceCgroup{{Allow: false}, {Allow: true, Type: "c", Major: ptr(int64(1)), Minor: ptr(int64(-1)), Access: "mr"}}},
		{Rdma: map[string]specs.LinuxRdma{"mlx5_1": {HcaHandles: ptr(uint32(3))}}},
	}
	for _, r := range good {
		assert.NoError(t, validate(r, Legacy), "%+v", r)
	}
	for _, r := range badResources() {
		assert.ErrorIs(t, validate(r, Legacy), errdefs.ErrInvalid, "%+v", r)
		assert.ErrorIs(t, validate(r, Unified), errdefs.ErrInvalid, "%+v", r)
	}
	more := []*specs.LinuxResources{
		{Memory: &specs.LinuxMemory{Reservation: ptr(int64(-2))}},
		{Memory: &specs.LinuxMemory{Swap: ptr(int64(0))}},
		{Memory: &specs.LinuxMemory{Limit: ptr(int64(-1)), Swap: ptr(int64(1 << 20))}},
		{Memory: &specs.LinuxMemory{Kernel: ptr(int64(0))}},
		{Memory: &specs.LinuxMemory{KernelTCP: ptr(int64(-3))}},
		{CPU: &specs.LinuxCPU{Quota: ptr(int64(999))}},
		{CPU: &specs.LinuxCPU{Quota: ptr(int64(0))}},
		{CPU: &specs.LinuxCPU{Period: ptr(uint64(1000001))}},
		{CPU: &specs.LinuxCPU{Quota: ptr(int64(50000)), Burst: ptr(uint64(50001))}},
		{CPU: &specs.LinuxCPU{RealtimeRuntime: ptr(int64(-2))}},
		{CPU: &specs.LinuxCPU{RealtimePeriod: ptr(uint64(0))}},
		{CPU: &specs.LinuxCPU{RealtimeRuntime: ptr(int64(2000)), RealtimePeriod: ptr(uint64(1000))}},
		{CPU: &specs.LinuxCPU{Idle: ptr(int64(2))}},
		{CPU: &specs.LinuxCPU{Idle: ptr(int64(1)), Shares: ptr(uint64(1024))}},
		{CPU: &specs.LinuxCPU{Mems: "a"}},
		{CPU: &specs.LinuxCPU{Cpus: "0,,1"}},
		{BlockIO: &specs.LinuxBlockIO{LeafWeight: ptr(uint16(1001))}},
		{BlockIO: &specs.LinuxBlockIO{WeightDevice: []specs.LinuxWeightDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: -1}}}}},
		{BlockIO: &specs.LinuxBlockIO{WeightDevice: []specs.LinuxWeightDevice{{Weight: ptr(uint16(0))}}}},
		{BlockIO: &specs.LinuxBlockIO{ThrottleReadBpsDevice: []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Minor: -2}}}}},
		{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2M"}}},
		{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "../x"}}},
		{Network: &specs.LinuxNetwork{Priorities: []specs.LinuxInterfacePriority{{Name: "eth0 x"}}}},
		{Rdma: map[string]specs.LinuxRdma{"": {}}},
		{Devices: []specs.LinuxDeviceCgroup{{Access: "rwx"}}},
		{Devices: []specs.LinuxDeviceCgroup{{Access: "rr"}}},
		{Devices: []specs.LinuxDeviceCgroup{{Major: ptr(int64(-5))}}},
	}
	for _, r := range more {
		assert.ErrorIs(t, validate(r, Legacy), errdefs.ErrInvalid, "%+v", r)
	}

	// Version-specific.
	uni := &specs.LinuxResources{Unified: map[string]string{"memory.high": "1G"}}
	assert.ErrorIs(t, validate(uni, Legacy), errdefs.ErrNotSupported)
	assert.NoError(t, validate(uni, Unified))
	for _, k := range []string{"cgroup.procs", "../memory.max", "memory", "", "cgroup.kill", "a/b.c"} {
		assert.ErrorIs(t, validate(&specs.LinuxResources{Unified: map[string]string{k: "1"}}, Unified), errdefs.ErrInvalid, k)
	}
	rt := &specs.LinuxResources{CPU: &specs.LinuxCPU{RealtimeRuntime: ptr(int64(1000))}}
	assert.NoError(t, validate(rt, Legacy))
	assert.ErrorIs(t, validate(rt, Unified), errdefs.ErrNotSupported)
	noHier := &specs.LinuxResources{Memory: &specs.LinuxMemory{UseHierarchy: ptr(false)}}
	assert.NoError(t, validate(noHier, Legacy))
	assert.ErrorIs(t, validate(noHier, Unified), errdefs.ErrNotSupported)
}

func TestDeviceRules(t *testing.T) {
	r, err := parseDeviceRule(&specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: ptr(int64(1)), Minor: ptr(int64(3)), Access: "wr"})
	require.NoError(t, err)
	assert.Equal(t, "c 1:3 rw", r.String())
	assert.Equal(t, []string{"c 1:3 rw"}, v1DeviceLines(r))

	r, err = parseDeviceRule(&specs.LinuxDeviceCgroup{})
	require.NoError(t, err)
	assert.Equal(t, []string{"a"}, v1DeviceLines(r), "a full wildcard")

	r, err = parseDeviceRule(&specs.LinuxDeviceCgroup{Type: "a", Access: "r"})
	require.NoError(t, err)
	assert.Equal(t, []string{"b *:* r", "c *:* r"}, v1DeviceLines(r), "the kernel reads \"a\" as everything")
}

func TestV2Controllers(t *testing.T) {
	res := &specs.LinuxResources{
		Memory:         &specs.LinuxMemory{Swappiness: ptr(uint64(10))}, // no v2 file
		CPU:            &specs.LinuxCPU{Cpus: "0"},
		BlockIO:        &specs.LinuxBlockIO{LeafWeight: ptr(uint16(100))}, // no v2 file
		HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB"}},
		Unified:        map[string]string{"misc.max": "x 1", "cgroup.type": "threaded"},
	}
	assert.Equal(t, map[string]bool{"cpuset": true, "hugetlb": true, "misc": true}, v2Controllers(res))
	assert.Empty(t, v2Controllers(nil))
}

// badResources are refused with ErrInvalid; the first ones mix a valid
// field with a bad one, to show that nothing is written.
func badResources() []*specs.LinuxResources {
	return []*specs.LinuxResources{
		{Memory: &specs.LinuxMemory{Limit: ptr(int64(256 << 20))}, CPU: &specs.LinuxCPU{Quota: ptr(int64(10))}},
		{Pids: &specs.LinuxPids{Limit: ptr(int64(16))}, Memory: &specs.LinuxMemory{Limit: ptr(int64(0))}},
		{CPU: &specs.LinuxCPU{Shares: ptr(uint64(0))}},
		{CPU: &specs.LinuxCPU{Period: ptr(uint64(0))}},
		{CPU: &specs.LinuxCPU{Quota: ptr(int64(-5))}},
		{CPU: &specs.LinuxCPU{Cpus: "0-"}},
		{Memory: &specs.LinuxMemory{Limit: ptr(int64(-2))}},
		{Memory: &specs.LinuxMemory{Limit: ptr(int64(64 << 20)), Swap: ptr(int64(32 << 20))}},
		{Memory: &specs.LinuxMemory{Swappiness: ptr(uint64(101))}},
		{Pids: &specs.LinuxPids{Limit: ptr(int64(-2))}},
		{BlockIO: &specs.LinuxBlockIO{Weight: ptr(uint16(5))}},
		{Devices: []specs.LinuxDeviceCgroup{{Allow: true, Type: "x", Access: "rwm"}}},
		{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "3XB", Limit: 1}}},
	}
}
