package oci

import (
	"fmt"
	"os"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// propagations are the valid mount propagation modes.
var propagations = map[string]bool{
	"private": true, "rprivate": true,
	"shared": true, "rshared": true,
	"slave": true, "rslave": true,
}

// tmpfsFlags maps each tmpfs flag option to the mount flag it sets or
// clears, so that a later option overrides an earlier one for the same
// flag (moby/sys/mount MergeTmpfsOptions). All propagation modes share
// one key.
var tmpfsFlags = map[string]string{
	"ro": "rdonly", "rw": "rdonly",
	"suid": "nosuid", "nosuid": "nosuid",
	"dev": "nodev", "nodev": "nodev",
	"exec": "noexec", "noexec": "noexec",
	"sync": "sync", "async": "sync",
	"dirsync": "dirsync",
	"remount": "remount",
	"mand":    "mand", "nomand": "mand",
	"atime": "noatime", "noatime": "noatime",
	"diratime": "nodiratime", "nodiratime": "nodiratime",
	"relatime": "relatime", "norelatime": "relatime",
	"strictatime": "strictatime", "nostrictatime": "strictatime",
	"bind": "propagation", "rbind": "propagation",
	"unbindable": "propagation", "runbindable": "propagation",
	"private": "propagation", "rprivate": "propagation",
	"shared": "propagation", "rshared": "propagation",
	"slave": "propagation", "rslave": "propagation",
}

// tmpfsData are the tmpfs key=value options.
var tmpfsData = map[string]bool{
	"size": true, "mode": true, "uid": true, "gid": true,
	"nr_inodes": true, "nr_blocks": true, "mpol": true,
}

var tmpfsDataValue = regexp.MustCompile(`^[0-9A-Za-z%:,=_.+-]*$`)

// MergeTmpfsOptions merges tmpfs options, the later of two options for the
// same flag or key winning, in docker's order; "defaults" is dropped. An
// unknown option is an ErrInvalid error.
func MergeTmpfsOptions(options []string) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	for i := len(options) - 1; i >= 0; i-- {
		o := options[i]
		if o == "defaults" {
			continue
		}
		key, isFlag := tmpfsFlags[o]
		if !isFlag {
			k, v, ok := strings.Cut(o, "=")
			if !ok || !tmpfsData[k] {
				return nil, invalidf("invalid tmpfs option %q", o)
			}
			if !tmpfsDataValue.MatchString(v) {
				return nil, invalidf("invalid tmpfs option %q", o)
			}
			key = "data:" + k
		}
		if !seen[key] {
			seen[key] = true
			out = append(out, o)
		}
	}
	slices.Reverse(out)
	return out, nil
}

// tmpfsSize formats a size as docker does for tmpfs options: in g, m or k
// when it divides evenly, else in bytes.
func tmpfsSize(size int64) string {
	for _, u := range []struct {
		suffix string
		div    int64
	}{{"g", 1 << 30}, {"m", 1 << 20}, {"k", 1 << 10}} {
		if size%u.div == 0 {
			return strconv.FormatInt(size/u.div, 10) + u.suffix
		}
	}
	return strconv.FormatInt(size, 10)
}

// checkDestination validates a mount destination: absolute, clean, not "/".
func checkDestination(dst string) (string, error) {
	if dst == "" {
		return "", invalidf("mount destination is empty")
	}
	if !path.IsAbs(dst) {
		return "", invalidf("invalid mount path: %q mount path must be absolute", dst)
	}
	if strings.ContainsRune(dst, 0) {
		return "", invalidf("invalid mount path %q", dst)
	}
	clean := path.Clean(dst)
	if clean == "/" {
		return "", invalidf("invalid mount path %q: the root cannot be a mount destination", dst)
	}
	return clean, nil
}

