package runtime

import (
	"errors"
	"fmt"
	"os"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-run/berth/internal/errdefs"
)

// prepareRootfs sets the mount propagation, makes the rootfs a mount
// point and mounts everything below it (spec mounts, /dev) — all still
// seen through the host's paths, before pivot_root.
func prepareRootfs(cfg *stageConfig) error {
	spec := cfg.Spec
	// The host's tree in the new mount namespace: slave by default (host
	// mounts still show, none leak out), shared when the spec wants the
	// root shared. An unbindable "/" would refuse the rootfs bind below:
	// the requested propagation of the container's own "/" is set after
	// pivot_root (setRootPropagation).
	prop := uintptr(unix.MS_SLAVE | unix.MS_REC)
	want, err := rootPropagation(spec)
	if err != nil {
		return err
	}
	switch {
	case want&unix.MS_SHARED != 0:
		prop = unix.MS_SHARED | unix.MS_REC
	case want&unix.MS_PRIVATE != 0:
		prop = unix.MS_PRIVATE | unix.MS_REC
	}
	if err := unix.Mount("", "/", "", prop, ""); err != nil {
		return fmt.Errorf("set / propagation: %w", err)
	}
	// pivot_root refuses a new root whose parent mount is shared.
	if prop&unix.MS_SHARED != 0 || cfg.NoPivot {
		if err := makeParentPrivate(cfg.Rootfs); err != nil {
			return err
		}
	}
	if err := unix.Mount(cfg.Rootfs, cfg.Rootfs, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind rootfs: %w", err)
	}
	root, err := unix.Open(cfg.Rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open rootfs: %w", err)
	}
	defer unix.Close(root)
	b := &rootfsBuilder{cfg: cfg, rootfs: cfg.Rootfs, root: root}
	if err := b.mountAll(); err != nil {
		return err
	}
	if needsDev(spec) {
		if err := b.createDevices(); err != nil {
			return err
		}
	}
	if cfg.Process != nil && cfg.Process.Cwd != "" {
		fd, err := mkdirAllInRoot(root, cfg.Process.Cwd, 0o755)
		if err == nil {
			unix.Close(fd)
		}
	}
	return nil
}

// rootPropagation is the spec's rootfsPropagation as mount flags (0 when
// unset).
func rootPropagation(spec *specs.Spec) (uintptr, error) {
	if spec.Linux == nil || spec.Linux.RootfsPropagation == "" {
		return 0, nil
	}
	v, ok := propagationTable[spec.Linux.RootfsPropagation]
	if !ok {
		return 0, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("unknown rootfsPropagation %q", spec.Linux.RootfsPropagation))
	}
	return v, nil
}

// setRootPropagation gives the container's "/" the propagation the spec
// asks for, once it is the root.
func setRootPropagation(spec *specs.Spec) error {
	want, err := rootPropagation(spec)
	if err != nil || want == 0 {
		return err
	}
	if err := unix.Mount("", "/", "", want, ""); err != nil {
		return fmt.Errorf("set rootfs propagation %s: %w", spec.Linux.RootfsPropagation, err)
	}
	return nil
}

// makeParentPrivate makes the mount that holds dir private.
func makeParentPrivate(dir string) error {
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	best := ""
	for _, line := range strings.Split(string(mi), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		mp := unescapeMountPath(f[4])
		if (dir == mp || strings.HasPrefix(dir, strings.TrimSuffix(mp, "/")+"/")) && len(mp) > len(best) {
			best = mp
		}
	}
	if best == "" {
		best = "/"
	}
	if err := unix.Mount("", best, "", unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make %s private: %w", best, err)
	}
	return nil
}

// unescapeMountPath undoes mountinfo's octal escapes (\040 for space).
func unescapeMountPath(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v byte
			ok := true
			for _, c := range s[i+1 : i+4] {
				if c < '0' || c > '7' {
					ok = false
					break
				}
				v = v*8 + byte(c-'0')
			}
			if ok {
				b.WriteByte(v)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// enterRootfs makes the rootfs the process's root: pivot_root, stacking
// the old root under the new one and detaching it, or MS_MOVE + chroot.
func enterRootfs(cfg *stageConfig) error {
	var err error
	if !cfg.NoPivot {
		err = pivotRoot(cfg.Rootfs)
		// EINVAL: the current root is not a mount point (initramfs).
		if errors.Is(err, unix.EINVAL) {
			err = moveRoot(cfg.Rootfs)
		}
	} else {
		err = moveRoot(cfg.Rootfs)
	}
	if err != nil {
		return err
	}
	return setRootPropagation(cfg.Spec)
}

func pivotRoot(rootfs string) error {
	oldroot, err := unix.Open("/", unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(oldroot)
	newroot, err := unix.Open(rootfs, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(newroot)
	if err := unix.Fchdir(newroot); err != nil {
		return err
	}
	// pivot_root(".", ".") stacks the old root on top of the new one,
	// so no put_old directory is needed in the image.
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	if err := unix.Fchdir(oldroot); err != nil {
		return err
	}
	// Keep the unmount from propagating to the host.
	if err := unix.Mount("", ".", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("make old root slave: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("unmount old root: %w", err)
	}
	return unix.Chdir("/")
}

func moveRoot(rootfs string) error {
	if err := unix.Chdir(rootfs); err != nil {
		return err
	}
	if err := unix.Mount(rootfs, "/", "", unix.MS_MOVE, ""); err != nil {
		return fmt.Errorf("move rootfs: %w", err)
	}
	if err := unix.Chroot("."); err != nil {
		return fmt.Errorf("chroot: %w", err)
	}
	return unix.Chdir("/")
}

// finishRootfs does what needs the final root: masked and read-only
// paths, and the read-only root itself.
func finishRootfs(cfg *stageConfig) error {
	spec := cfg.Spec
	for _, p := range spec.Linux.ReadonlyPaths {
		if err := readonlyPath(p); err != nil {
			return fmt.Errorf("read-only path %s: %w", p, err)
		}
	}
	for _, p := range spec.Linux.MaskedPaths {
		if err := maskPath(p); err != nil {
			return fmt.Errorf("masked path %s: %w", p, err)
		}
	}
	if spec.Root != nil && spec.Root.Readonly {
		if err := remountKeep("/", unix.MS_RDONLY); err != nil {
			return fmt.Errorf("read-only rootfs: %w", err)
		}
	}
	return nil
}

func readonlyPath(p string) error {
	if err := unix.Mount(p, p, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return err
	}
	return remountKeep(p, unix.MS_RDONLY)
}

func maskPath(p string) error {
	err := unix.Mount("/dev/null", p, "", unix.MS_BIND, "")
	switch {
	case err == nil, errors.Is(err, unix.ENOENT):
		return nil
	case errors.Is(err, unix.ENOTDIR):
		return unix.Mount("tmpfs", p, "tmpfs", unix.MS_RDONLY, "size=0k")
	}
	return err
}

// remountKeep remounts the mount at p with extra flags added to the ones
// it has.
func remountKeep(p string, extra uintptr) error {
	var st unix.Statfs_t
	if err := unix.Statfs(p, &st); err != nil {
		return err
	}
	keep := uintptr(st.Flags) & (unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC | unix.MS_NOATIME | unix.MS_NODIRATIME | unix.MS_RELATIME | unix.MS_RDONLY)
	return remountBind(p, keep|extra)
}
