package oci

import (
	"os"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-run/berth/internal/errdefs"
)

var defaultDsts = []string{"/proc", "/dev", "/dev/pts", "/sys", "/sys/fs/cgroup", "/dev/mqueue", "/dev/shm"}

func TestUserMounts(t *testing.T) {
	for _, tc := range []struct {
		name string
		m    Mount
		want specs.Mount
	}{
		{
			name: "bind: rbind, rprivate by default",
			m:    Mount{Type: MountBind, Source: "/srv/data/", Destination: "/data/"},
			want: specs.Mount{Destination: "/data", Type: "bind", Source: "/srv/data", Options: []string{"rbind", "rprivate"}},
		},
		{
			name: "read-only bind: ro and recursively read-only",
			m:    Mount{Type: MountBind, Source: "/srv", Destination: "/srv", ReadOnly: true},
			want: specs.Mount{Destination: "/srv", Type: "bind", Source: "/srv", Options: []string{"rbind", "ro", "rro", "rprivate"}},
		},
		{
			name: "bind propagation and non-recursive",
			m:    Mount{Type: MountBind, Source: "/slave/srv", Destination: "/srv", Propagation: "rslave", NonRecursive: true},
			want: specs.Mount{Destination: "/srv", Type: "bind", Source: "/slave/srv", Options: []string{"bind", "rslave"}},
		},
		{
			name: "volume: no propagation option, as docker",
			m:    Mount{Type: MountVolume, Source: "/var/lib/berth/volumes/db/_data", Destination: "/var/lib/mysql"},
			want: specs.Mount{Destination: "/var/lib/mysql", Type: "bind", Source: "/var/lib/berth/volumes/db/_data", Options: []string{"rbind"}},
		},
		{
			name: "tmpfs: docker's noexec,nosuid,nodev,rprivate",
			m:    Mount{Type: MountTmpfs, Destination: "/run"},
			want: specs.Mount{Destination: "/run", Type: "tmpfs", Source: "tmpfs", Options: []string{"noexec", "nosuid", "nodev", "rprivate"}},
		},
		{
			name: "tmpfs --tmpfs options override the defaults",
			m:    Mount{Type: MountTmpfs, Destination: "/tmp", Options: []string{"rw", "exec", "size=64m", "defaults"}},
			want: specs.Mount{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "rprivate", "rw", "exec", "size=64m"}},
		},
		{
			name: "tmpfs --mount size, mode, readonly",
			m:    Mount{Type: MountTmpfs, Destination: "/cache", TmpfsSize: 100 << 20, TmpfsMode: 0o1777, ReadOnly: true},
			want: specs.Mount{Destination: "/cache", Type: "tmpfs", Source: "tmpfs", Options: []string{"noexec", "nosuid", "nodev", "rprivate", "ro", "mode=1777", "size=100m"}},
		},
		{
			name: "tmpfs odd size in bytes, Go-style sticky mode",
			m:    Mount{Type: MountTmpfs, Destination: "/cache", TmpfsSize: 1000, TmpfsMode: os.ModeSticky | 0o777},
			want: specs.Mount{Destination: "/cache", Type: "tmpfs", Source: "tmpfs", Options: []string{"noexec", "nosuid", "nodev", "rprivate", "mode=1777", "size=1000"}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := baseConfig()
			cfg.Mounts = []Mount{tc.m}
			s := gen(t, cfg)
			require.Len(t, s.Mounts, 8)
			assert.Equal(t, tc.want, s.Mounts[7])
		})
	}
}