// userMount converts one resolved user mount to its OCI form, docker's
// way (daemon/oci_linux.go withMounts).
func userMount(m Mount) (specs.Mount, error) {
	dst, err := checkDestination(m.Destination)
	if err != nil {
		return specs.Mount{}, err
	}
	if m.Propagation != "" && !propagations[m.Propagation] {
		return specs.Mount{}, invalidf("mount %s: invalid propagation mode %q", dst, m.Propagation)
	}
	switch m.Type {
	case MountTmpfs:
		if m.Propagation != "" || m.NonRecursive {
			return specs.Mount{}, invalidf("mount %s: bind options on a tmpfs mount", dst)
		}
		if m.TmpfsSize < 0 {
			return specs.Mount{}, invalidf("mount %s: invalid tmpfs size %d", dst, m.TmpfsSize)
		}
		var data []string
		if m.ReadOnly {
			data = append(data, "ro")
		}
		if m.TmpfsMode != 0 {
			data = append(data, fmt.Sprintf("mode=%o", unixMode(m.TmpfsMode)))
		}
		if m.TmpfsSize != 0 {
			data = append(data, "size="+tmpfsSize(m.TmpfsSize))
		}
		data = append(data, m.Options...)
		opts, err := MergeTmpfsOptions(append([]string{"noexec", "nosuid", "nodev", "rprivate"}, data...))
		if err != nil {
			return specs.Mount{}, fmt.Errorf("mount %s: %w", dst, err)
		}
		return specs.Mount{Destination: dst, Type: "tmpfs", Source: "tmpfs", Options: opts}, nil
	case MountBind, MountVolume:
		if !path.IsAbs(m.Source) {
			return specs.Mount{}, invalidf("mount %s: source %q is not an absolute path", dst, m.Source)
		}
		if len(m.Options) > 0 {
			return specs.Mount{}, invalidf("mount %s: options %q are only for tmpfs mounts", dst, m.Options)
		}
		opts := []string{"rbind"}
		if m.NonRecursive {
			opts[0] = "bind"
		}
		if m.ReadOnly {
			// "ro" on the mount itself, "rro" (recursively read-only,
			// mount_setattr) on its submounts, as docker >= 25 does.
			opts = append(opts, "ro", "rro")
		}
		prop := m.Propagation
		if prop == "" && m.Type == MountBind {
			prop = "rprivate"
		}
		if prop != "" {
			opts = append(opts, prop)
		}
		return specs.Mount{Destination: dst, Type: "bind", Source: path.Clean(m.Source), Options: opts}, nil
	default:
		return specs.Mount{}, invalidf("mount %s: unknown mount type %q", dst, m.Type)
	}
}

// unixMode returns the permission bits of m as a mode_t, taking the
// set-id and sticky bits either in Go's form (os.ModeSticky) or as the raw
// octal digits (0o1777).
func unixMode(m os.FileMode) uint32 {
	u := uint32(m & 0o7777)
	if m&os.ModeSetuid != 0 {
		u |= 0o4000
	}
	if m&os.ModeSetgid != 0 {
		u |= 0o2000
	}
	if m&os.ModeSticky != 0 {
		u |= 0o1000
	}
	return u
}

// sysBind is a docker-made bind mount (network files, /dev/shm).
func sysBind(src, dst string, writable bool) specs.Mount {
	opts := []string{"rbind"}
	if !writable {
		opts = append(opts, "ro", "rro")
	}
	return specs.Mount{Destination: dst, Type: "bind", Source: src, Options: append(opts, "rprivate")}
}

func depth(p string) int { return strings.Count(path.Clean(p), "/") }

var procNSIPC = regexp.MustCompile(`^/proc/([0-9]+)/ns/ipc$`)

