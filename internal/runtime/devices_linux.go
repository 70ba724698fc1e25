package runtime

import (
	"errors"
	"fmt"
	"os"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// defaultDevices are the devices every container gets (runtime-spec,
// "Default Devices"), unless the spec lists the same path.
var defaultDevices = []specs.LinuxDevice{
	{Path: "/dev/null", Type: "c", Major: 1, Minor: 3},
	{Path: "/dev/zero", Type: "c", Major: 1, Minor: 5},
	{Path: "/dev/full", Type: "c", Major: 1, Minor: 7},
	{Path: "/dev/random", Type: "c", Major: 1, Minor: 8},
	{Path: "/dev/urandom", Type: "c", Major: 1, Minor: 9},
	{Path: "/dev/tty", Type: "c", Major: 5, Minor: 0},
}

// needsDev reports whether the runtime populates /dev: not when the spec
// bind-mounts something over /dev itself.
func needsDev(spec *specs.Spec) bool {
	for _, m := range spec.Mounts {
		if m.Destination == "/dev" || m.Destination == "/dev/" {
			if m.Type == "bind" || parseMountOptions(m.Options).bind {
				return false
			}
		}
	}
	return true
}

// createDevices makes the spec's and the default device nodes below the
// rootfs: mknod, or a bind mount of the host's node inside a user
// namespace where mknod is refused.
func (b *rootfsBuilder) createDevices() error {
	spec := b.cfg.Spec
	var devs []specs.LinuxDevice
	seen := map[string]bool{}
	if spec.Linux != nil {
		for _, d := range spec.Linux.Devices {
			seen[d.Path] = true
			devs = append(devs, d)
		}
	}
	for _, d := range defaultDevices {
		if !seen[d.Path] {
			mode := os.FileMode(0o666)
			d.FileMode = &mode
			devs = append(devs, d)
		}
	}
	for i := range devs {
		if err := b.createDevice(&devs[i]); err != nil {
			return fmt.Errorf("device %s: %w", devs[i].Path, err)
		}
	}
	links := [][2]string{
		{"/proc/self/fd", "/dev/fd"},
		{"/proc/self/fd/0", "/dev/stdin"},
		{"/proc/self/fd/1", "/dev/stdout"},
		{"/proc/self/fd/2", "/dev/stderr"},
		{"pts/ptmx", "/dev/ptmx"},
	}
	if _, err := os.Stat("/proc/kcore"); err == nil {
		links = append(links, [2]string{"/proc/kcore", "/dev/core"})
	}
	dev, err := mkdirAllInRoot(b.root, "/dev", 0o755)
	if err != nil {
		return err
	}
	defer unix.Close(dev)
	for _, l := range links {
		name := strings.TrimPrefix(l[1], "/dev/")
		if name == "ptmx" {
			// Replace a node a bind mount or the image left.
			_ = unix.Unlinkat(dev, name, 0)
		}
		if err := unix.Symlinkat(l[0], dev, name); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("symlink %s: %w", l[1], err)
		}
	}
	return nil
}

func (b *rootfsBuilder) createDevice(d *specs.LinuxDevice) error {
	if !strings.HasPrefix(d.Path, "/dev/") {
		return fmt.Errorf("not below /dev")
	}
	var typ uint32
	switch d.Type {
	case "c", "u":
		typ = unix.S_IFCHR
	case "b":
		typ = unix.S_IFBLK
	case "p":
		typ = unix.S_IFIFO
	default:
		return fmt.Errorf("unknown type %q", d.Type)
	}
	mode := uint32(0o666)
	if d.FileMode != nil {
		mode = uint32(d.FileMode.Perm())
	}
	if b.cfg.UserNS {
		fd, err := createInRoot(b.root, d.Path, 0o000)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		return unix.Mount(d.Path, fdPath(fd), "", unix.MS_BIND, "")
	}
	dir, err := mkdirAllInRoot(b.root, parentDir(d.Path), 0o755)
	if err != nil {
		return err
	}
	defer unix.Close(dir)
	name := d.Path[strings.LastIndexByte(d.Path, '/')+1:]
	_ = unix.Unlinkat(dir, name, 0)
	if err := unix.Mknodat(dir, name, typ|mode, int(unix.Mkdev(uint32(d.Major), uint32(d.Minor)))); err != nil {
		return err
	}
	uid, gid := 0, 0
	if d.UID != nil {
		uid = int(*d.UID)
	}
	if d.GID != nil {
		gid = int(*d.GID)
	}
	if err := unix.Fchownat(dir, name, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return err
	}
	// mknod honours the umask; the init runs with umask 0, but set the
	// mode anyway in case the caller's image had odd bits.
	return unix.Fchmodat(dir, name, mode, 0)
}

func parentDir(p string) string {
	i := strings.LastIndexByte(p, '/')
	if i <= 0 {
		return "/"
	}
	return p[:i]
}

// withDefaultDevices returns res with device cgroup rules appended that
// allow what every container needs (as runc does): mknod of any node (the
// nodes made are the spec's own), the default devices, /dev/console,
// /dev/ptmx and the pty slaves, and the spec's devices. Without device
// rules in res nothing is restricted and res is returned as is.
func withDefaultDevices(res *specs.LinuxResources, devs []specs.LinuxDevice) *specs.LinuxResources {
	if res == nil || len(res.Devices) == 0 {
		return res
	}
	i64 := func(v int64) *int64 { return &v }
	rule := func(typ string, major, minor int64, access string) specs.LinuxDeviceCgroup {
		return specs.LinuxDeviceCgroup{Allow: true, Type: typ, Major: i64(major), Minor: i64(minor), Access: access}
	}
	out := *res
	out.Devices = append([]specs.LinuxDeviceCgroup(nil), res.Devices...)
	out.Devices = append(out.Devices,
		rule("c", -1, -1, "m"), rule("b", -1, -1, "m"),
		rule("c", 1, 3, "rwm"), rule("c", 1, 5, "rwm"), rule("c", 1, 7, "rwm"),
		rule("c", 1, 8, "rwm"), rule("c", 1, 9, "rwm"), rule("c", 5, 0, "rwm"),
		rule("c", 5, 1, "rwm"), rule("c", 5, 2, "rwm"), rule("c", 136, -1, "rwm"),
	)
	for _, d := range devs {
		typ := d.Type
		if typ == "u" {
			typ = "c"
		}
		if typ == "p" {
			continue
		}
		out.Devices = append(out.Devices, rule(typ, d.Major, d.Minor, "rwm"))
	}
	return &out
}
