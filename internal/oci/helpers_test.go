package oci

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/require"

	"github.com/berth-run/berth/internal/errdefs"
)

const testID = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// thisMachineCaps is CapEff of root on this project's machines: every
// capability up to CAP_CHECKPOINT_RESTORE except CAP_SYS_RESOURCE.
const thisMachineCaps = 0x000001fffeffffff

// fakeHost is a cgroup v1 machine like this project's: 2 CPUs, nofile hard
// limit 20000, no CAP_SYS_RESOURCE, time namespaces, and an image whose
// /etc/passwd and /etc/group are in files (keyed by name).
func fakeHost(files map[string]string) *host {
	return &host{
		capLast:       40,
		effectiveCaps: thisMachineCaps,
		cgroup2:       false,
		swapLimit:     true,
		timeNS:        true,
		numCPU:        2,
		cpusOnline:    "0-1",
		memsOnline:    "0",
		hostname:      func() (string, error) { return "buildhost", nil },
		rlimit: func(res int) (uint64, uint64, error) {
			switch res {
			case rlimitNumbers["nofile"]:
				return 20000, 20000, nil
			case rlimitNumbers["nproc"]:
				return 96000, 96000, nil
			}
			return RlimitInfinity, RlimitInfinity, nil
		},
		sysctlExists: func(name string) bool {
			return name == "net.ipv4.ping_group_range" || name == "net.ipv4.ip_unprivileged_port_start"
		},
		devicesFromPath: func(p string) ([]specs.LinuxDevice, error) {
			mode := os.FileMode(0o660)
			var uid, gid uint32
			dev := func(path string, typ string, major, minor int64) specs.LinuxDevice {
				return specs.LinuxDevice{Path: path, Type: typ, Major: major, Minor: minor, FileMode: &mode, UID: &uid, GID: &gid}
			}
			switch p {
			case "/dev/fuse":
				return []specs.LinuxDevice{dev("/dev/fuse", "c", 10, 229)}, nil
			case "/dev/sda":
				return []specs.LinuxDevice{dev("/dev/sda", "b", 8, 0)}, nil
			case "/dev/snd":
				return []specs.LinuxDevice{dev("/dev/snd/controlC0", "c", 116, 0), dev("/dev/snd/timer", "c", 116, 33)}, nil
			case "/dev/null":
				return []specs.LinuxDevice{dev("/dev/null", "c", 1, 3)}, nil
			case "/etc":
				return nil, nil
			}
			return nil, fmt.Errorf("lstat %s: %w", p, os.ErrNotExist)
		},
		hostDevices: func() ([]specs.LinuxDevice, error) {
			mode := os.FileMode(0o666)
			var uid, gid uint32
			return []specs.LinuxDevice{
				{Path: "/dev/null", Type: "c", Major: 1, Minor: 3, FileMode: &mode, UID: &uid, GID: &gid},
				{Path: "/dev/kmsg", Type: "c", Major: 1, Minor: 11, FileMode: &mode, UID: &uid, GID: &gid},
				{Path: "/dev/ptmx", Type: "c", Major: 5, Minor: 2, FileMode: &mode, UID: &uid, GID: &gid},
				{Path: "/dev/sda", Type: "b", Major: 8, Minor: 0, FileMode: &mode, UID: &uid, GID: &gid},
			}, nil
		},
		mountOf: func(p string) (string, string, error) {
			switch {
			case strings.HasPrefix(p, "/shared"):
				return "/shared", "shared:7", nil
			case strings.HasPrefix(p, "/slave"):
				return "/slave", "master:3", nil
			}
			return "/", "", nil
		},
		readFile: func(p string) ([]byte, error) {
			if b, ok := files["host:"+p]; ok {
				return []byte(b), nil
			}
			return nil, &os.PathError{Op: "open", Path: p, Err: os.ErrNotExist}
		},
		openUserFile: func(_, name string) ([]byte, error) {
			if b, ok := files[name]; ok {
				return []byte(b), nil
			}
			return nil, nil
		},
		seccomp: func(profile []byte, s *specs.Spec) (*specs.LinuxSeccomp, error) {
			if profile == nil {
				return &specs.LinuxSeccomp{DefaultAction: specs.ActErrno}, nil
			}
			var p specs.LinuxSeccomp
			if err := json.Unmarshal(profile, &p); err != nil {
				return nil, err
			}
			return &p, nil
		},
	}
}

// busyboxFiles are a busybox image's /etc/passwd and /etc/group.
var busyboxFiles = map[string]string{
	"/etc/passwd": `root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
operator:x:37:37:Operator:/var:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
app:x:1000:1000:app user:/home/app:/bin/sh
`,
	"/etc/group": `root:x:0:
daemon:x:1:
bin:x:2:
wheel:x:10:root
# a comment
tty:x:5:
www-data:x:33:
users:x:100:app
docker:x:999:app,www-data
app:x:1000:
nogroup:x:65534:
`,
}

// baseConfig is a docker run of a busybox-like image with no options.
func baseConfig() Config {
	c := Config{ID: testID, Rootfs: "/var/lib/berth/containers/x/rootfs"}
	c.Image.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	c.Image.Cmd = []string{"sh"}
	return c
}

// gen generates cfg on the fake host, failing the test on error.
func gen(t *testing.T, cfg Config, edit ...func(*host)) *specs.Spec {
	t.Helper()
	h := fakeHost(busyboxFiles)
	for _, e := range edit {
		e(h)
	}
	s, err := generate(cfg, h)
	require.NoError(t, err)
	return s
}

// genErr generates cfg on the fake host and returns the error, which must
// be of the given kind.
func genErr(t *testing.T, cfg Config, kind error, edit ...func(*host)) error {
	t.Helper()
	h := fakeHost(busyboxFiles)
	for _, e := range edit {
		e(h)
	}
	_, err := generate(cfg, h)
	require.Error(t, err)
	require.True(t, errors.Is(err, kind), "error %q is not %v", err, kind)
	return err
}

func mountAt(s *specs.Spec, dst string) *specs.Mount {
	for i := range s.Mounts {
		if s.Mounts[i].Destination == dst {
			return &s.Mounts[i]
		}
	}
	return nil
}

func destinations(s *specs.Spec) []string {
	var out []string
	for _, m := range s.Mounts {
		out = append(out, m.Destination)
	}
	return out
}

func nsTypes(s *specs.Spec) []string {
	var out []string
	for _, n := range s.Linux.Namespaces {
		t := string(n.Type)
		if n.Path != "" {
			t += "=" + n.Path
		}
		out = append(out, t)
	}
	return out
}

func capMask(caps []string) uint64 {
	var m uint64
	for _, c := range caps {
		for i, n := range capNames {
			if n == c {
				m |= 1 << uint(i)
			}
		}
	}
	return m
}

var _ = errdefs.ErrInvalid