// buildMounts composes the container's mounts as docker does: the default
// mounts that no user mount replaces (all of /dev/* goes when the user
// mounts /dev; /dev/shm goes with IPC "none" and gets its size), the init
// binary, then the user's mounts and docker's own binds (/dev/shm of a
// shared IPC namespace, /etc/resolv.conf, /etc/hostname, /etc/hosts)
// sorted by depth. It returns the mounts and the root propagation that
// shared or slave binds need.
func buildMounts(cfg *Config, h *host, initMount bool) ([]specs.Mount, string, error) {
	var user []specs.Mount
	userDst := map[string]bool{}
	rootProp := ""
	for _, m := range cfg.Mounts {
		sm, err := userMount(m)
		if err != nil {
			return nil, "", err
		}
		if userDst[sm.Destination] {
			return nil, "", invalidf("duplicate mount point: %s", sm.Destination)
		}
		userDst[sm.Destination] = true
		switch m.Propagation {
		case "shared", "rshared":
			if err := ensurePropagation(h, sm.Source, "shared:"); err != nil {
				return nil, "", err
			}
			if rootProp != "shared" && rootProp != "rshared" {
				rootProp = "shared"
			}
		case "slave", "rslave":
			if err := ensurePropagation(h, sm.Source, "shared:", "master:"); err != nil {
				return nil, "", err
			}
			if rootProp == "" {
				rootProp = "rslave"
			}
		}
		user = append(user, sm)
	}

	// docker's IpcMounts: the host's /dev/shm, or the donor container's.
	if !userDst["/dev/shm"] {
		var shm string
		switch {
		case cfg.IPCMode == "host":
			shm = "/dev/shm"
		case procNSIPC.MatchString(cfg.IPCMode):
			shm = "/proc/" + procNSIPC.FindStringSubmatch(cfg.IPCMode)[1] + "/root/dev/shm"
		}
		if shm != "" {
			user = append(user, sysBind(shm, "/dev/shm", true))
			userDst["/dev/shm"] = true
		}
	}
	// docker's NetworkMounts, in docker's order, writable unless read-only.
	for _, nm := range []struct{ src, dst string }{
		{cfg.ResolvConfPath, "/etc/resolv.conf"},
		{cfg.HostnamePath, "/etc/hostname"},
		{cfg.HostsPath, "/etc/hosts"},
	} {
		if nm.src == "" || userDst[nm.dst] {
			continue
		}
		if !path.IsAbs(nm.src) {
			return nil, "", invalidf("%s source %q is not an absolute path", nm.dst, nm.src)
		}
		user = append(user, sysBind(nm.src, nm.dst, !cfg.ReadOnly))
		userDst[nm.dst] = true
	}
	slices.SortStableFunc(user, func(a, b specs.Mount) int { return depth(a.Destination) - depth(b.Destination) })

	shmSize := cfg.ShmSize
	if shmSize < 0 {
		return nil, "", invalidf("invalid shm size %d", shmSize)
	}
	if shmSize == 0 {
		shmSize = DefaultShmSize
	}
	defaults := defaultMounts()
	if initMount {
		defaults = append(defaults, specs.Mount{Destination: InitMountPath, Type: "bind", Source: cfg.InitPath, Options: []string{"bind", "ro"}})
	}
	var out []specs.Mount
	for _, m := range defaults {
		if userDst[m.Destination] {
			continue
		}
		if userDst["/dev"] && strings.HasPrefix(m.Destination, "/dev/") {
			continue
		}
		if m.Destination == "/dev/shm" {
			if cfg.IPCMode == "none" {
				continue
			}
			m.Options = append(m.Options, "size="+strconv.FormatInt(shmSize, 10))
		}
		out = append(out, m)
	}
	out = append(out, user...)

	if cfg.ReadOnly {
		for i, m := range out {
			switch m.Destination {
			case "/proc", "/dev/pts", "/dev/shm", "/dev/mqueue", "/dev":
				continue
			}
			if !userDst[m.Destination] && !slices.Contains(m.Options, "ro") {
				out[i].Options = append(slices.Clone(m.Options), "ro")
			}
		}
	}
	writableCgroups := cfg.Privileged
	if cfg.WritableCgroups != nil {
		writableCgroups = *cfg.WritableCgroups
	}
	for i, m := range out {
		if (cfg.Privileged && m.Destination == "/sys") || (writableCgroups && m.Type == "cgroup") {
			out[i].Options = slices.DeleteFunc(slices.Clone(m.Options), func(o string) bool { return o == "ro" })
		}
	}
	return out, rootProp, nil
}

// ensurePropagation checks that the host mount holding src has one of the
// given propagation fields (docker's ensureShared / ensureSharedOrSlave).
func ensurePropagation(h *host, src string, want ...string) error {
	mp, optional, err := h.mountOf(src)
	if err != nil {
		return invalidf("bind source %s: %v", src, err)
	}
	for f := range strings.FieldsSeq(optional) {
		for _, w := range want {
			if strings.HasPrefix(f, w) {
				return nil
			}
		}
	}
	if len(want) == 1 {
		return invalidf("path %s is mounted on %s but it is not a shared mount", src, mp)
	}
	return invalidf("path %s is mounted on %s but it is not a shared or slave mount", src, mp)
}