func TestMountRules(t *testing.T) {
	t.Run("user mounts replace defaults and sort by depth", func(t *testing.T) {
		cfg := baseConfig()
		cfg.Mounts = []Mount{
			{Type: MountBind, Source: "/a/b", Destination: "/var/lib/data"},
			{Type: MountBind, Source: "/host/shm", Destination: "/dev/shm"},
			{Type: MountVolume, Source: "/v", Destination: "/data"},
			{Type: MountBind, Source: "/c", Destination: "/var/log"},
		}
		cfg.HostsPath, cfg.ResolvConfPath, cfg.HostnamePath = "/c/hosts", "/c/resolv.conf", "/c/hostname"
		s := gen(t, cfg)
		assert.Equal(t, []string{
			"/proc", "/dev", "/dev/pts", "/sys", "/sys/fs/cgroup", "/dev/mqueue",
			"/data", "/dev/shm", "/var/log", "/etc/resolv.conf", "/etc/hostname", "/etc/hosts", "/var/lib/data",
		}, destinations(s))
		assert.Equal(t, "/host/shm", mountAt(s, "/dev/shm").Source)
		assert.Equal(t, []string{"rbind", "rprivate"}, mountAt(s, "/etc/hosts").Options, "docker mounts the network files rw")
	})
	t.Run("a /dev mount drops every default under /dev", func(t *testing.T) {
		cfg := baseConfig()
		cfg.Mounts = []Mount{{Type: MountBind, Source: "/dev", Destination: "/dev"}}
		assert.Equal(t, []string{"/proc", "/sys", "/sys/fs/cgroup", "/dev"}, destinations(gen(t, cfg)))
	})
	t.Run("user files replace the network files", func(t *testing.T) {
		cfg := baseConfig()
		cfg.HostsPath = "/c/hosts"
		cfg.Mounts = []Mount{{Type: MountBind, Source: "/mine/hosts", Destination: "/etc/hosts", ReadOnly: true}}
		s := gen(t, cfg)
		assert.Equal(t, "/mine/hosts", mountAt(s, "/etc/hosts").Source)
		assert.Len(t, s.Mounts, 8)
	})
	t.Run("shm size", func(t *testing.T) {
		cfg := baseConfig()
		cfg.ShmSize = 256 << 20
		assert.Contains(t, mountAt(gen(t, cfg), "/dev/shm").Options, "size=268435456")
	})
	t.Run("ipc none has no /dev/shm", func(t *testing.T) {
		cfg := baseConfig()
		cfg.IPCMode = "none"
		s := gen(t, cfg)
		assert.Nil(t, mountAt(s, "/dev/shm"))
		assert.Contains(t, nsTypes(s), "ipc")
	})
	t.Run("ipc host binds the host's /dev/shm", func(t *testing.T) {
		cfg := baseConfig()
		cfg.IPCMode = "host"
		m := mountAt(gen(t, cfg), "/dev/shm")
		assert.Equal(t, specs.Mount{Destination: "/dev/shm", Type: "bind", Source: "/dev/shm", Options: []string{"rbind", "rprivate"}}, *m)
	})
	t.Run("ipc of another container binds its /dev/shm", func(t *testing.T) {
		cfg := baseConfig()
		cfg.IPCMode = "/proc/77/ns/ipc"
		assert.Equal(t, "/proc/77/root/dev/shm", mountAt(gen(t, cfg), "/dev/shm").Source)
	})
	t.Run("read-only root", func(t *testing.T) {
		cfg := baseConfig()
		cfg.ReadOnly = true
		cfg.HostsPath = "/c/hosts"
		cfg.Mounts = []Mount{{Type: MountBind, Source: "/w", Destination: "/w"}}
		s := gen(t, cfg)
		assert.True(t, s.Root.Readonly)
		// /dev etc. stay writable tmpfs; the network files become ro;
		// the user's mounts are as given.
		assert.Equal(t, []string{"nosuid", "strictatime", "mode=755", "size=65536k"}, mountAt(s, "/dev").Options)
		assert.NotContains(t, mountAt(s, "/dev/shm").Options, "ro")
		assert.Equal(t, []string{"rbind", "ro", "rro", "rprivate"}, mountAt(s, "/etc/hosts").Options)
		assert.Equal(t, []string{"rbind", "rprivate"}, mountAt(s, "/w").Options)
		assert.Contains(t, mountAt(s, "/sys").Options, "ro")
	})
	t.Run("shared and slave binds set the root propagation", func(t *testing.T) {
		cfg := baseConfig()
		cfg.Mounts = []Mount{{Type: MountBind, Source: "/slave/x", Destination: "/x", Propagation: "rslave"}}
		assert.Equal(t, "rslave", gen(t, cfg).Linux.RootfsPropagation)
		cfg.Mounts = append(cfg.Mounts, Mount{Type: MountBind, Source: "/shared/y", Destination: "/y", Propagation: "rshared"})
		assert.Equal(t, "shared", gen(t, cfg).Linux.RootfsPropagation)
		cfg.Mounts = []Mount{{Type: MountBind, Source: "/private/z", Destination: "/z", Propagation: "shared"}}
		err := genErr(t, cfg, errdefs.ErrInvalid)
		assert.Contains(t, err.Error(), "is mounted on / but it is not a shared mount")
		cfg.Mounts[0].Propagation = "slave"
		err = genErr(t, cfg, errdefs.ErrInvalid)
		assert.Contains(t, err.Error(), "not a shared or slave mount")
	})
	t.Run("invalid mounts", func(t *testing.T) {
		for _, m := range []Mount{
			{Type: MountBind, Source: "/a", Destination: "/"},
			{Type: MountBind, Source: "/a", Destination: "relative"},
			{Type: MountBind, Source: "/a", Destination: ""},
			{Type: MountBind, Source: "relative", Destination: "/a"},
			{Type: MountBind, Source: "/a", Destination: "/a", Propagation: "rshared-ish"},
			{Type: MountBind, Source: "/a", Destination: "/a", Options: []string{"noexec"}},
			{Type: MountTmpfs, Destination: "/a", Options: []string{"size=1m", "nosuchopt"}},
			{Type: MountTmpfs, Destination: "/a", Options: []string{"uid=1;rm"}},
			{Type: MountTmpfs, Destination: "/a", Propagation: "shared"},
			{Type: MountTmpfs, Destination: "/a", TmpfsSize: -1},
			{Type: "image", Source: "/a", Destination: "/a"},
		} {
			cfg := baseConfig()
			cfg.Mounts = []Mount{m}
			genErr(t, cfg, errdefs.ErrInvalid)
		}
		cfg := baseConfig()
		cfg.Mounts = []Mount{{Type: MountBind, Source: "/a", Destination: "/x"}, {Type: MountTmpfs, Destination: "/x/"}}
		err := genErr(t, cfg, errdefs.ErrInvalid)
		assert.Contains(t, err.Error(), "duplicate mount point: /x")
		cfg = baseConfig()
		cfg.ShmSize = -1
		genErr(t, cfg, errdefs.ErrInvalid)
	})
}

