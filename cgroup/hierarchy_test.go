package cgroup

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-run/berth/internal/errdefs"
)

// hybridMountinfo is this project's machines: v1 controllers each on its
// own, name=systemd, and cgroup2 at /sys/fs/cgroup/unified.
const hybridMountinfo = `25 1 254:0 / / rw,relatime - ext4 /dev/vda rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`

const hybridProcCgroup = `9:name=systemd:/
8:pids:/
7:blkio:/
6:freezer:/
5:devices:/
4:memory:/process_api/abc
3:cpuset:/
2:cpuacct:/
1:cpu:/
0::/
`

// comountedMountinfo is a systemd v1 machine: cpu,cpuacct and
// net_cls,net_prio co-mounted (the single names are symlinks), another
// named hierarchy, and a cpuset mounted with noprefix.
const comountedMountinfo = `30 25 0:26 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw,nsdelegate
32 30 0:28 / /sys/fs/cgroup/systemd rw,nosuid shared:9 - cgroup cgroup rw,xattr,name=systemd
35 30 0:31 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:14 - cgroup cgroup rw,cpu,cpuacct
36 30 0:32 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid shared:15 - cgroup cgroup rw,net_cls,net_prio
37 30 0:33 / /sys/fs/cgroup/memory rw,nosuid shared:16 - cgroup cgroup rw,memory
38 30 0:34 / /sys/fs/cgroup/cpuset rw,nosuid shared:17 - cgroup cgroup rw,noprefix,cpuset,release_agent=/x
39 30 0:35 / /sys/fs/cgroup/foo rw,nosuid shared:18 - cgroup cgroup rw,name=foo
40 30 0:33 /user.slice /mnt/memory\040copy rw,nosuid shared:16 - cgroup cgroup rw,memory
`

const comountedProcCgroup = `12:cpuset:/
8:net_cls,net_prio:/
5:memory:/user.slice/user-1000.slice/session-2.scope
4:cpu,cpuacct:/user.slice
1:name=systemd:/user.slice/user-1000.slice/session-2.scope
0::/user.slice/user-1000.slice/session-2.scope
`

const unifiedMountinfo = `29 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
`

func mustMounts(t *testing.T, s string) []mount {
	t.Helper()
	ms, err := parseMountInfo(strings.NewReader(s))
	require.NoError(t, err)
	return ms
}

func mustOwn(t *testing.T, s string) map[string]string {
	t.Helper()
	own, err := parseProcCgroup(strings.NewReader(s))
	require.NoError(t, err)
	return own
}

func TestDetectModeFromMounts(t *testing.T) {
	assert.Equal(t, Legacy, detectMode(mustMounts(t, hybridMountinfo)))
	assert.Equal(t, Legacy, detectMode(mustMounts(t, comountedMountinfo)))
	assert.Equal(t, Unified, detectMode(mustMounts(t, unifiedMountinfo)))
	assert.Equal(t, Unavailable, detectMode(nil))
	assert.Equal(t, "legacy", Legacy.String())
	assert.Equal(t, "unified", Unified.String())
	assert.Equal(t, "unavailable", Unavailable.String())
}

func TestHierarchiesHybrid(t *testing.T) {
	ms, own := mustMounts(t, hybridMountinfo), mustOwn(t, hybridProcCgroup)
	hs, err := hierarchiesFromMounts(Legacy, ms, own, "berth/abc")
	require.NoError(t, err)
	dirs := map[string]string{}
	for _, h := range hs {
		dirs[strings.Join(h.controllers, ",")] = h.dir
	}
	assert.Equal(t, map[string]string{
		"cpu":          "/sys/fs/cgroup/cpu/berth/abc",
		"cpuacct":      "/sys/fs/cgroup/cpuacct/berth/abc",
		"cpuset":       "/sys/fs/cgroup/cpuset/berth/abc",
		"memory":       "/sys/fs/cgroup/memory/process_api/abc/berth/abc",
		"devices":      "/sys/fs/cgroup/devices/berth/abc",
		"freezer":      "/sys/fs/cgroup/freezer/berth/abc",
		"blkio":        "/sys/fs/cgroup/blkio/berth/abc",
		"pids":         "/sys/fs/cgroup/pids/berth/abc",
		"name=systemd": "/sys/fs/cgroup/systemd/berth/abc",
	}, dirs)

	hs, err = hierarchiesFromMounts(Legacy, ms, own, "/berth/abc")
	require.NoError(t, err)
	for _, h := range hs {
		if h.has("memory") {
			assert.Equal(t, "/sys/fs/cgroup/memory/berth/abc", h.dir, "absolute paths start at the root")
			assert.Equal(t, "/sys/fs/cgroup/memory", h.base)
		}
	}
}

