package oci

import (
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-run/berth/internal/errdefs"
)

func TestCapabilities(t *testing.T) {
	def := DefaultCapabilities()
	without := func(list []string, drop ...string) []string {
		var out []string
		for _, c := range list {
			if indexOf(drop, c) < 0 {
				out = append(out, c)
			}
		}
		return out
	}
	all := capsFromMask(thisMachineCaps, 40)
	for _, tc := range []struct {
		name       string
		add, drop  []string
		privileged bool
		want       []string
		err        string
	}{
		{name: "default", want: def},
		{name: "add, any case and prefix", add: []string{"net_admin", "CAP_SYS_PTRACE", "Sys_Nice"}, want: append(def, "CAP_NET_ADMIN", "CAP_SYS_PTRACE", "CAP_SYS_NICE")},
		{name: "drop", drop: []string{"chown", "CAP_NET_RAW"}, want: without(def, "CAP_CHOWN", "CAP_NET_RAW")},
		{name: "drop ALL then add", drop: []string{"all"}, add: []string{"NET_BIND_SERVICE"}, want: []string{"CAP_NET_BIND_SERVICE"}},
		{name: "drop ALL", drop: []string{"ALL"}, want: nil},
		{name: "add ALL minus drops", add: []string{"ALL"}, drop: []string{"sys_admin"}, want: without(all, "CAP_SYS_ADMIN")},
		{name: "add ALL: only what the caller has", add: []string{"ALL"}, want: all},
		{name: "add a default one again", add: []string{"CHOWN"}, want: def},
		{name: "privileged: all the caller's", privileged: true, want: all},
		{name: "privileged ignores cap-drop, as docker", privileged: true, drop: []string{"ALL"}, want: all},
		{name: "unknown", add: []string{"NET_FOO"}, err: `unknown capability: "NET_FOO"`},
		{name: "unknown drop", drop: []string{"CAP_BOGUS"}, err: `unknown capability: "CAP_BOGUS"`},
		{name: "not available to the caller", add: []string{"SYS_RESOURCE"}, err: "CAP_SYS_RESOURCE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := baseConfig()
			cfg.CapAdd, cfg.CapDrop, cfg.Privileged = tc.add, tc.drop, tc.privileged
			if tc.err != "" {
				err := genErr(t, cfg, errdefs.ErrInvalid)
				assert.Contains(t, err.Error(), tc.err)
				return
			}
			s := gen(t, cfg)
			assert.Equal(t, tc.want, s.Process.Capabilities.Bounding)
			assert.Equal(t, tc.want, s.Process.Capabilities.Effective)
			assert.Equal(t, tc.want, s.Process.Capabilities.Permitted)
		})
	}
	assert.NotContains(t, all, "CAP_SYS_RESOURCE")
	assert.Len(t, all, 40)
}

func TestNormalizeCapability(t *testing.T) {
	for in, want := range map[string]string{"all": "ALL", "chown": "CAP_CHOWN", "cap_bpf": "CAP_BPF", " Kill ": "CAP_KILL"} {
		got, err := NormalizeCapability(in)
		require.NoError(t, err)
		assert.Equal(t, want, got)
	}
	_, err := NormalizeCapability("CAP_")
	assert.ErrorIs(t, err, errdefs.ErrInvalid)
}

func TestPrivileged(t *testing.T) {
	cfg := baseConfig()
	cfg.Privileged = true
	cfg.ReadOnly = true
	s := gen(t, cfg)
	assert.Nil(t, s.Linux.MaskedPaths)
	assert.Nil(t, s.Linux.ReadonlyPaths)
	assert.Nil(t, s.Linux.Seccomp)
	assert.Equal(t, []string{"nosuid", "noexec", "nodev"}, mountAt(s, "/sys").Options, "/sys writable, even with --read-only")
	assert.Equal(t, []string{"nosuid", "noexec", "nodev"}, mountAt(s, "/sys/fs/cgroup").Options, "cgroups writable")
	assert.Equal(t, []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}, s.Linux.Resources.Devices)
	var paths []string
	for _, d := range s.Linux.Devices {
		paths = append(paths, d.Path)
	}
	// the defaults the host lacks, then the host's devices
	assert.Equal(t, []string{"/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty", "/dev/null", "/dev/kmsg", "/dev/sda"}, paths)

	// a named profile still applies, as docker
	cfg.Seccomp = "/etc/profile.json"
	s, err := generate(cfg, fakeHost(map[string]string{"host:/etc/profile.json": `{"defaultAction":"SCMP_ACT_LOG"}`}))
	require.NoError(t, err)
	require.NotNil(t, s.Linux.Seccomp)
	assert.Equal(t, specs.ActLog, s.Linux.Seccomp.DefaultAction)
}

