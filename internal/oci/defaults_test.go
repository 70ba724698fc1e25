package oci

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-run/berth/internal/errdefs"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// TestDefaultSpecMatchesDocker checks a plain `docker run IMAGE` against
// docker v29.7's defaults, written out here from moby's source
// (daemon/pkg/oci/defaults.go, daemon/pkg/oci/caps/defaults.go,
// daemon/oci_linux.go) and runc's (libcontainer/specconv AllowedDevices),
// independently of the tables the generator uses.
func TestDefaultSpecMatchesDocker(t *testing.T) {
	s := gen(t, baseConfig())

	// CapEff of a default container's PID 1 is 00000000a80425fb.
	caps := s.Process.Capabilities
	assert.Equal(t, uint64(0xa80425fb), capMask(caps.Bounding))
	assert.Equal(t, caps.Bounding, caps.Effective)
	assert.Equal(t, caps.Bounding, caps.Permitted)
	assert.Empty(t, caps.Inheritable, "docker >= 23 leaves inheritable empty")
	assert.Empty(t, caps.Ambient)

	assert.Equal(t, []string{
		"/proc/acpi", "/proc/asound", "/proc/interrupts", "/proc/kcore", "/proc/keys",
		"/proc/latency_stats", "/proc/sched_debug", "/proc/scsi", "/proc/timer_list",
		"/proc/timer_stats", "/sys/devices/virtual/powercap", "/sys/firmware",
	}, s.Linux.MaskedPaths)
	assert.Equal(t, []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}, s.Linux.ReadonlyPaths)

	assert.Equal(t, []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"ro", "nosuid", "noexec", "nodev"}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=67108864"}},
	}, s.Mounts)

	// cgroup v1 host: docker keeps the host's cgroup namespace. (Docker
	// 29.7 adds a time namespace; berth only with TimeNS "private".)
	assert.Equal(t, []string{"mount", "network", "uts", "pid", "ipc"}, nsTypes(s))

	assert.Equal(t, testID[:12], s.Hostname)
	assert.Equal(t, []string{"sh"}, s.Process.Args)
	assert.Equal(t, "/", s.Process.Cwd)
	assert.Equal(t, []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOSTNAME=" + testID[:12],
		"HOME=/root",
	}, s.Process.Env)
	// root, with busybox's wheel group, as `docker run busybox id` shows.
	assert.Equal(t, specs.User{UID: 0, GID: 0, AdditionalGids: []uint32{0, 10}}, s.Process.User)
	assert.False(t, s.Process.Terminal)
	assert.False(t, s.Process.NoNewPrivileges)
	assert.Nil(t, s.Process.OOMScoreAdj)
	assert.Equal(t, []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 20000, Hard: 20000}}, s.Process.Rlimits)

	assert.Equal(t, map[string]string{
		"net.ipv4.ping_group_range":           "0 2147483647",
		"net.ipv4.ip_unprivileged_port_start": "0",
	}, s.Linux.Sysctl)

	// docker's device cgroup list, then runc's.
	star := int64(-1)
	i := func(v int64) *int64 { return &v }
	assert.Equal(t, []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		{Allow: true, Type: "c", Major: i(1), Minor: i(5), Access: "rwm"},
		{Allow: true, Type: "c", Major: i(1), Minor: i(3), Access: "rwm"},
		{Allow: true, Type: "c", Major: i(1), Minor: i(9), Access: "rwm"},
		{Allow: true, Type: "c", Major: i(1), Minor: i(8), Access: "rwm"},
		{Allow: true, Type: "c", Major: i(5), Minor: i(0), Access: "rwm"},
		{Allow: true, Type: "c", Major: i(5), Minor: i(1), Access: "rwm"},
		{Allow: false, Type: "c", Major: i(10), Minor: i(229), Access: "rwm"},
		{Allow: true, Type: "c", Major: &star, Minor: &star, Access: "m"},
		{Allow: true, Type: "b", Major: &star, Minor: &star, Access: "m"},
		{Allow: true, Type: "c", Major: i(1), Minor: i(7), Access: "rwm"},
		{Allow: true, Type: "c", Major: i(136), Minor: &star, Access: "rwm"},
		{Allow: true, Type: "c", Major: i(5), Minor: i(2), Access: "rwm"},
		{Allow: true, Type: "c", Major: i(10), Minor: i(200), Access: "rwm"},
	}, s.Linux.Resources.Devices)
	var devPaths []string
	for _, d := range s.Linux.Devices {
		devPaths = append(devPaths, d.Path)
		assert.Equal(t, os.FileMode(0o666), *d.FileMode, d.Path)
	}
	assert.Equal(t, []string{"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty"}, devPaths)

	assert.Nil(t, s.Linux.Resources.Memory)
	assert.Nil(t, s.Linux.Resources.CPU)
	assert.Nil(t, s.Linux.Resources.Pids)
	assert.NotNil(t, s.Linux.Seccomp, "docker's default seccomp profile")
	assert.False(t, s.Root.Readonly)
	assert.Empty(t, s.Linux.RootfsPropagation)
	assert.Equal(t, specs.Version, s.Version)
}

// TestDefaultSpecGolden pins the whole default spec (with the fake
// host's seccomp stand-in) so any change to it shows in review; run with
// -update to rewrite testdata/default.json after an intended change.
func TestDefaultSpecGolden(t *testing.T) {
	cfg := baseConfig()
	got, err := json.MarshalIndent(gen(t, cfg), "", "\t")
	require.NoError(t, err)
	golden := filepath.Join("testdata", "default.json")
	if *update {
		require.NoError(t, os.MkdirAll("testdata", 0o755))
		require.NoError(t, os.WriteFile(golden, append(got, '\n'), 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err)
	assert.JSONEq(t, string(want), string(got))
}

func TestDefaultSpecCgroupV2(t *testing.T) {
	// docker on a cgroup v2 host: a private cgroup namespace, also for
	// privileged containers.
	v2 := func(h *host) { h.cgroup2 = true }
	s := gen(t, baseConfig(), v2)
	assert.Equal(t, []string{"mount", "network", "uts", "pid", "ipc", "cgroup"}, nsTypes(s))
	cfg := baseConfig()
	cfg.Privileged = true
	s = gen(t, cfg, v2)
	assert.Contains(t, nsTypes(s), "cgroup")
	// v1: privileged keeps the host's.
	s = gen(t, cfg)
	assert.NotContains(t, nsTypes(s), "cgroup")
}

func TestTimeNamespace(t *testing.T) {
	cfg := baseConfig()
	cfg.TimeNS = "private"
	assert.Equal(t, []string{"mount", "network", "time", "uts", "pid", "ipc"}, nsTypes(gen(t, cfg)))
	genErr(t, cfg, errdefs.ErrNotSupported, func(h *host) { h.timeNS = false })
	cfg.TimeNS = "bogus"
	genErr(t, cfg, errdefs.ErrInvalid)
}

func TestThermalThrottleMasked(t *testing.T) {
	s := gen(t, baseConfig(), func(h *host) {
		h.extraMasked = []string{"/sys/devices/system/cpu/cpu0/thermal_throttle"}
	})
	assert.Contains(t, s.Linux.MaskedPaths, "/sys/devices/system/cpu/cpu0/thermal_throttle")
}