func TestSystemPathsAndCgroups(t *testing.T) {
	cfg := baseConfig()
	cfg.SystemPathsUnconfined = true
	yes := true
	cfg.WritableCgroups = &yes
	s := gen(t, cfg)
	assert.Nil(t, s.Linux.MaskedPaths)
	assert.Nil(t, s.Linux.ReadonlyPaths)
	assert.NotContains(t, mountAt(s, "/sys/fs/cgroup").Options, "ro")
	assert.Contains(t, mountAt(s, "/sys").Options, "ro")
	no := false
	cfg = baseConfig()
	cfg.Privileged, cfg.WritableCgroups = true, &no
	s = gen(t, cfg)
	assert.Contains(t, mountAt(s, "/sys/fs/cgroup").Options, "ro")
	assert.NotContains(t, mountAt(s, "/sys").Options, "ro")
}

func TestMergeTmpfsOptions(t *testing.T) {
	got, err := MergeTmpfsOptions([]string{"noexec", "nosuid", "nodev", "rprivate", "exec", "size=1m", "size=2m", "shared", "mode=700", "uid=1000", "gid=1000", "nr_inodes=1k", "mpol=local"})
	require.NoError(t, err)
	assert.Equal(t, []string{"nosuid", "nodev", "exec", "size=2m", "shared", "mode=700", "uid=1000", "gid=1000", "nr_inodes=1k", "mpol=local"}, got)
	_, err = MergeTmpfsOptions([]string{"bogus=1"})
	assert.ErrorIs(t, err, errdefs.ErrInvalid)
}

func TestDefaultMountOrderWithoutUserMounts(t *testing.T) {
	assert.Equal(t, defaultDsts, destinations(gen(t, baseConfig())))
}
