package oci

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/santhosh-tekuri/jsonschema/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/berth-run/berth/internal/errdefs"
	"github.com/berth-run/berth/internal/testutil"
)

// newRootfs makes a rootfs with busybox's /etc/passwd and /etc/group.
func newRootfs(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(root, "etc"), 0o755))
	for name, body := range busyboxFiles {
		require.NoError(t, os.WriteFile(filepath.Join(root, name), []byte(body), 0o644))
	}
	return root
}

// TestGenerateOnThisMachine runs the real host probe and docker's real
// seccomp profile.
func TestGenerateOnThisMachine(t *testing.T) {
	cfg := baseConfig()
	cfg.Rootfs = newRootfs(t)
	cfg.User = "app"
	s, err := Generate(cfg)
	require.NoError(t, err)
	assert.Equal(t, uint64(0xa80425fb), capMask(s.Process.Capabilities.Bounding))
	assert.Equal(t, uint32(1000), s.Process.User.UID)
	assert.Contains(t, s.Process.Env, "HOME=/home/app")

	var hard unix.Rlimit
	require.NoError(t, unix.Getrlimit(unix.RLIMIT_NOFILE, &hard))
	want := min(uint64(1048576), hard.Max)
	if capMaskOf(t)&(1<<24) != 0 {
		want = 1048576
	}
	assert.Equal(t, []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: want, Hard: want}}, s.Process.Rlimits)

	require.NotNil(t, s.Linux.Seccomp)
	assert.Equal(t, specs.ActErrno, s.Linux.Seccomp.DefaultAction)
	assert.NotEmpty(t, s.Linux.Seccomp.Syscalls)
	assert.False(t, seccompAllows(s.Linux.Seccomp, "mount"), "mount needs CAP_SYS_ADMIN in docker's profile")

	// the profile follows the capabilities, as docker's does
	cfg.CapAdd = []string{"SYS_ADMIN"}
	s, err = Generate(cfg)
	require.NoError(t, err)
	assert.True(t, seccompAllows(s.Linux.Seccomp, "mount"))

	assert.False(t, slices.ContainsFunc(s.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == specs.TimeNamespace }))
}

func capMaskOf(t *testing.T) uint64 {
	m, ok := capEff()
	require.True(t, ok)
	return m
}

func seccompAllows(p *specs.LinuxSeccomp, name string) bool {
	for _, sc := range p.Syscalls {
		if sc.Action == specs.ActAllow && slices.Contains(sc.Names, name) {
			return true
		}
	}
	return false
}

func TestCustomSeccompProfile(t *testing.T) {
	dir := t.TempDir()
	profile := filepath.Join(dir, "p.json")
	require.NoError(t, os.WriteFile(profile, []byte(`{
		"defaultAction": "SCMP_ACT_ALLOW",
		"syscalls": [
			{"names": ["chmod"], "action": "SCMP_ACT_ERRNO"},
			{"names": ["reboot"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_BOOT"]}}
		]
	}`), 0o644))
	cfg := baseConfig()
	cfg.Rootfs = newRootfs(t)
	cfg.Seccomp = profile
	s, err := Generate(cfg)
	require.NoError(t, err)
	assert.Equal(t, specs.ActAllow, s.Linux.Seccomp.DefaultAction)
	require.Len(t, s.Linux.Seccomp.Syscalls, 1, "the CAP_SYS_BOOT rule is left out")
	assert.Equal(t, []string{"chmod"}, s.Linux.Seccomp.Syscalls[0].Names)

	require.NoError(t, os.WriteFile(profile, []byte(`{"defaultAction": 7}`), 0o644))
	_, err = Generate(cfg)
	assert.ErrorIs(t, err, errdefs.ErrInvalid)
}

