//go:build linux

package archive

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-run/berth/internal/errdefs"
)

// copyBufSize is the size of the buffer file data is copied through.
const copyBufSize = 1 << 20

// parentCacheSize is how many open parent directories an applier keeps.
// Tars list a directory's entries together, so a handful covers the
// directory being filled, its parents, and hardlink targets.
const parentCacheSize = 8

// applier applies tar entries below root. It owns every fd it holds.
type applier struct {
	root  int // the layer directory, O_RDONLY|O_DIRECTORY
	dir   string
	opts  ApplyOptions
	walk  bool // the kernel has no openat2: resolve with walkNoFollow
	buf   []byte
	cache [parentCacheSize]cachedDir
	clock uint64
	// dirs holds the mode and times of directory entries, applied by
	// finish once their contents are written; dirIdx indexes it by name.
	dirs   []dirMeta
	dirIdx map[string]int
}

type cachedDir struct {
	name string
	fd   int // -1: empty slot
	used uint64
}

type dirMeta struct {
	name         string // "" is the root
	mode         uint32
	atime, mtime unix.Timespec
	dead         bool // replaced by a later entry
}

func newApplier(dir string, opts ApplyOptions) (*applier, error) {
	fd, err := openat(unix.AT_FDCWD, dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	a := &applier{root: fd, dir: dir, opts: opts, dirIdx: map[string]int{}}
	for i := range a.cache {
		a.cache[i].fd = -1
	}
	probe, err := openat2(fd, ".", unix.O_PATH, 0, resolveBeneath)
	if err == nil {
		unix.Close(probe)
	}
	a.walk = noOpenat2(err)
	return a, nil
}

func (a *applier) close() {
	for i := range a.cache {
		if a.cache[i].fd >= 0 {
			unix.Close(a.cache[i].fd)
			a.cache[i].fd = -1
		}
	}
	unix.Close(a.root)
}

func invalid(msg string) error { return errdefs.New(errdefs.ErrInvalid, msg) }

// entry applies one tar entry whose cleaned name is name. It reports
// whether anything was written.
func (a *applier) entry(ctx context.Context, hdr *tar.Header, name string, r io.Reader) (bool, error) {
	if name == "" {
		if hdr.Typeflag != tar.TypeDir {
			return false, invalid("only a directory can stand for the layer root")
		}
		return true, a.rootDir(hdr)
	}
	if strings.HasPrefix(name, whiteoutMeta) && name != whiteoutOpaque {
		return false, nil // aufs metadata (.wh..wh.plnk/...): ignored, as docker does
	}
	parent, base := splitName(name)
	if strings.HasPrefix(base, whiteoutPrefix) {
		return a.whiteout(parent, base, hdr)
	}
	switch hdr.Typeflag {
	case tar.TypeChar, tar.TypeBlock:
		whiteout := hdr.Typeflag == tar.TypeChar && hdr.Devmajor == 0 && hdr.Devminor == 0
		if !whiteout {
			switch a.opts.Devices {
			case DevicesReject:
				return false, invalid("device nodes are not allowed in this layer")
			case DevicesSkip:
				return false, nil
			}
		}
	case tar.TypeReg, '\x00', tar.TypeCont, tar.TypeGNUSparse, tar.TypeDir, tar.TypeSymlink, tar.TypeLink, tar.TypeFifo:
	default:
		return false, invalid(fmt.Sprintf("unsupported entry type %q", hdr.Typeflag))
	}
	pfd, err := a.parent(parent, true)
	if err != nil {
		return false, err
	}
	if hdr.Typeflag == tar.TypeLink {
		return true, a.hardlink(pfd, name, base, hdr)
	}
	for try := 0; ; try++ {
		err := a.create(ctx, pfd, name, base, hdr, r)
		if err != unix.EEXIST || try > 0 {
			return true, err
		}
		// Something of that name exists: the later entry wins, but a
		// directory entry for an existing directory only updates it.
		var st unix.Stat_t
		if err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return false, fmt.Errorf("stat: %w", err)
		}
		if hdr.Typeflag == tar.TypeDir && st.Mode&unix.S_IFMT == unix.S_IFDIR {
			return true, a.dirMetadata(pfd, name, base, hdr)
		}
		if err := a.removeAll(pfd, name, base); err != nil {
			return false, fmt.Errorf("replacing earlier entry: %w", err)
		}
	}
}

