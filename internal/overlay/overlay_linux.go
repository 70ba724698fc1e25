package overlay

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// Mount mounts an overlay at target. lowers are the layer directories, top
// first. With upper and work empty the mount is read-only; a single lower
// without upper is bind-mounted read-only (overlayfs needs two lowers
// then).
//
// Layers are passed one by one through the new mount API (fsconfig
// "lowerdir+", Linux 6.8 and later), so any number fits; older kernels get
// one mount(2) call whose option string must fit in a page — pass short
// paths (the store's l/ links) to make that likely.
func Mount(lowers []string, upper, work, target string) error {
	if len(lowers) == 0 {
		return fmt.Errorf("overlay mount %s: no lower directory", target)
	}
	if upper == "" && len(lowers) == 1 {
		if err := unix.Mount(lowers[0], target, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind mount %s: %w", target, err)
		}
		if err := unix.Mount("", target, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY, ""); err != nil {
			unix.Unmount(target, unix.MNT_DETACH)
			return fmt.Errorf("remount %s read-only: %w", target, err)
		}
		return nil
	}
	err := mountNewAPI(lowers, upper, work, target)
	if err == nil || !fallback(err) {
		return err
	}
	return mountLegacy(lowers, upper, work, target)
}

// fallback reports whether an error of the new mount API means "this
// kernel cannot do it this way" rather than a real failure.
func fallback(err error) bool {
	return errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EINVAL)
}

func mountNewAPI(lowers []string, upper, work, target string) error {
	fd, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return fmt.Errorf("fsopen overlay: %w", err)
	}
	defer unix.Close(fd)
	for _, l := range lowers {
		if err := unix.FsconfigSetString(fd, "lowerdir+", l); err != nil {
			return fmt.Errorf("overlay lowerdir+ %s: %w", l, err)
		}
	}
	if upper != "" {
		if err := unix.FsconfigSetString(fd, "upperdir", upper); err != nil {
			return fmt.Errorf("overlay upperdir: %w", err)
		}
		if err := unix.FsconfigSetString(fd, "workdir", work); err != nil {
			return fmt.Errorf("overlay workdir: %w", err)
		}
	}
	if err := unix.FsconfigCreate(fd); err != nil {
		return fmt.Errorf("overlay create %s: %w", target, err)
	}
	var attrs int
	if upper == "" {
		attrs = unix.MOUNT_ATTR_RDONLY
	}
	mfd, err := unix.Fsmount(fd, unix.FSMOUNT_CLOEXEC, attrs)
	if err != nil {
		return fmt.Errorf("fsmount overlay: %w", err)
	}
	defer unix.Close(mfd)
	if err := unix.MoveMount(mfd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("move_mount overlay to %s: %w", target, err)
	}
	return nil
}

func mountLegacy(lowers []string, upper, work, target string) error {
	opts := "lowerdir=" + strings.Join(lowers, ":")
	var flags uintptr
	if upper != "" {
		opts += ",upperdir=" + upper + ",workdir=" + work
	} else {
		flags = unix.MS_RDONLY
	}
	if len(opts) >= os.Getpagesize()-1 {
		return fmt.Errorf("overlay mount %s (%d layers): %w", target, len(lowers), ErrTooManyLayers)
	}
	if err := unix.Mount("overlay", target, "overlay", flags, opts); err != nil {
		return fmt.Errorf("mount overlay %s: %w", target, err)
	}
	return nil
}

// Unmount detaches the mount at target; a target that is not mounted is
// not an error.
func Unmount(target string) error {
	err := unix.Unmount(target, unix.MNT_DETACH)
	if err == nil || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
		return nil
	}
	return fmt.Errorf("unmount %s: %w", target, err)
}

// Mounted reports whether target is a mount point (its device differs from
// its parent's, or it is the root of a bind mount of the same device —
// checked through statx's STATX_ATTR_MOUNT_ROOT).
func Mounted(target string) bool {
	var st unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, target, unix.AT_SYMLINK_NOFOLLOW, unix.STATX_BASIC_STATS, &st); err != nil {
		return false
	}
	return st.Attributes_mask&unix.STATX_ATTR_MOUNT_ROOT != 0 && st.Attributes&unix.STATX_ATTR_MOUNT_ROOT != 0
}
