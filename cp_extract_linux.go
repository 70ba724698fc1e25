package berth

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-run/berth/internal/archive"
	"github.com/berth-run/berth/internal/errdefs"
)

// extractor unpacks a tar stream (docker cp's, not a layer: no
// whiteouts) into the directory dst of the tree root. Every path is
// resolved inside root as a process chrooted there would resolve it, and
// every change is made through a file descriptor or an *at call that does
// not follow the last component, so no entry and no symlink the tree
// holds (or gains while we work) can make it write outside root.
//
// On the host side of a copy out of a container (hostSide), no symlink is
// followed at all below root, and no device node is made.
type extractor struct {
	ctx      context.Context
	root     string // "/proc/self/fd/N" or a directory
	dst      string // path of the target directory inside root
	chown    *owner // owner of every file; nil: the tar's
	noChown  bool   // leave files owned by the caller (copies to the host)
	hostSide bool

	rootfd int        // hostSide: root, open
	dirs   []dirTimes // directories whose times are set at the end
}

type dirTimes struct {
	name  string
	mtime time.Time
	atime time.Time
}

func (x *extractor) extract(r io.Reader) error {
	if x.hostSide {
		fd, err := unix.Open(x.root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return &os.PathError{Op: "open", Path: x.root, Err: err}
		}
		x.rootfd = fd
		defer unix.Close(fd)
	}
	tr := tar.NewReader(r)
	for {
		if err := x.ctx.Err(); err != nil {
			return err
		}
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return errdefs.Wrap(errdefs.ErrInvalid, "read tar", err)
		}
		if err := x.entry(h, tr); err != nil {
			return err
		}
	}
	// Directory times last: adding entries changed them.
	for i := len(x.dirs) - 1; i >= 0; i-- {
		d := x.dirs[i]
		if f, err := x.open(d.name); err == nil {
			_ = setTimes(f, d.atime, d.mtime)
			f.Close()
		}
	}
	return nil
}

// target is the path inside root of an entry name, which must stay below
// dst.
func (x *extractor) target(name string) (string, error) {
	clean := path.Clean("/" + name)
	if rel := path.Clean(name); rel == ".." || strings.HasPrefix(rel, "../") || strings.HasPrefix(name, "/") && clean != path.Clean(name) {
		return "", errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("tar entry %q points outside the destination", name))
	}
	return path.Join(x.dst, clean), nil
}

func (x *extractor) entry(h *tar.Header, r io.Reader) error {
	switch h.Typeflag {
	case tar.TypeXGlobalHeader, tar.TypeXHeader, tar.TypeGNULongName, tar.TypeGNULongLink:
		return nil
	case tar.TypeChar, tar.TypeBlock:
		if x.hostSide {
			return nil // never device nodes on the host
		}
	}
	p, err := x.target(h.Name)
	if err != nil {
		return err
	}
	if p == x.dst {
		return nil // the directory itself ("./"): it exists
	}
	dir, base := path.Split(p)
	pd, err := x.mkdirAll(dir)
	if err != nil {
		return fmt.Errorf("%s: %w", h.Name, err)
	}
	defer pd.Close()
	pfd := int(pd.Fd())
	isDir := h.Typeflag == tar.TypeDir
	var st unix.Stat_t
	switch err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); {
	case err == nil:
		exists := st.Mode&unix.S_IFMT == unix.S_IFDIR
		if exists && !isDir {
			return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("cannot overwrite directory %q with non-directory %q", p, h.Name))
		}
		if !exists && isDir {
			return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("cannot overwrite non-directory %q with directory %q", p, h.Name))
		}
		if !isDir {
			if err := unix.Unlinkat(pfd, base, 0); err != nil {
				return fmt.Errorf("%s: %w", h.Name, err)
			}
		}
	case errors.Is(err, unix.ENOENT):
	default:
		return fmt.Errorf("%s: %w", h.Name, err)
	}
	mode := uint32(h.Mode & 0o7777)
	if x.noChown {
		// The files change owner (to the caller, root here): set-id bits
		// would make the container's programs run as that owner.
		mode &^= unix.S_ISUID | unix.S_ISGID
	}
	var f *os.File // the new file, opened without following it
	switch h.Typeflag {
	case tar.TypeDir:
		if err := unix.Mkdirat(pfd, base, 0o700); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("%s: %w", h.Name, err)
		}
		f, err = openAt(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW)
	case tar.TypeReg, tar.TypeRegA:
		f, err = openAt(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW, 0o600)
		if err == nil {
			if _, err = io.Copy(f, r); err != nil {
				f.Close()
				return fmt.Errorf("%s: %w", h.Name, err)
			}
		}
	case tar.TypeSymlink:
		if err := unix.Symlinkat(h.Linkname, pfd, base); err != nil {
			return fmt.Errorf("%s: %w", h.Name, err)
		}
		return x.finishLink(pfd, base, h)
	case tar.TypeLink:
		return x.hardlink(pfd, base, h)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		typ := map[byte]uint32{tar.TypeChar: unix.S_IFCHR, tar.TypeBlock: unix.S_IFBLK, tar.TypeFifo: unix.S_IFIFO}[h.Typeflag]
		if err := unix.Mknodat(pfd, base, typ|0o600, int(unix.Mkdev(uint32(h.Devmajor), uint32(h.Devminor)))); err != nil {
			return fmt.Errorf("%s: %w", h.Name, err)
		}
		f, err = openAt(pfd, base, unix.O_PATH|unix.O_NOFOLLOW)
	default:
		return nil // sockets and the like: nothing to make
	}
	if err != nil {
		return fmt.Errorf("%s: %w", h.Name, err)
	}
	defer f.Close()
	if err := x.setOwner(f, h); err != nil {
		return err
	}
	// The mode after the owner: chown clears set-id bits.
	if err := unix.Chmod(fdPath(f), mode); err != nil {
		return fmt.Errorf("%s: chmod: %w", h.Name, err)
	}
	if h.Typeflag == tar.TypeReg || h.Typeflag == tar.TypeRegA || isDir {
		for k, v := range h.PAXRecords {
			if name, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok && !strings.HasPrefix(name, "trusted.") {
				_ = unix.Fsetxattr(int(f.Fd()), name, []byte(v), 0)
			}
		}
	}
	if isDir {
		x.dirs = append(x.dirs, dirTimes{name: p, mtime: h.ModTime, atime: h.AccessTime})
		return nil
	}
	return setTimes(f, h.AccessTime, h.ModTime)
}