func TestSeccompChoice(t *testing.T) {
	cfg := baseConfig()
	cfg.Seccomp = "unconfined"
	assert.Nil(t, gen(t, cfg).Linux.Seccomp)
	cfg.Seccomp = "builtin"
	assert.Equal(t, specs.ActErrno, gen(t, cfg).Linux.Seccomp.DefaultAction)
	cfg.Seccomp = "/p.json"
	_, err := generate(cfg, fakeHost(map[string]string{"host:/p.json": `{not json`}))
	assert.ErrorIs(t, err, errdefs.ErrInvalid)
}

func TestResources(t *testing.T) {
	i64p := func(v int64) *int64 { return &v }
	u64p := func(v uint64) *uint64 { return &v }
	bp := func(v bool) *bool { return &v }
	for _, tc := range []struct {
		name string
		r    Resources
		want specs.LinuxResources
		err  string
	}{
		{name: "none"},
		{
			name: "memory alone: swap is twice the memory (docker)",
			r:    Resources{Memory: 256 << 20},
			want: specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64p(256 << 20), Swap: i64p(512 << 20)}},
		},
		{
			name: "memory and swap",
			r:    Resources{Memory: 256 << 20, MemorySwap: 1 << 30},
			want: specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64p(256 << 20), Swap: i64p(1 << 30)}},
		},
		{
			name: "unlimited swap",
			r:    Resources{Memory: 256 << 20, MemorySwap: -1},
			want: specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64p(256 << 20)}},
		},
		{
			name: "memory extras",
			r:    Resources{Memory: 64 << 20, MemorySwap: 64 << 20, MemoryReservation: 32 << 20, MemorySwappiness: i64p(10), OomKillDisable: bp(true)},
			want: specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64p(64 << 20), Swap: i64p(64 << 20), Reservation: i64p(32 << 20), Swappiness: u64p(10), DisableOOMKiller: bp(true)}},
		},
		{name: "swappiness -1 is unset", r: Resources{MemorySwappiness: i64p(-1)}},
		{
			name: "cpus: quota over a 100ms period",
			r:    Resources{NanoCPUs: 1500000000},
			want: specs.LinuxResources{CPU: &specs.LinuxCPU{Period: u64p(100000), Quota: i64p(150000)}},
		},
		{
			name: "shares, period, quota, cpuset",
			r:    Resources{CPUShares: 512, CPUPeriod: 50000, CPUQuota: 25000, CpusetCpus: "0-1", CpusetMems: "0"},
			want: specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: u64p(512), Period: u64p(50000), Quota: i64p(25000), Cpus: "0-1", Mems: "0"}},
		},
		{name: "pids", r: Resources{PidsLimit: 100}, want: specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64p(100)}}},
		{name: "pids unlimited", r: Resources{PidsLimit: -5}, want: specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64p(-1)}}},
		{name: "blkio weight", r: Resources{BlkioWeight: 300}, want: specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{Weight: func() *uint16 { w := uint16(300); return &w }()}}},
		{
			name: "no swap accounting: memory limited without swap",
			r:    Resources{Memory: 256 << 20},
			want: specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64p(256 << 20)}},
		},
		{name: "tiny memory", r: Resources{Memory: 1 << 20}, err: "minimum memory limit allowed is 6MB"},
		{name: "negative memory", r: Resources{Memory: -1}, err: "memory"},
		{name: "swap below memory", r: Resources{Memory: 64 << 20, MemorySwap: 32 << 20}, err: "memoryswap limit should be larger"},
		{name: "swap without memory", r: Resources{MemorySwap: 64 << 20}, err: "set the memory limit"},
		{name: "reservation above memory", r: Resources{Memory: 64 << 20, MemoryReservation: 128 << 20}, err: "reservation"},
		{name: "tiny reservation", r: Resources{MemoryReservation: 1024}, err: "reservation allowed is 6MB"},
		{name: "swappiness range", r: Resources{MemorySwappiness: i64p(101)}, err: "swappiness"},
		{name: "too many cpus", r: Resources{NanoCPUs: 3e9}, err: "range of CPUs is from 0.01 to 2.00"},
		{name: "too few cpus", r: Resources{NanoCPUs: 1e6}, err: "range of CPUs"},
		{name: "cpus and period", r: Resources{NanoCPUs: 1e9, CPUPeriod: 100000}, err: "conflicting options"},
		{name: "cpus and quota", r: Resources{NanoCPUs: 1e9, CPUQuota: 100000}, err: "conflicting options"},
		{name: "negative shares", r: Resources{CPUShares: -2}, err: "CPU shares"},
		{name: "period range", r: Resources{CPUPeriod: 999}, err: "cfs period"},
		{name: "quota range", r: Resources{CPUQuota: 999}, err: "cfs quota"},
		{name: "cpuset syntax", r: Resources{CpusetCpus: "0-"}, err: "cpuset cpus"},
		{name: "cpuset unavailable", r: Resources{CpusetCpus: "3"}, err: "not available"},
		{name: "mems unavailable", r: Resources{CpusetMems: "1"}, err: "not available"},
		{name: "blkio range", r: Resources{BlkioWeight: 5}, err: "blkio weight"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := baseConfig()
			cfg.Resources = tc.r
			noSwap := func(h *host) { h.swapLimit = !strings.HasPrefix(tc.name, "no swap ") }
			if tc.err != "" {
				err := genErr(t, cfg, errdefs.ErrInvalid, noSwap)
				assert.Contains(t, err.Error(), tc.err)
				return
			}
			got := *gen(t, cfg, noSwap).Linux.Resources
			got.Devices = nil
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestRlimits(t *testing.T) {
	for _, tc := range []struct {
		name    string
		ulimits []Ulimit
		sysRes  bool
		want    []specs.POSIXRlimit
		err     string
	}{
		{name: "default nofile: 1048576 lowered to the caller's hard limit", want: []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 20000, Hard: 20000}}},
		{name: "default nofile with CAP_SYS_RESOURCE", sysRes: true, want: []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 1048576, Hard: 1048576}}},
		{
			name:    "user nofile within the caller's limit",
			ulimits: []Ulimit{{Name: "nofile", Soft: 1024, Hard: 2048}},
			want:    []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 1024, Hard: 2048}},
		},
		{
			name:    "nproc and core",
			ulimits: []Ulimit{{Name: "nproc", Soft: 512, Hard: 512}, {Name: "core", Soft: 0, Hard: RlimitInfinity}},
			want: []specs.POSIXRlimit{
				{Type: "RLIMIT_NPROC", Soft: 512, Hard: 512},
				{Type: "RLIMIT_CORE", Soft: 0, Hard: RlimitInfinity},
				{Type: "RLIMIT_NOFILE", Soft: 20000, Hard: 20000},
			},
		},
		{name: "above the caller's hard limit", ulimits: []Ulimit{{Name: "nofile", Soft: 1048576, Hard: 1048576}}, err: "nofile=1048576:1048576: hard limit is above this process's hard limit 20000"},
		{name: "allowed with CAP_SYS_RESOURCE", sysRes: true, ulimits: []Ulimit{{Name: "nofile", Soft: 1048576, Hard: 1048576}}, want: []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 1048576, Hard: 1048576}}},
		{name: "soft above hard", ulimits: []Ulimit{{Name: "nproc", Soft: 10, Hard: 5}}, err: "soft limit must be less than or equal to hard limit"},
		{name: "unknown", ulimits: []Ulimit{{Name: "files", Soft: 1, Hard: 1}}, err: "invalid ulimit type: files"},
		{name: "twice", ulimits: []Ulimit{{Name: "nproc", Soft: 1, Hard: 1}, {Name: "nproc", Soft: 2, Hard: 2}}, err: "twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := baseConfig()
			cfg.Ulimits = tc.ulimits
			edit := func(h *host) {
				if tc.sysRes {
					h.effectiveCaps |= 1 << 24
				}
			}
			if tc.err != "" {
				err := genErr(t, cfg, errdefs.ErrInvalid, edit)
				assert.Contains(t, err.Error(), tc.err)
				return
			}
			assert.Equal(t, tc.want, gen(t, cfg, edit).Process.Rlimits)
		})
	}
}