// create creates the entry, or returns EEXIST (and nothing else changed)
// if the name is taken.
func (a *applier) create(ctx context.Context, pfd int, name, base string, hdr *tar.Header, r io.Reader) error {
	mode := uint32(hdr.Mode) & 0o7777
	switch hdr.Typeflag {
	case tar.TypeDir:
		if err := unix.Mkdirat(pfd, base, 0o700); err != nil {
			return errnoOr(err, "mkdir")
		}
		return a.dirMetadata(pfd, name, base, hdr)
	case tar.TypeSymlink:
		if hdr.Linkname == "" {
			return invalid("symlink has an empty target")
		}
		if strings.IndexByte(hdr.Linkname, 0) >= 0 || len(hdr.Linkname) > maxPath {
			return invalid("symlink target is not a valid path")
		}
		if err := unix.Symlinkat(hdr.Linkname, pfd, base); err != nil {
			return errnoOr(err, "symlink")
		}
		return a.pathMetadata(pfd, base, hdr, false)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		typ := uint32(unix.S_IFIFO)
		if hdr.Typeflag == tar.TypeChar {
			typ = unix.S_IFCHR
		} else if hdr.Typeflag == tar.TypeBlock {
			typ = unix.S_IFBLK
		}
		if hdr.Devmajor < 0 || hdr.Devminor < 0 || hdr.Devmajor > 0xfff || hdr.Devminor > 0xfffff {
			return invalid("device number out of range")
		}
		dev := int(unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor)))
		if err := unix.Mknodat(pfd, base, typ|mode, dev); err != nil {
			return errnoOr(err, "mknod")
		}
		return a.pathMetadata(pfd, base, hdr, true)
	}
	// Regular file.
	fd, err := openat(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return errnoOr(err, "create")
	}
	if want := min(max(hdr.Size, 32<<10), copyBufSize); int64(len(a.buf)) < want {
		a.buf = make([]byte, want) // grown as larger files come
	}
	err = a.copyData(ctx, fd, r)
	if err == nil {
		err = a.fileMetadata(fd, hdr)
	}
	if cerr := unix.Close(fd); err == nil && cerr != nil {
		err = fmt.Errorf("close: %w", cerr)
	}
	if err != nil {
		return err
	}
	return a.times(pfd, base, hdr)
}

// copyData copies the entry's data from r to fd through the shared buffer.
func (a *applier) copyData(ctx context.Context, fd int, r io.Reader) error {
	for {
		n, rerr := r.Read(a.buf)
		for p := a.buf[:n]; len(p) > 0; {
			w, err := unix.Write(fd, p)
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				return fmt.Errorf("write: %w", err)
			}
			p = p[w:]
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			if err := ctx.Err(); err != nil {
				return err
			}
			return streamErr("reading file data", rerr)
		}
		if n == len(a.buf) {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
	}
}

// fileMetadata sets owner, xattrs and mode on an open regular file, in the
// order that keeps them: chown clears setuid bits and capabilities, so it
// comes first.
func (a *applier) fileMetadata(fd int, hdr *tar.Header) error {
	if !a.opts.NoChown {
		if err := unix.Fchown(fd, hdr.Uid, hdr.Gid); err != nil {
			return fmt.Errorf("chown: %w", err)
		}
	}
	if err := a.xattrs(hdr, func(k string, v []byte) error { return unix.Fsetxattr(fd, k, v, 0) }); err != nil {
		return err
	}
	if err := unix.Fchmod(fd, uint32(hdr.Mode)&0o7777); err != nil {
		return fmt.Errorf("chmod: %w", err)
	}
	return nil
}

// pathMetadata sets owner, xattrs, mode (if chmod) and times on base in
// pfd, never following a symlink.
func (a *applier) pathMetadata(pfd int, base string, hdr *tar.Header, chmod bool) error {
	if !a.opts.NoChown {
		if err := unix.Fchownat(pfd, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("chown: %w", err)
		}
	}
	if err := a.xattrs(hdr, func(k string, v []byte) error {
		// The parent fd pins the directory; the name is not followed.
		return unix.Lsetxattr(procFdPath(pfd, base), k, v, 0)
	}); err != nil {
		return err
	}
	if chmod {
		if err := unix.Fchmodat(pfd, base, uint32(hdr.Mode)&0o7777, 0); err != nil {
			return fmt.Errorf("chmod: %w", err)
		}
	}
	return a.times(pfd, base, hdr)
}