func TestHierarchiesCoMounted(t *testing.T) {
	ms, own := mustMounts(t, comountedMountinfo), mustOwn(t, comountedProcCgroup)
	hs, err := hierarchiesFromMounts(Legacy, ms, own, "berth/abc")
	require.NoError(t, err)
	m := &Manager{mode: Legacy, hiers: hs}
	assert.Len(t, hs, 5, "systemd, cpu+cpuacct, net_cls+net_prio, memory, cpuset; the bind mount and name=foo skipped")
	assert.Equal(t, "/sys/fs/cgroup/cpu,cpuacct/user.slice/berth/abc", m.Path("cpu"))
	assert.Equal(t, m.Path("cpu"), m.Path("cpuacct"))
	assert.Equal(t, "/sys/fs/cgroup/net_cls,net_prio/berth/abc", m.Path("net_prio"))
	assert.Equal(t, "/sys/fs/cgroup/memory/user.slice/user-1000.slice/session-2.scope/berth/abc", m.Path("memory"))
	assert.Equal(t, "/sys/fs/cgroup/systemd/user.slice/user-1000.slice/session-2.scope/berth/abc", m.Path("name=systemd"))
	assert.Empty(t, m.Path("pids"))
	assert.Empty(t, m.Path("foo"))
	for _, h := range hs {
		assert.Equal(t, h.has("cpuset"), h.noPrefix, "%v", h.controllers)
	}
	cs := m.hier("cpuset")
	require.NotNil(t, cs)
	assert.Equal(t, "cpus", cs.cpusetFile("cpus"))
}

func TestHierarchiesUnified(t *testing.T) {
	ms := mustMounts(t, unifiedMountinfo)
	own := mustOwn(t, "0::/user.slice/session-2.scope\n")
	hs, err := hierarchiesFromMounts(Unified, ms, own, "berth/abc")
	require.NoError(t, err)
	require.Len(t, hs, 1)
	assert.Equal(t, "/sys/fs/cgroup/user.slice/session-2.scope/berth/abc", hs[0].dir)
	assert.Equal(t, "/sys/fs/cgroup/user.slice/session-2.scope", hs[0].base)
	m := &Manager{mode: Unified, hiers: hs}
	assert.Equal(t, hs[0].dir, m.Path(""))
	assert.Equal(t, hs[0].dir, m.Path("memory"))

	hs, err = hierarchiesFromMounts(Unified, ms, own, "/berth/abc")
	require.NoError(t, err)
	assert.Equal(t, "/sys/fs/cgroup/berth/abc", hs[0].dir)

	_, err = hierarchiesFromMounts(Unified, nil, own, "x")
	assert.ErrorIs(t, err, errdefs.ErrNotSupported)
	_, err = hierarchiesFromMounts(Legacy, ms, own, "x")
	assert.ErrorIs(t, err, errdefs.ErrNotSupported)
}

// TestPlaceInMountRoot: a hierarchy mounted from a sub-cgroup (a container
// without a cgroup namespace sees /docker/ID as the mount's root).
func TestPlaceInMountRoot(t *testing.T) {
	base, dir := placeIn("/sys/fs/cgroup/memory", "/docker/abc", "/docker/abc/sub", "berth/x")
	assert.Equal(t, "/sys/fs/cgroup/memory/sub", base)
	assert.Equal(t, "/sys/fs/cgroup/memory/sub/berth/x", dir)
	_, dir = placeIn("/sys/fs/cgroup/memory", "/docker/abc", "/docker/abc", "berth/x")
	assert.Equal(t, "/sys/fs/cgroup/memory/berth/x", dir)
	_, dir = placeIn("/sys/fs/cgroup/memory", "/", "/", "/berth/x")
	assert.Equal(t, "/sys/fs/cgroup/memory/berth/x", dir)
}

func TestCheckPath(t *testing.T) {
	for in, want := range map[string]string{
		"berth/abc":    "berth/abc",
		"/berth/abc":   "/berth/abc",
		"berth//abc/":  "berth/abc",
		"/berth/./abc": "/berth/abc",
	} {
		got, err := checkPath(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, bad := range []string{"", "/", ".", "..", "berth/../x", "/a/../../b", "a\nb"} {
		_, err := checkPath(bad)
		assert.ErrorIs(t, err, errdefs.ErrInvalid, "%q", bad)
	}
	_, err := checkPath("system.slice:berth:abc")
	assert.ErrorIs(t, err, errdefs.ErrNotSupported)
}

func TestParseProcCgroup(t *testing.T) {
	own := mustOwn(t, comountedProcCgroup)
	assert.Equal(t, "/user.slice", own["cpu"])
	assert.Equal(t, "/user.slice", own["cpuacct"])
	assert.Equal(t, "/user.slice", own["cpu,cpuacct"])
	assert.Equal(t, "/user.slice/user-1000.slice/session-2.scope", own["name=systemd"])
	assert.Equal(t, "/user.slice/user-1000.slice/session-2.scope", own[""])
	_, err := parseProcCgroup(strings.NewReader("garbage\n"))
	assert.Error(t, err)
}

func TestUnescapeMount(t *testing.T) {
	assert.Equal(t, "/mnt/memory copy", unescapeMount(`/mnt/memory\040copy`))
	assert.Equal(t, `/a\b`, unescapeMount(`/a\b`))
	assert.Equal(t, `/a\04`, unescapeMount(`/a\04`))
}