func TestSysctls(t *testing.T) {
	defaults := map[string]string{"net.ipv4.ping_group_range": "0 2147483647", "net.ipv4.ip_unprivileged_port_start": "0"}
	for _, tc := range []struct {
		name    string
		edit    func(*Config)
		sysctls map[string]string
		want    map[string]string
		err     string
	}{
		{name: "defaults in an own netns", want: defaults},
		{name: "no defaults with the host's network", edit: func(c *Config) { c.NetNS = "host" }},
		{name: "no defaults in another container's netns", edit: func(c *Config) { c.NetNS = "/proc/9/ns/net"; c.NetNSShared = true }},
		{name: "defaults in a bridge netns file", edit: func(c *Config) { c.NetNS = "/run/berth/netns/x" }, want: defaults},
		{
			name:    "user's win",
			sysctls: map[string]string{"net.ipv4.ip_unprivileged_port_start": "1024", "kernel.shmmax": "1000", "fs.mqueue.msg_max": "20", "kernel.sem": "1 2 3 4", "kernel.msgmax": "9"},
			want:    map[string]string{"net.ipv4.ping_group_range": "0 2147483647", "net.ipv4.ip_unprivileged_port_start": "1024", "kernel.shmmax": "1000", "fs.mqueue.msg_max": "20", "kernel.sem": "1 2 3 4", "kernel.msgmax": "9"},
		},
		{name: "not namespaced", sysctls: map[string]string{"kernel.pid_max": "100"}, err: `sysctl "kernel.pid_max" is not allowed`},
		{name: "vm", sysctls: map[string]string{"vm.swappiness": "1"}, err: "not allowed"},
		{name: "kernel.domainname is not a --sysctl", sysctls: map[string]string{"kernel.domainname": "x"}, err: "not allowed"},
		{name: "net with host network", edit: func(c *Config) { c.NetNS = "host" }, sysctls: map[string]string{"net.core.somaxconn": "1024"}, err: "host network namespace"},
		{name: "ipc with host ipc", edit: func(c *Config) { c.IPCMode = "host" }, sysctls: map[string]string{"kernel.shmmax": "1"}, err: "host IPC namespace"},
		{name: "path traversal", sysctls: map[string]string{"net.ipv4/../../kernel/x": "1"}, err: "not a valid name"},
		{name: "empty component", sysctls: map[string]string{"net..x": "1"}, err: "not a valid name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := baseConfig()
			if tc.edit != nil {
				tc.edit(&cfg)
			}
			cfg.Sysctls = tc.sysctls
			if tc.err != "" {
				err := genErr(t, cfg, errdefs.ErrInvalid)
				assert.Contains(t, err.Error(), tc.err)
				return
			}
			assert.Equal(t, tc.want, gen(t, cfg).Linux.Sysctl)
		})
	}
}

