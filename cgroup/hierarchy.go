package cgroup

import (
	"bufio"
	"fmt"
	"io"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/berth-run/berth/internal/errdefs"
)

// checkPath validates a cgroup path given to New and returns it cleaned.
func checkPath(p string) (string, error) {
	if p == "" {
		return "", errdefs.New(errdefs.ErrInvalid, "cgroup path is empty")
	}
	if strings.ContainsAny(p, "\x00\n") {
		return "", errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("cgroup path %q has a control character", p))
	}
	if !strings.HasPrefix(p, "/") && strings.Count(p, ":") == 2 {
		return "", errdefs.New(errdefs.ErrNotSupported,
			fmt.Sprintf("cgroup path %q: systemd slice:prefix:name paths are not supported", p))
	}
	for _, e := range strings.Split(p, "/") {
		if e == ".." {
			return "", errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("cgroup path %q contains \"..\"", p))
		}
	}
	abs := strings.HasPrefix(p, "/")
	c := path.Clean("/" + p)
	if c == "/" {
		return "", errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("cgroup path %q names the root cgroup", p))
	}
	if !abs {
		c = c[1:]
	}
	return c, nil
}

// parseProcCgroup parses /proc/self/cgroup ("4:memory:/a", "2:cpu,cpuacct:/",
// "1:name=systemd:/", "0::/") into controller -> path. Co-mounted
// controllers are listed each on its own and joined ("cpu,cpuacct"); the v2
// line is under "".
func parseProcCgroup(r io.Reader) (map[string]string, error) {
	own := make(map[string]string)
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			return nil, fmt.Errorf("parse /proc/self/cgroup line %q", line)
		}
		ctrls, p := parts[1], parts[2]
		if ctrls == "" {
			own[""] = p
			continue
		}
		own[ctrls] = p
		for _, c := range strings.Split(ctrls, ",") {
			own[c] = p
		}
	}
	return own, sc.Err()
}

// mount is one cgroup or cgroup2 line of /proc/self/mountinfo.
type mount struct {
	root       string   // the directory of the hierarchy mounted here
	mountpoint string   // where
	fstype     string   // "cgroup" or "cgroup2"
	opts       []string // super options ("rw", "cpu", "cpuacct", "name=systemd", "noprefix"...)
}

// parseMountInfo returns the cgroup and cgroup2 mounts of a mountinfo file.
func parseMountInfo(r io.Reader) ([]mount, error) {
	var ms []mount
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		// 36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
		line := sc.Text()
		pre, post, ok := strings.Cut(line, " - ")
		if !ok {
			continue
		}
		pf, qf := strings.Fields(pre), strings.Fields(post)
		if len(pf) < 5 || len(qf) < 3 {
			continue
		}
		if qf[0] != "cgroup" && qf[0] != "cgroup2" {
			continue
		}
		ms = append(ms, mount{
			root:       unescapeMount(pf[3]),
			mountpoint: unescapeMount(pf[4]),
			fstype:     qf[0],
			opts:       strings.Split(qf[2], ","),
		})
	}
	return ms, sc.Err()
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// notControllers are v1 super options that are not controller names.
var notControllers = map[string]bool{
	"rw": true, "ro": true, "noprefix": true, "xattr": true, "clone_children": true,
	"cpuset_v2_mode": true, "none": true, "all": true, "favordynmods": true,
	"nsdelegate": true, "memory_recursiveprot": true, "memory_localevents": true,
}

// v1Controllers extracts the controllers (and "name=systemd") a v1 mount
// carries; a mount of another named hierarchy gives nil.
func v1Controllers(opts []string) (ctrls []string, noPrefix bool) {
	for _, o := range opts {
		switch {
		case o == "noprefix":
			noPrefix = true
		case notControllers[o], strings.HasPrefix(o, "release_agent="):
		case strings.HasPrefix(o, "name="):
			if o != "name=systemd" {
				return nil, false
			}
			ctrls = append(ctrls, o)
		case strings.Contains(o, "="):
		default:
			ctrls = append(ctrls, o)
		}
	}
	sort.Strings(ctrls)
	return ctrls, noPrefix
}

// detectMode picks the layout from the mounts: cgroup2 at /sys/fs/cgroup is
// Unified; any v1 controller mount is Legacy; a lone cgroup2 mount elsewhere
// is Unified.
func detectMode(ms []mount) Mode {
	v2elsewhere := false
	for _, m := range ms {
		if m.fstype == "cgroup2" && m.mountpoint == "/sys/fs/cgroup" {
			return Unified
		}
	}
	for _, m := range ms {
		if m.fstype == "cgroup" {
			if c, _ := v1Controllers(m.opts); len(c) > 0 {
				return Legacy
			}
		}
		if m.fstype == "cgroup2" {
			v2elsewhere = true
		}
	}
	if v2elsewhere {
		return Unified
	}
	return Unavailable
}

// placeIn computes the cgroup directory for cgroup path p in a hierarchy
// mounted at mountpoint whose mount shows hierarchy directory mroot, for a
// caller whose own cgroup there is own. It returns the base (the existing
// directory the cgroup goes below) and the cgroup's directory.
func placeIn(mountpoint, mroot, own, p string) (base, dir string) {
	if strings.HasPrefix(p, "/") {
		return mountpoint, path.Join(mountpoint, p)
	}
	rel := own
	if mroot != "/" && mroot != "" {
		if own == mroot {
			rel = "/"
		} else if strings.HasPrefix(own, mroot+"/") {
			rel = strings.TrimPrefix(own, mroot)
		}
	}
	base = path.Join(mountpoint, rel)
	return base, path.Join(base, p)
}

// hierarchiesFromMounts resolves the hierarchies of mode for cgroup path p
// from the mounts and the caller's own cgroups.
func hierarchiesFromMounts(mode Mode, ms []mount, own map[string]string, p string) ([]hierarchy, error) {
	var hs []hierarchy
	switch mode {
	case Unified:
		var pick *mount
		for i := range ms {
			if ms[i].fstype != "cgroup2" {
				continue
			}
			if pick == nil || ms[i].mountpoint == "/sys/fs/cgroup" {
				pick = &ms[i]
			}
		}
		if pick == nil {
			return nil, errdefs.New(errdefs.ErrNotSupported, "no cgroup2 file system is mounted")
		}
		base, dir := placeIn(pick.mountpoint, pick.root, ownPath(own, ""), p)
		hs = append(hs, hierarchy{mount: pick.mountpoint, base: base, dir: dir})
	case Legacy:
		seen := make(map[string]bool)
		for _, m := range ms {
			if m.fstype != "cgroup" {
				continue
			}
			ctrls, noPrefix := v1Controllers(m.opts)
			if len(ctrls) == 0 {
				continue
			}
			key := strings.Join(ctrls, ",")
			if seen[key] {
				continue // the same hierarchy mounted again (a bind mount)
			}
			seen[key] = true
			base, dir := placeIn(m.mountpoint, m.root, ownPath(own, ctrls[0]), p)
			hs = append(hs, hierarchy{controllers: ctrls, mount: m.mountpoint, base: base, dir: dir, noPrefix: noPrefix})
		}
		if len(hs) == 0 {
			return nil, errdefs.New(errdefs.ErrNotSupported, "no cgroup v1 controller is mounted")
		}
	default:
		return nil, errdefs.New(errdefs.ErrNotSupported, "no cgroup file system is mounted")
	}
	return hs, nil
}

// ownPath is the caller's cgroup for controller c, "/" when unknown.
func ownPath(own map[string]string, c string) string {
	if p, ok := own[c]; ok && p != "" {
		return p
	}
	return "/"
}
