//go:build linux

package archive

import (
	"errors"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// resolveBeneath confines a lookup to the directory it starts from and
// refuses every symlink, magic links and mount crossings included.
const resolveBeneath = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS |
	unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV

// resolveInRoot resolves as if the starting directory were "/".
const resolveInRoot = unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS

// maxSymlinks is Linux's limit on symlinks followed in one lookup.
const maxSymlinks = 40

// openat2 calls openat2(2), retrying the EAGAIN it returns when a rename or
// mount raced with a confined lookup.
func openat2(dirfd int, path string, flags int, mode uint32, resolve uint64) (int, error) {
	how := unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC), Resolve: resolve}
	if flags&(unix.O_CREAT|unix.O_TMPFILE) != 0 {
		how.Mode = uint64(mode)
	}
	for i := 0; ; i++ {
		fd, err := unix.Openat2(dirfd, path, &how)
		if (err == unix.EAGAIN || err == unix.EINTR) && i < 64 {
			continue
		}
		return fd, err
	}
}

// noOpenat2 reports whether err says the kernel (or a seccomp filter) does
// not offer openat2.
func noOpenat2(err error) bool {
	return err == unix.ENOSYS || err == unix.EPERM
}

// openBeneath opens rel, a clean relative path (no "." or ".." or empty
// components; "" is dirfd itself), below dirfd without following any
// symlink. A symlink or non-directory among the parents gives ELOOP or
// ENOTDIR. walk forces the fallback used when openat2 is missing.
func openBeneath(dirfd int, rel string, flags int, walk bool) (int, error) {
	if rel == "" {
		rel = "."
	}
	if !walk {
		fd, err := openat2(dirfd, rel, flags, 0, resolveBeneath)
		if !noOpenat2(err) {
			return fd, err
		}
	}
	return walkNoFollow(dirfd, rel, flags)
}

// walkNoFollow opens the clean relative path rel below dirfd one component
// at a time with O_NOFOLLOW.
func walkNoFollow(dirfd int, rel string, flags int) (int, error) {
	cur := dirfd
	for {
		c, rest, more := strings.Cut(rel, "/")
		fl := unix.O_PATH | unix.O_DIRECTORY
		if !more {
			fl = flags
		}
		fd, err := openat(cur, c, fl|unix.O_NOFOLLOW, 0)
		if cur != dirfd {
			unix.Close(cur)
		}
		if err != nil || !more {
			return fd, err
		}
		cur, rel = fd, rest
	}
}

// openat is openat(2) with O_CLOEXEC, retried on EINTR.
func openat(dirfd int, name string, flags int, mode uint32) (int, error) {
	for {
		fd, err := unix.Openat(dirfd, name, flags|unix.O_CLOEXEC, mode)
		if err != unix.EINTR {
			return fd, err
		}
	}
}

func openInRoot(root, path string, flag int, perm os.FileMode) (*os.File, error) {
	rootfd, err := openat(unix.AT_FDCWD, root, unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: root, Err: err}
	}
	defer unix.Close(rootfd)
	fd, err := openInRootFd(rootfd, path, flag, uint32(perm.Perm()), false)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: filepath.Join(root, path), Err: err}
	}
	return os.NewFile(uintptr(fd), filepath.Join(root, path)), nil
}

// openInRootFd opens path with rootfd as its root; walk forces the fallback.
func openInRootFd(rootfd int, path string, flags int, mode uint32, walk bool) (int, error) {
	if !walk {
		rel := strings.TrimLeft(path, "/")
		if rel == "" {
			rel = "."
		}
		fd, err := openat2(rootfd, rel, flags, mode, resolveInRoot)
		if !noOpenat2(err) {
			return fd, err
		}
	}
	return openInRootWalk(rootfd, path, flags, mode)
}