func TestDevices(t *testing.T) {
	cfg := baseConfig()
	cfg.Devices = []DeviceMapping{
		{PathOnHost: "/dev/fuse", CgroupPermissions: "rw"},
		{PathOnHost: "/dev/sda", PathInContainer: "/dev/xvda"},
		{PathOnHost: "/dev/snd", PathInContainer: "/dev/sound", CgroupPermissions: "r"},
	}
	s := gen(t, cfg)
	byPath := map[string]specs.LinuxDevice{}
	for _, d := range s.Linux.Devices {
		byPath[d.Path] = d
	}
	assert.Equal(t, int64(229), byPath["/dev/fuse"].Minor)
	assert.Equal(t, "b", byPath["/dev/xvda"].Type)
	assert.Contains(t, byPath, "/dev/sound/controlC0")
	assert.Contains(t, byPath, "/dev/sound/timer")
	assert.Contains(t, byPath, "/dev/null")
	rules := s.Linux.Resources.Devices
	tail := rules[len(rules)-4:]
	i := func(v int64) *int64 { return &v }
	assert.Equal(t, []specs.LinuxDeviceCgroup{
		{Allow: true, Type: "c", Major: i(10), Minor: i(229), Access: "rw"},
		{Allow: true, Type: "b", Major: i(8), Minor: i(0), Access: "rwm"},
		{Allow: true, Type: "c", Major: i(116), Minor: i(0), Access: "r"},
		{Allow: true, Type: "c", Major: i(116), Minor: i(33), Access: "r"},
	}, tail)

	// a device at a default path replaces the default
	cfg.Devices = []DeviceMapping{{PathOnHost: "/dev/null"}}
	s = gen(t, cfg)
	n := 0
	for _, d := range s.Linux.Devices {
		if d.Path == "/dev/null" {
			n++
			assert.Equal(t, "-rw-rw----", d.FileMode.String())
		}
	}
	assert.Equal(t, 1, n)

	for _, bad := range []DeviceMapping{
		{PathOnHost: "dev/fuse"},
		{PathOnHost: "/dev/fuse", CgroupPermissions: "rwx"},
		{PathOnHost: "/dev/fuse", CgroupPermissions: "rr"},
		{PathOnHost: "/dev/fuse", PathInContainer: "fuse"},
		{PathOnHost: "/dev/nonexistent"},
		{PathOnHost: "/etc"},
	} {
		cfg.Devices = []DeviceMapping{bad}
		genErr(t, cfg, errdefs.ErrInvalid)
	}
}