// TestUserFilesStayInRootfs: the image's /etc/passwd and /etc/group are
// read with symlinks resolved inside the rootfs, so an image cannot make
// berth read the host's files.
func TestUserFilesStayInRootfs(t *testing.T) {
	root := t.TempDir()
	etc := filepath.Join(root, "etc")
	require.NoError(t, os.MkdirAll(etc, 0o755))
	// /etc/passwd -> /etc/shadow (absolute: the host's, outside the rootfs)
	require.NoError(t, os.Symlink("/etc/shadow", filepath.Join(etc, "passwd")))
	// /etc/group -> ../../../../../../etc/group-real (climbs out)
	require.NoError(t, os.Symlink("../../../../../../../etc/group-real", filepath.Join(etc, "group")))
	// what a chroot would find instead
	require.NoError(t, os.WriteFile(filepath.Join(etc, "shadow"), []byte("root:x:0:0::/in-rootfs:/bin/sh\n"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(etc, "group-real"), []byte("marker:x:4242:root\n"), 0o644))

	cfg := baseConfig()
	cfg.Rootfs = root
	s, err := Generate(cfg)
	require.NoError(t, err)
	assert.Contains(t, s.Process.Env, "HOME=/in-rootfs")
	assert.Equal(t, []uint32{0, 4242}, s.Process.User.AdditionalGids)

	// A user that only the host has is not found.
	hostPasswd, err := os.ReadFile("/etc/passwd")
	require.NoError(t, err)
	hostOnly := strings.SplitN(strings.SplitN(string(hostPasswd), "\n", 3)[1], ":", 2)[0]
	require.NotEmpty(t, hostOnly)
	cfg.User = hostOnly
	_, err = Generate(cfg)
	assert.ErrorIs(t, err, errdefs.ErrNotFound)

	// Without the files: root, home "/".
	require.NoError(t, os.Remove(filepath.Join(etc, "shadow")))
	require.NoError(t, os.Remove(filepath.Join(etc, "group-real")))
	cfg.User = ""
	s, err = Generate(cfg)
	require.NoError(t, err)
	assert.Contains(t, s.Process.Env, "HOME=/")
	assert.Equal(t, []uint32{0}, s.Process.User.AdditionalGids)
}

func TestUserFilesMustBeRegular(t *testing.T) {
	root := t.TempDir()
	etc := filepath.Join(root, "etc")
	require.NoError(t, os.MkdirAll(etc, 0o755))
	require.NoError(t, unix.Mkfifo(filepath.Join(etc, "passwd"), 0o644))
	cfg := baseConfig()
	cfg.Rootfs = root
	done := make(chan error, 1)
	go func() { _, err := Generate(cfg); done <- err }()
	select {
	case err := <-done:
		assert.ErrorIs(t, err, errdefs.ErrInvalid)
	case <-time.After(10 * time.Second):
		t.Fatal("Generate blocked on a fifo at /etc/passwd")
	}
	require.NoError(t, os.Remove(filepath.Join(etc, "passwd")))
	require.NoError(t, os.Mkdir(filepath.Join(etc, "passwd"), 0o755))
	_, err := Generate(cfg)
	assert.ErrorIs(t, err, errdefs.ErrInvalid)
}

func TestCreateWorkdir(t *testing.T) {
	root := t.TempDir()
	require.NoError(t, CreateWorkdir(root, "/srv/app"))
	fi, err := os.Stat(filepath.Join(root, "srv/app"))
	require.NoError(t, err)
	assert.True(t, fi.IsDir())
	assert.Equal(t, os.FileMode(0o755), fi.Mode().Perm())
	require.NoError(t, CreateWorkdir(root, "/srv/app"), "an existing directory is fine")

	// a symlink pointing out of the rootfs is followed inside it
	outside := t.TempDir()
	require.NoError(t, os.Symlink(outside, filepath.Join(root, "data")))
	require.NoError(t, os.MkdirAll(filepath.Join(root, outside), 0o755))
	require.NoError(t, CreateWorkdir(root, "/data/work"))
	_, err = os.Stat(filepath.Join(outside, "work"))
	assert.True(t, os.IsNotExist(err), "created outside the rootfs")
	_, err = os.Stat(filepath.Join(root, outside, "work"))
	assert.NoError(t, err)
	// a dangling one is refused rather than guessed at
	require.NoError(t, os.Symlink("/nowhere", filepath.Join(root, "dangling")))
	assert.Error(t, CreateWorkdir(root, "/dangling/x"))
	_, err = os.Stat("/nowhere")
	assert.True(t, os.IsNotExist(err))

	require.NoError(t, os.WriteFile(filepath.Join(root, "file"), nil, 0o644))
	assert.ErrorIs(t, CreateWorkdir(root, "/file/sub"), errdefs.ErrInvalid)
	assert.ErrorIs(t, CreateWorkdir(root, "rel"), errdefs.ErrInvalid)
}

func TestHostProbes(t *testing.T) {
	h := probeHost()
	assert.GreaterOrEqual(t, h.capLast, 37)
	assert.Positive(t, h.numCPU)
	assert.NotEmpty(t, h.cpusOnline)

	devs, err := devicesFromPath("/dev/null")
	require.NoError(t, err)
	require.Len(t, devs, 1)
	assert.Equal(t, "c", devs[0].Type)
	assert.Equal(t, int64(1), devs[0].Major)
	assert.Equal(t, int64(3), devs[0].Minor)
	_, err = devicesFromPath("/etc/hostname")
	assert.Error(t, err)

	all, err := walkDevices("/dev")
	require.NoError(t, err)
	var paths []string
	for _, d := range all {
		paths = append(paths, d.Path)
		assert.False(t, strings.HasPrefix(d.Path, "/dev/pts/"), d.Path)
		assert.NotEqual(t, "/dev/console", d.Path)
	}
	assert.Contains(t, paths, "/dev/null")

	mp, _, err := mountOf("/proc/self")
	require.NoError(t, err)
	assert.Equal(t, "/proc", mp)
}

// TestSpecsMatchTheSchema validates generated specs against the OCI
// runtime-spec JSON schema of the module version in go.mod.
func TestSpecsMatchTheSchema(t *testing.T) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/opencontainers/runtime-spec").Output()
	if err != nil {
		testutil.Unavailable(t, "cannot locate the runtime-spec module: "+err.Error())
	}
	dir := filepath.Join(strings.TrimSpace(string(out)), "schema")
	c := jsonschema.NewCompiler()
	c.Draft = jsonschema.Draft4
	// jsonschema v5 cannot compile config-vm.json's array-form "items";
	// berth never writes a "vm" section, so stand in an empty one.
	require.NoError(t, c.AddResource("file://"+filepath.Join(dir, "config-vm.json"), strings.NewReader(`{"vm": {"type": "object"}}`)))
	schema, err := c.Compile("file://" + filepath.Join(dir, "config-schema.json"))
	require.NoError(t, err)

	rootfs := newRootfs(t)
	full := baseConfig()
	full.Rootfs = rootfs
	full.User = "app:users"
	full.Tty, full.ReadOnly, full.NoNewPrivileges = true, true, true
	full.Init, full.InitPath = true, "/proc/self/exe"
	full.CapAdd, full.CapDrop = []string{"NET_ADMIN"}, []string{"MKNOD"}
	score := 100
	full.OomScoreAdj = &score
	swappiness := int64(0)
	full.Resources = Resources{Memory: 64 << 20, MemoryReservation: 32 << 20, MemorySwappiness: &swappiness, NanoCPUs: 5e8, CPUShares: 512, PidsLimit: 100, BlkioWeight: 500}
	full.Ulimits = []Ulimit{{Name: "nproc", Soft: 100, Hard: 200}}
	full.Mounts = []Mount{
		{Type: MountBind, Source: rootfs, Destination: "/host", ReadOnly: true},
		{Type: MountTmpfs, Destination: "/run", TmpfsSize: 1 << 20},
	}
	full.Sysctls = map[string]string{"net.core.somaxconn": "1024"}
	full.Devices = []DeviceMapping{{PathOnHost: "/dev/null", PathInContainer: "/dev/mynull", CgroupPermissions: "rw"}}
	full.Annotations = map[string]string{"a": "b"}
	full.Domainname = "example.org"

	priv := baseConfig()
	priv.Rootfs = rootfs
	priv.Privileged = true
	priv.NetNS, priv.PIDMode = "host", "host"

	for name, cfg := range map[string]Config{"default": func() Config { c := baseConfig(); c.Rootfs = rootfs; return c }(), "full": full, "privileged": priv} {
		t.Run(name, func(t *testing.T) {
			s, err := Generate(cfg)
			require.NoError(t, err)
			b, err := json.Marshal(s)
			require.NoError(t, err)
			var doc any
			dec := json.NewDecoder(bytes.NewReader(b))
			dec.UseNumber()
			require.NoError(t, dec.Decode(&doc))
			assert.NoError(t, schema.Validate(doc))
		})
	}
	// the schema does catch a broken spec
	broken := map[string]any{"ociVersion": "1.3.0", "process": map[string]any{"cwd": "/", "user": map[string]any{"uid": -1, "gid": 0}}}
	assert.Error(t, schema.Validate(broken))
}