// mkdirAll opens the directory p inside root, creating what is missing.
func (x *extractor) mkdirAll(p string) (*os.File, error) {
	if !x.hostSide {
		return archive.MkdirAllInRoot(x.root, p, 0o755)
	}
	fd, err := mkdirNoFollow(x.rootfd, p)
	if err != nil {
		return nil, &os.PathError{Op: "mkdir", Path: path.Join(x.root, p), Err: err}
	}
	return os.NewFile(uintptr(fd), p), nil
}

// open opens p inside root with O_PATH, not following its last component.
func (x *extractor) open(p string) (*os.File, error) {
	if !x.hostSide {
		return archive.OpenInRoot(x.root, p, unix.O_PATH|unix.O_NOFOLLOW, 0)
	}
	dir, base := path.Split(p)
	fd, err := openNoFollow(x.rootfd, dir)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path.Join(x.root, p), Err: err}
	}
	defer unix.Close(fd)
	if base == "" {
		base = "."
	}
	return openAt(fd, base, unix.O_PATH|unix.O_NOFOLLOW)
}

// hardlink links base in pfd to the earlier entry h.Linkname.
func (x *extractor) hardlink(pfd int, base string, h *tar.Header) error {
	tp, err := x.target(h.Linkname)
	if err != nil {
		return err
	}
	t, err := x.open(tp)
	if err != nil {
		return fmt.Errorf("%s: link to %s: %w", h.Name, h.Linkname, err)
	}
	defer t.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(t.Fd()), &st); err != nil || st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("%s: cannot link to directory %s", h.Name, h.Linkname))
	}
	if err := unix.Linkat(unix.AT_FDCWD, fdPath(t), pfd, base, unix.AT_SYMLINK_FOLLOW); err != nil {
		return fmt.Errorf("%s: link to %s: %w", h.Name, h.Linkname, err)
	}
	return nil
}

// finishLink sets a new symlink's owner and times, without following it.
func (x *extractor) finishLink(pfd int, base string, h *tar.Header) error {
	if uid, gid, ok := x.owner(h); ok {
		if err := unix.Fchownat(pfd, base, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("%s: chown: %w", h.Name, err)
		}
	}
	ts := []unix.Timespec{timespec(h.AccessTime, h.ModTime), unix.NsecToTimespec(h.ModTime.UnixNano())}
	_ = unix.UtimesNanoAt(pfd, base, ts, unix.AT_SYMLINK_NOFOLLOW)
	return nil
}

// owner is the uid and gid to give a new file, and whether to set them.
func (x *extractor) owner(h *tar.Header) (int, int, bool) {
	switch {
	case x.chown != nil:
		return x.chown.uid, x.chown.gid, true
	case x.noChown:
		return 0, 0, false
	}
	return h.Uid, h.Gid, true
}

func (x *extractor) setOwner(f *os.File, h *tar.Header) error {
	uid, gid, ok := x.owner(h)
	if !ok {
		return nil
	}
	if err := unix.Fchownat(int(f.Fd()), "", uid, gid, unix.AT_EMPTY_PATH); err != nil {
		return fmt.Errorf("%s: chown: %w", h.Name, err)
	}
	return nil
}

// openAt opens name in dirfd (which must not be followed if a symlink:
// callers pass O_NOFOLLOW).
func openAt(dirfd int, name string, flags int, perm ...uint32) (*os.File, error) {
	var mode uint32
	if len(perm) > 0 {
		mode = perm[0]
	}
	for {
		fd, err := unix.Openat(dirfd, name, flags|unix.O_CLOEXEC, mode)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		return os.NewFile(uintptr(fd), name), nil
	}
}

// fdPath names the file open as f through /proc, for the calls that have
// no fd form working on O_PATH descriptors (chmod, utimes).
func fdPath(f *os.File) string { return "/proc/self/fd/" + strconv.Itoa(int(f.Fd())) }

// setTimes sets the access and modification times of the open file f.
func setTimes(f *os.File, atime, mtime time.Time) error {
	ts := []unix.Timespec{timespec(atime, mtime), unix.NsecToTimespec(mtime.UnixNano())}
	return unix.UtimesNanoAt(unix.AT_FDCWD, fdPath(f), ts, 0)
}

// timespec is the access time to set: the tar's, or its mtime.
func timespec(atime, mtime time.Time) unix.Timespec {
	if atime.IsZero() {
		atime = mtime
	}
	return unix.NsecToTimespec(atime.UnixNano())
}