// openInRootWalk resolves path below rootfd in user space with the
// semantics of RESOLVE_IN_ROOT, for kernels without openat2. Every
// component is opened with O_NOFOLLOW, so a concurrent swap of a component
// for a symlink fails the lookup instead of escaping.
func openInRootWalk(rootfd int, path string, flags int, mode uint32) (int, error) {
	followLast := flags&unix.O_NOFOLLOW == 0
	var done []string // resolved components below the root, all directories
	cur := -1         // fd of done, or -1 for rootfd
	dir := func() int {
		if cur < 0 {
			return rootfd
		}
		return cur
	}
	defer func() {
		if cur >= 0 {
			unix.Close(cur)
		}
	}()
	moveTo := func(to []string) error {
		if cur >= 0 {
			unix.Close(cur)
			cur = -1
		}
		done = to
		if len(to) == 0 {
			return nil
		}
		fd, err := walkNoFollow(rootfd, strings.Join(to, "/"), unix.O_PATH|unix.O_DIRECTORY)
		if err != nil {
			return err
		}
		cur = fd
		return nil
	}
	links := 0
	todo := path
	final := ""
	for {
		todo = strings.TrimLeft(todo, "/")
		if todo == "" {
			break
		}
		c, rest, _ := strings.Cut(todo, "/")
		todo = rest
		switch c {
		case ".":
			continue
		case "..":
			if len(done) > 0 {
				if err := moveTo(done[:len(done)-1]); err != nil {
					return -1, err
				}
			}
			continue
		}
		last := onlyDots(todo)
		var st unix.Stat_t
		err := unix.Fstatat(dir(), c, &st, unix.AT_SYMLINK_NOFOLLOW)
		if err == unix.ENOENT && last {
			final = c
			break
		}
		if err != nil {
			return -1, err
		}
		if st.Mode&unix.S_IFMT == unix.S_IFLNK && (!last || followLast) {
			if links++; links > maxSymlinks {
				return -1, unix.ELOOP
			}
			target, err := readlinkat(dir(), c)
			if err != nil {
				return -1, err
			}
			if strings.HasPrefix(target, "/") {
				if err := moveTo(nil); err != nil {
					return -1, err
				}
			}
			todo = target + "/" + todo
			continue
		}
		if last {
			final = c
			break
		}
		fd, err := openat(dir(), c, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
		if err != nil {
			return -1, err
		}
		if cur >= 0 {
			unix.Close(cur)
		}
		cur = fd
		done = append(done, c)
	}
	if final == "" {
		return openat(dir(), ".", flags, mode)
	}
	return openat(dir(), final, flags|unix.O_NOFOLLOW, mode)
}

// onlyDots reports whether s has no components but "." and empty ones.
func onlyDots(s string) bool {
	for _, c := range strings.Split(s, "/") {
		if c != "" && c != "." {
			return false
		}
	}
	return true
}

func readlinkat(dirfd int, name string) (string, error) {
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(dirfd, name, buf)
		if err != nil {
			return "", err
		}
		if n < size {
			return string(buf[:n]), nil
		}
		if size > maxPath+1 {
			return "", unix.ENAMETOOLONG
		}
	}
}

func mkdirAllInRoot(root, path string, perm os.FileMode) (*os.File, error) {
	rootfd, err := openat(unix.AT_FDCWD, root, unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		return nil, &os.PathError{Op: "mkdir", Path: root, Err: err}
	}
	defer unix.Close(rootfd)
	fd, err := mkdirAllInRootFd(rootfd, path, uint32(perm.Perm()), false)
	if err != nil {
		return nil, &os.PathError{Op: "mkdir", Path: filepath.Join(root, path), Err: err}
	}
	return os.NewFile(uintptr(fd), filepath.Join(root, path)), nil
}

// mkdirAllInRootFd creates path below rootfd: each prefix is resolved in
// the root and, if missing, created in its (resolved) parent.
func mkdirAllInRootFd(rootfd int, path string, mode uint32, walk bool) (int, error) {
	comps := strings.FieldsFunc(path, func(r rune) bool { return r == '/' })
	for i := 1; i <= len(comps); i++ {
		prefix := strings.Join(comps[:i], "/")
		fd, err := openInRootFd(rootfd, prefix, unix.O_PATH|unix.O_DIRECTORY, 0, walk)
		if err == nil {
			unix.Close(fd)
			continue
		}
		if err != unix.ENOENT {
			return -1, err
		}
		pfd, err := openInRootFd(rootfd, strings.Join(comps[:i-1], "/"), unix.O_PATH|unix.O_DIRECTORY, 0, walk)
		if err != nil {
			return -1, err
		}
		err = unix.Mkdirat(pfd, comps[i-1], mode)
		unix.Close(pfd)
		if err != nil && err != unix.EEXIST {
			return -1, err
		}
	}
	return openInRootFd(rootfd, path, unix.O_RDONLY|unix.O_DIRECTORY, 0, walk)
}

func syncFS(path string) error {
	fd, err := openat(unix.AT_FDCWD, path, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	if err := unix.Syncfs(fd); err != nil {
		return &os.PathError{Op: "syncfs", Path: path, Err: err}
	}
	return nil
}

// errnoIs reports whether err is one of the errnos.
func errnoIs(err error, errnos ...unix.Errno) bool {
	for _, e := range errnos {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
