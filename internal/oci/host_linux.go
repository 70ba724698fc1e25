package oci

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"github.com/moby/sys/mountinfo"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// probeHost reads what Generate needs from the running system. It only
// reads files under /proc and /sys (cheap, no privileges needed); the
// slower probes (devices, mountinfo, the rootfs) are functions called only
// when a configuration needs them.
func probeHost() *host {
	h := &host{
		capLast:         len(capNames) - 1,
		effectiveCaps:   ^uint64(0),
		numCPU:          runtime.NumCPU(),
		hostname:        os.Hostname,
		rlimit:          getrlimit,
		sysctlExists:    sysctlExists,
		devicesFromPath: devicesFromPath,
		hostDevices:     func() ([]specs.LinuxDevice, error) { return walkDevices("/dev") },
		mountOf:         mountOf,
		readFile:        readSmallFile,
		openUserFile:    readInRoot,
		seccomp:         seccompProfile,
	}
	if b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap"); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && n >= 0 {
			h.capLast = n
		}
	}
	if mask, ok := capEff(); ok {
		h.effectiveCaps = mask
	}
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &st); err == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		h.cgroup2 = true
	}
	if h.cgroup2 {
		h.swapLimit = true // memory.swap.max exists wherever the memory controller does
	} else if _, err := os.Stat("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes"); err == nil {
		h.swapLimit = true
	}
	if _, err := os.Stat("/proc/self/ns/time"); err == nil {
		h.timeNS = true
	}
	h.cpusOnline = readTrimmed("/sys/devices/system/cpu/online")
	h.memsOnline = readTrimmed("/sys/devices/system/node/online")
	if cpus, err := parseCPUSet(readTrimmed("/sys/devices/system/cpu/possible")); err == nil {
		for _, n := range slices.Sorted(maps.Keys(cpus)) {
			p := fmt.Sprintf("/sys/devices/system/cpu/cpu%d/thermal_throttle", n)
			if _, err := os.Stat(p); err == nil {
				h.extraMasked = append(h.extraMasked, p)
			}
		}
	}
	return h
}

func readTrimmed(p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// capEff returns the calling process's effective capabilities.
func capEff() (uint64, bool) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, false
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "CapEff:"); ok {
			mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return mask, err == nil
		}
	}
	return 0, false
}

func getrlimit(resource int) (uint64, uint64, error) {
	var r unix.Rlimit
	if err := unix.Getrlimit(resource, &r); err != nil {
		return 0, 0, err
	}
	return r.Cur, r.Max, nil
}

func sysctlExists(name string) bool {
	_, err := os.Stat(filepath.Join("/proc/sys", strings.ReplaceAll(name, ".", "/")))
	return err == nil
}

func readSmallFile(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, maxUserFile))
}

// readInRoot reads rootfs/name with every symlink resolved inside rootfs
// (an absolute link target is taken relative to rootfs, ".." stops at it),
// as a process chrooted there would see it. A missing file reads as nil.
// Only regular files are read, and at most maxUserFile bytes of them.
func readInRoot(rootfs, name string) ([]byte, error) {
	h, err := pathrs.OpenInRoot(rootfs, name)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ENOTDIR) {
			return nil, nil
		}
		return nil, err
	}
	defer h.Close()
	fi, err := h.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", name)
	}
	f, err := pathrs.Reopen(h, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOCTTY|unix.O_NONBLOCK)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, maxUserFile))
}

// deviceFromPath describes the device node at p (not following a final
// symlink); errNotDevice when it is something else.
func deviceFromPath(p string) (specs.LinuxDevice, error) {
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return specs.LinuxDevice{}, &os.PathError{Op: "lstat", Path: p, Err: err}
	}
	var typ string
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFCHR:
		typ = "c"
	case unix.S_IFBLK:
		typ = "b"
	default:
		return specs.LinuxDevice{}, errNotDevice
	}
	mode := os.FileMode(st.Mode & 0o7777)
	uid, gid := st.Uid, st.Gid
	return specs.LinuxDevice{
		Path:     p,
		Type:     typ,
		Major:    int64(unix.Major(st.Rdev)),
		Minor:    int64(unix.Minor(st.Rdev)),
		FileMode: &mode,
		UID:      &uid,
		GID:      &gid,
	}, nil
}

var errNotDevice = errors.New("not a device node")

// devicesFromPath is docker's DevicesFromPath: the device at p (a symlink
// resolved), or every device node under the directory p.
func devicesFromPath(p string) ([]specs.LinuxDevice, error) {
	resolved := p
	if fi, err := os.Lstat(p); err == nil && fi.Mode()&os.ModeSymlink != 0 {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			resolved = r
		}
	}
	d, err := deviceFromPath(resolved)
	if err == nil {
		d.Path = filepath.Clean(p)
		return []specs.LinuxDevice{d}, nil
	}
	if !errors.Is(err, errNotDevice) {
		return nil, err
	}
	fi, serr := os.Stat(resolved)
	if serr != nil || !fi.IsDir() {
		return nil, err
	}
	var out []specs.LinuxDevice
	_ = filepath.WalkDir(resolved, func(dp string, _ fs.DirEntry, _ error) error {
		if d, err := deviceFromPath(dp); err == nil {
			d.Path = filepath.Join(filepath.Clean(p), strings.TrimPrefix(dp, resolved))
			out = append(out, d)
		}
		return nil
	})
	return out, nil
}

// walkDevices lists the device nodes under dir the way containerd's
// HostDevices does for docker's privileged containers: not in pts, shm,
// fd, mqueue (nor .lxc, .lxd-mounts, .udev), not the console, no fifos.
func walkDevices(dir string) ([]specs.LinuxDevice, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []specs.LinuxDevice
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		switch {
		case e.IsDir():
			switch e.Name() {
			case "pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev":
				continue
			}
			sub, err := walkDevices(p)
			if err != nil {
				return nil, err
			}
			out = append(out, sub...)
		case e.Name() == "console":
		default:
			d, err := deviceFromPath(p)
			if err != nil {
				if errors.Is(err, errNotDevice) || errors.Is(err, fs.ErrNotExist) {
					continue
				}
				return nil, err
			}
			out = append(out, d)
		}
	}
	return out, nil
}

// mountOf returns the mount point that holds p and its optional fields.
func mountOf(p string) (string, string, error) {
	resolved, err := filepath.EvalSymlinks(p)
	if err != nil {
		return "", "", err
	}
	infos, err := mountinfo.GetMounts(mountinfo.ParentsFilter(resolved))
	if err != nil {
		return "", "", err
	}
	if len(infos) == 0 {
		return "", "", fmt.Errorf("cannot find the mount point of %s", p)
	}
	// The longest mount point; the later of equal ones (mounted on top).
	best := infos[0]
	for _, i := range infos {
		if len(i.Mountpoint) >= len(best.Mountpoint) {
			best = i
		}
	}
	return best.Mountpoint, best.Optional, nil
}
