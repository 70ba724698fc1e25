package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"
)

// Paths inside the container's root filesystem are resolved with
// openat2(RESOLVE_IN_ROOT): a symlink (absolute or with "..") in the rootfs
// resolves as if the rootfs were "/", so a mount destination can never be
// redirected outside of it. Mounts then target the resolved handle through
// /proc/self/fd/N, so nothing can swap the path between the check and the
// mount.

const resolveFlags = unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS

// openInRoot opens path inside the directory root (an fd) with O_PATH
// and any extra flags (O_DIRECTORY, O_NOFOLLOW).
func openInRoot(root int, path string, flags int) (int, error) {
	how := unix.OpenHow{
		Flags:   uint64(unix.O_PATH | unix.O_CLOEXEC | flags),
		Resolve: resolveFlags,
	}
	for {
		fd, err := unix.Openat2(root, path, &how)
		if err == unix.EINTR || err == unix.EAGAIN {
			continue
		}
		return fd, err
	}
}

// mkdirAllInRoot makes every missing directory of path inside root and
// returns an O_PATH fd of the last one.
func mkdirAllInRoot(root int, path string, mode uint32) (int, error) {
	path = filepath.Clean("/" + path)
	fd, err := openInRoot(root, path, unix.O_DIRECTORY)
	if err == nil || err != unix.ENOENT || path == "/" {
		return fd, err
	}
	// Common case: only the last component is missing.
	dir, base := filepath.Split(path)
	parent, err := mkdirAllInRoot(root, dir, mode)
	if err != nil {
		return -1, err
	}
	defer unix.Close(parent)
	err = unix.Mkdirat(parent, base, mode)
	if err == nil || err == unix.EEXIST {
		fd, err = unix.Openat(parent, base, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err == nil {
			return fd, nil
		}
	}
	// base is something else, typically a dangling symlink: resolve it
	// the way RESOLVE_IN_ROOT would and make its target.
	return mkdirAllResolved(root, path, mode)
}

// mkdirAllResolved makes path after resolving its symlinks inside root.
func mkdirAllResolved(root int, path string, mode uint32) (int, error) {
	base := fdPath(root)
	joined, err := securejoin.SecureJoin(base, path)
	if err != nil {
		return -1, err
	}
	if !strings.HasPrefix(joined, base+"/") {
		return -1, fmt.Errorf("mkdir %s: %w", path, unix.ENOTDIR)
	}
	resolved := strings.TrimPrefix(joined, base)
	parts := strings.Split(strings.TrimPrefix(resolved, "/"), "/")
	cur, err := unix.Dup(root)
	if err != nil {
		return -1, err
	}
	prefix := ""
	for _, p := range parts {
		prefix += "/" + p
		fd, err := openInRoot(root, prefix, unix.O_DIRECTORY)
		if err == unix.ENOENT {
			// cur is a directory inside root: create p in it.
			if err := unix.Mkdirat(cur, p, mode); err != nil && err != unix.EEXIST {
				unix.Close(cur)
				return -1, fmt.Errorf("mkdir %s: %w", prefix, err)
			}
			fd, err = openInRoot(root, prefix, unix.O_DIRECTORY)
		}
		unix.Close(cur)
		if err != nil {
			return -1, fmt.Errorf("open %s: %w", prefix, err)
		}
		cur = fd
	}
	return cur, nil
}

// createInRoot makes the regular file path inside root unless something
// is there already, and returns an O_PATH fd of it (following a symlink
// inside root).
func createInRoot(root int, path string, mode uint32) (int, error) {
	if fd, err := openInRoot(root, path, 0); err == nil {
		return fd, nil
	} else if err != unix.ENOENT {
		return -1, err
	}
	dir, err := mkdirAllInRoot(root, filepath.Dir(filepath.Clean("/"+path)), 0o755)
	if err != nil {
		return -1, err
	}
	defer unix.Close(dir)
	base := filepath.Base(path)
	f, err := unix.Openat(dir, base, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, mode)
	if err == nil {
		unix.Close(f)
	} else if err != unix.EEXIST {
		return -1, fmt.Errorf("create %s: %w", path, err)
	}
	return openInRoot(root, path, 0)
}

// fdPath is the magic link of an fd of this process.
func fdPath(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }

// isDirFd reports whether an O_PATH fd is a directory.
func isDirFd(fd int) bool {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return false
	}
	return st.Mode&unix.S_IFMT == unix.S_IFDIR
}

// hostIsDir reports whether a host path is a directory (following
// symlinks); false when it does not exist.
func hostIsDir(p string) (bool, error) {
	fi, err := os.Stat(p)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return false, err
		}
		return false, err
	}
	return fi.IsDir(), nil
}