// dirMetadata sets owner and xattrs of a directory now and records its
// mode and times for finish.
func (a *applier) dirMetadata(pfd int, name, base string, hdr *tar.Header) error {
	if !a.opts.NoChown {
		if err := unix.Fchownat(pfd, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("chown: %w", err)
		}
	}
	if hasXattrs(hdr) {
		fd, err := openat(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
		if err != nil {
			return fmt.Errorf("open: %w", err)
		}
		err = a.xattrs(hdr, func(k string, v []byte) error { return unix.Fsetxattr(fd, k, v, 0) })
		unix.Close(fd)
		if err != nil {
			return err
		}
	}
	a.deferDir(name, hdr)
	return nil
}

func (a *applier) rootDir(hdr *tar.Header) error {
	if !a.opts.NoChown {
		if err := unix.Fchown(a.root, hdr.Uid, hdr.Gid); err != nil {
			return fmt.Errorf("chown: %w", err)
		}
	}
	if err := a.xattrs(hdr, func(k string, v []byte) error { return unix.Fsetxattr(a.root, k, v, 0) }); err != nil {
		return err
	}
	a.deferDir("", hdr)
	return nil
}

func (a *applier) deferDir(name string, hdr *tar.Header) {
	atime, mtime := entryTimes(hdr)
	m := dirMeta{name: name, mode: uint32(hdr.Mode) & 0o7777, atime: atime, mtime: mtime}
	if i, ok := a.dirIdx[name]; ok {
		a.dirs[i] = m
		return
	}
	a.dirIdx[name] = len(a.dirs)
	a.dirs = append(a.dirs, m)
}

// finish sets the deferred modes and times of directories, deepest last
// entries first, so that no later write changes them.
func (a *applier) finish() error {
	for i := len(a.dirs) - 1; i >= 0; i-- {
		d := &a.dirs[i]
		if d.dead {
			continue
		}
		pfd, base := a.root, "."
		if d.name != "" {
			parent, b := splitName(d.name)
			fd, err := a.parent(parent, false)
			if err != nil {
				return entryErr(d.name, err)
			}
			pfd, base = fd, b
		}
		// Through an fd opened with O_NOFOLLOW: chmod must never follow
		// a symlink, even one that should not be there.
		fd, err := openat(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
		if err != nil {
			return entryErr(d.name, fmt.Errorf("open: %w", err))
		}
		err = unix.Fchmod(fd, d.mode)
		unix.Close(fd)
		if err != nil {
			return entryErr(d.name, fmt.Errorf("chmod: %w", err))
		}
		ts := []unix.Timespec{d.atime, d.mtime}
		if err := unix.UtimesNanoAt(pfd, base, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return entryErr(d.name, fmt.Errorf("setting times: %w", err))
		}
	}
	return nil
}

// hardlink links name to an earlier entry of the layer.
func (a *applier) hardlink(pfd int, name, base string, hdr *tar.Header) error {
	target, err := cleanName(hdr.Linkname)
	if err != nil {
		return fmt.Errorf("hardlink target %q: %w", hdr.Linkname, err)
	}
	if target == "" {
		return invalid("hardlink to the layer root")
	}
	if target == name {
		return invalid("hardlink to itself")
	}
	tparent, tbase := splitName(target)
	tfd, err := a.parent(tparent, false)
	if err != nil {
		if errnoIs(err, unix.ENOENT) {
			return invalid(fmt.Sprintf("hardlink target %q is not in the layer", hdr.Linkname))
		}
		return fmt.Errorf("hardlink target %q: %w", hdr.Linkname, err)
	}
	for try := 0; ; try++ {
		err := unix.Linkat(tfd, tbase, pfd, base, 0)
		switch {
		case err == nil:
			return nil
		case err == unix.EEXIST && try == 0:
			if err := a.removeAll(pfd, name, base); err != nil {
				return fmt.Errorf("replacing earlier entry: %w", err)
			}
			// The target may have been below what was just removed.
			if tfd, err = a.parent(tparent, false); err != nil {
				return invalid(fmt.Sprintf("hardlink target %q is not in the layer", hdr.Linkname))
			}
		case err == unix.ENOENT:
			return invalid(fmt.Sprintf("hardlink target %q is not in the layer", hdr.Linkname))
		case err == unix.EPERM:
			return errdefs.Wrap(errdefs.ErrInvalid, fmt.Sprintf("hardlink target %q cannot be linked", hdr.Linkname), err)
		default:
			return fmt.Errorf("link: %w", err)
		}
	}
}

// whiteout applies a ".wh." entry in overlay format.
func (a *applier) whiteout(parent, base string, hdr *tar.Header) (bool, error) {
	if base == whiteoutOpaque {
		fd, err := a.parent(parent, true)
		if err != nil {
			return false, err
		}
		if err := unix.Fsetxattr(fd, opaqueXattr, []byte("y"), 0); err != nil {
			return false, fmt.Errorf("setting %s: %w", opaqueXattr, err)
		}
		return true, nil
	}
	if strings.HasPrefix(base, whiteoutMeta) {
		return false, nil // other aufs metadata (.wh..wh.plnk ...): ignored, as docker does
	}
	target := base[len(whiteoutPrefix):]
	if target == "" || target == "." || target == ".." {
		return false, invalid(fmt.Sprintf("whiteout of %q is not a valid name", target))
	}
	fd, err := a.parent(parent, true)
	if err != nil {
		return false, err
	}
	for try := 0; ; try++ {
		err := unix.Mknodat(fd, target, unix.S_IFCHR, 0)
		if err == nil {
			// Owner and times as in the tar, so that Diff gives the
			// same entry back; the mode stays 0, as overlay makes it.
			if !a.opts.NoChown {
				if err := unix.Fchownat(fd, target, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
					return false, fmt.Errorf("chown: %w", err)
				}
			}
			return true, a.times(fd, target, hdr)
		}
		if err != unix.EEXIST || try > 0 {
			return false, fmt.Errorf("creating whiteout: %w", err)
		}
		// An earlier entry of this layer had the name: the later one wins.
		name := target
		if parent != "" {
			name = parent + "/" + target
		}
		if err := a.removeAll(fd, name, target); err != nil {
			return false, fmt.Errorf("replacing earlier entry: %w", err)
		}
	}
}

// parent returns an fd (owned by the cache) of the directory rel, which
// must be reachable from the root without a symlink. With create, missing
// directories are made 0755.
func (a *applier) parent(rel string, create bool) (int, error) {
	if rel == "" {
		return a.root, nil
	}
	for i := range a.cache {
		if c := &a.cache[i]; c.fd >= 0 && c.name == rel {
			a.clock++
			c.used = a.clock
			return c.fd, nil
		}
	}
	fd, err := openBeneath(a.root, rel, unix.O_RDONLY|unix.O_DIRECTORY, a.walk)
	if err == unix.ENOENT && create {
		fd, err = a.mkdirAll(rel)
	}
	if err != nil {
		switch err {
		case unix.ELOOP, unix.ENOTDIR:
			return -1, errdefs.Wrap(errdefs.ErrInvalid,
				fmt.Sprintf("parent %q is a symlink or not a directory (a layer is never written through a symlink)", rel), err)
		case unix.EXDEV:
			return -1, errdefs.Wrap(errdefs.ErrInvalid, fmt.Sprintf("parent %q crosses a mount point", rel), err)
		}
		return -1, fmt.Errorf("opening parent %q: %w", rel, err)
	}
	victim := 0
	for i := range a.cache {
		if a.cache[i].fd < 0 {
			victim = i
			break
		}
		if a.cache[i].used < a.cache[victim].used {
			victim = i
		}
	}
	if a.cache[victim].fd >= 0 {
		unix.Close(a.cache[victim].fd)
	}
	a.clock++
	a.cache[victim] = cachedDir{name: rel, fd: fd, used: a.clock}
	return fd, nil
}

// mkdirAll creates the missing directories of rel, one component at a
// time, never following a symlink.
func (a *applier) mkdirAll(rel string) (int, error) {
	cur := a.root
	for rest := rel; ; {
		c, tail, more := strings.Cut(rest, "/")
		fd, err := openat(cur, c, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
		if err == unix.ENOENT {
			if err = unix.Mkdirat(cur, c, 0o755); err == nil {
				err = unix.Fchmodat(cur, c, 0o755, 0) // undo the umask
			}
			if err == nil || err == unix.EEXIST {
				fd, err = openat(cur, c, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
			}
		}
		if cur != a.root {
			unix.Close(cur)
		}
		if err != nil || !more {
			return fd, err
		}
		cur, rest = fd, tail
	}
}

// removeAll removes base (named name in the layer) from pfd, with
// everything below it, and forgets cached fds and deferred metadata of
// what it removed.
func (a *applier) removeAll(pfd int, name, base string) error {
	prefix := name + "/"
	for i := range a.cache {
		c := &a.cache[i]
		if c.fd >= 0 && (c.name == name || strings.HasPrefix(c.name, prefix)) {
			unix.Close(c.fd)
			c.fd = -1
		}
	}
	for i := range a.dirs {
		d := &a.dirs[i]
		if d.name == name || strings.HasPrefix(d.name, prefix) {
			d.dead = true
			delete(a.dirIdx, d.name)
		}
	}
	return removeAllAt(pfd, base)
}

// removeAllAt removes base in dirfd recursively without following
// symlinks.
func removeAllAt(dirfd int, base string) error {
	err := unix.Unlinkat(dirfd, base, 0)
	if err == nil || err == unix.ENOENT {
		return nil
	}
	if err != unix.EISDIR && err != unix.EPERM {
		return err
	}
	fd, err := openat(dirfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	names, err := readDirNames(fd)
	for _, n := range names {
		if err == nil {
			err = removeAllAt(fd, n)
		}
	}
	unix.Close(fd)
	if err != nil {
		return err
	}
	return unix.Unlinkat(dirfd, base, unix.AT_REMOVEDIR)
}

// readDirNames lists the names in the directory fd, without "." and "..".
func readDirNames(fd int) ([]string, error) {
	buf := make([]byte, 32<<10)
	var names []string
	for {
		n, err := unix.ReadDirent(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return names, err
		}
		if n <= 0 {
			return names, nil
		}
		_, _, names = unix.ParseDirent(buf[:n], -1, names)
	}
}

// times sets the entry's access and modification times on base in pfd.
func (a *applier) times(pfd int, base string, hdr *tar.Header) error {
	atime, mtime := entryTimes(hdr)
	if err := unix.UtimesNanoAt(pfd, base, []unix.Timespec{atime, mtime}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("setting times: %w", err)
	}
	return nil
}

func entryTimes(hdr *tar.Header) (atime, mtime unix.Timespec) {
	mtime = timespec(hdr.ModTime)
	atime = mtime
	if !hdr.AccessTime.IsZero() {
		atime = timespec(hdr.AccessTime)
	}
	return atime, mtime
}

// timespec converts t, bounding absurd times to the epoch.
func timespec(t time.Time) unix.Timespec {
	s := t.Unix()
	if t.IsZero() || s < -(1<<40) || s > 1<<40 {
		return unix.Timespec{}
	}
	return unix.Timespec{Sec: s, Nsec: int64(t.Nanosecond())}
}

func hasXattrs(hdr *tar.Header) bool {
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, paxXattr) {
			return true
		}
	}
	return false
}

// xattrs sets the entry's SCHILY.xattr records with set, except overlay's
// own. File systems without xattr support, and unprivileged callers who may
// not set trusted.* and security.*, skip them.
func (a *applier) xattrs(hdr *tar.Header, set func(k string, v []byte) error) error {
	for k, v := range hdr.PAXRecords {
		attr, ok := strings.CutPrefix(k, paxXattr)
		if !ok || strings.HasPrefix(attr, overlayXattrPrefix) {
			continue
		}
		if attr == "" || strings.IndexByte(attr, 0) >= 0 {
			return invalid(fmt.Sprintf("xattr name %q is not valid", attr))
		}
		if err := set(attr, []byte(v)); err != nil {
			if err == unix.ENOTSUP || (a.opts.NoChown && err == unix.EPERM) {
				continue
			}
			if err == unix.ERANGE || err == unix.E2BIG || err == unix.EINVAL {
				return errdefs.Wrap(errdefs.ErrInvalid, fmt.Sprintf("xattr %q", attr), err)
			}
			return fmt.Errorf("setting xattr %q: %w", attr, err)
		}
	}
	return nil
}

// procFdPath names base in the directory open as fd, for the few calls
// that have no *at form.
func procFdPath(fd int, base string) string {
	return "/proc/self/fd/" + strconv.Itoa(fd) + "/" + base
}

// errnoOr wraps an errno of a creating call; a name the kernel refuses is
// invalid input.
func errnoOr(err error, op string) error {
	if err == unix.EEXIST {
		return err
	}
	if err == unix.ENAMETOOLONG {
		return errdefs.Wrap(errdefs.ErrInvalid, "name is too long", err)
	}
	return fmt.Errorf("%s: %w", op, err)
}
