//go:build linux

package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-run/berth/internal/errdefs"
)

// treeWriter writes a directory tree as tar entries, reading it through
// fds opened with O_NOFOLLOW.
type treeWriter struct {
	ctx   context.Context
	tw    *tar.Writer
	opts  treeOptions
	buf   []byte
	xbuf  []byte
	links map[fileID]string // first archive name of each multiply-linked inode
}

type fileID struct{ dev, ino uint64 }

func writeTree(ctx context.Context, w io.Writer, root string, opts treeOptions) error {
	t := &treeWriter{
		ctx:   ctx,
		tw:    tar.NewWriter(w),
		opts:  opts,
		buf:   make([]byte, copyBufSize),
		xbuf:  make([]byte, 4096),
		links: map[fileID]string{},
	}
	rootfd, err := openat(unix.AT_FDCWD, root, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: root, Err: err}
	}
	defer unix.Close(rootfd)

	src := strings.Trim(path.Clean("/"+opts.source), "/")
	switch {
	case src == "" && opts.name == "":
		err = t.children(rootfd, "")
	case src == "":
		var st unix.Stat_t
		if err = unix.Fstat(rootfd, &st); err == nil {
			err = t.dir(rootfd, &st, strings.Trim(opts.name, "/"))
		}
	default:
		dir, base := path.Split(src)
		var pfd int
		pfd, err = openInRootFd(rootfd, dir, unix.O_PATH|unix.O_DIRECTORY, 0, false)
		if err != nil {
			err = &os.PathError{Op: "open", Path: path.Join(root, dir), Err: err}
			if errnoIs(err, unix.ENOENT, unix.ENOTDIR) {
				return errdefs.Wrap(errdefs.ErrNotFound, fmt.Sprintf("%q", "/"+src), err)
			}
			return err
		}
		name := strings.Trim(opts.name, "/")
		if name == "" {
			name = base
		}
		err = t.add(pfd, base, name)
		unix.Close(pfd)
		if err == errVanished {
			return errdefs.Wrap(errdefs.ErrNotFound, fmt.Sprintf("%q", "/"+src),
				&os.PathError{Op: "lstat", Path: path.Join(root, src), Err: unix.ENOENT})
		}
	}
	if err != nil {
		return err
	}
	return t.tw.Close()
}

// errVanished: the entry was removed while the tree was walked; it is left
// out.
var errVanished = fmt.Errorf("vanished: %w", unix.ENOENT)

// children writes the entries of the directory fd, sorted by name.
func (t *treeWriter) children(fd int, prefix string) error {
	names, err := readDirNames(fd)
	if err != nil {
		return fmt.Errorf("reading directory %q: %w", prefix, err)
	}
	slices.Sort(names)
	for _, n := range names {
		name := n
		if prefix != "" {
			name = prefix + "/" + n
		}
		if err := t.add(fd, n, name); err != nil && err != errVanished {
			return err
		}
	}
	return nil
}

// add writes base in dirfd as the archive entry name, and its contents if
// it is a directory.
func (t *treeWriter) add(dirfd int, base, name string) error {
	if err := t.ctx.Err(); err != nil {
		return err
	}
	var st unix.Stat_t
	if err := unix.Fstatat(dirfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if err == unix.ENOENT {
			return errVanished
		}
		return fmt.Errorf("lstat %q: %w", name, err)
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		fd, err := openat(dirfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
		if err != nil {
			return openErr(name, err)
		}
		defer unix.Close(fd)
		if err := unix.Fstat(fd, &st); err != nil {
			return fmt.Errorf("stat %q: %w", name, err)
		}
		return t.dir(fd, &st, name)
	case unix.S_IFREG:
		return t.file(dirfd, base, name)
	case unix.S_IFLNK:
		target, err := readlinkat(dirfd, base)
		if err != nil {
			return openErr(name, err)
		}
		h := t.header(&st, name, tar.TypeSymlink)
		h.Linkname = target
		if err := t.pathXattrs(h, dirfd, base); err != nil {
			return err
		}
		return t.write(h)
	case unix.S_IFCHR, unix.S_IFBLK, unix.S_IFIFO:
		if st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0 {
			if t.opts.diff {
				dir, b := path.Split(name)
				h := t.header(&st, dir+whiteoutPrefix+b, tar.TypeReg)
				return t.write(h)
			}
			if t.opts.skipWhiteouts {
				return nil
			}
		}
		typ := byte(tar.TypeFifo)
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFCHR:
			typ = tar.TypeChar
		case unix.S_IFBLK:
			typ = tar.TypeBlock
		}
		h := t.header(&st, name, typ)
		if typ != tar.TypeFifo {
			h.Devmajor = int64(unix.Major(st.Rdev))
			h.Devminor = int64(unix.Minor(st.Rdev))
		}
		// Overlay shares one inode among its whiteouts: never link those.
		if st.Rdev != 0 && t.hardlink(&st, h) {
			return t.write(h)
		}
		if err := t.pathXattrs(h, dirfd, base); err != nil {
			return err
		}
		return t.write(h)
	}
	return nil // sockets are not archived
}

// dir writes the directory open as fd (unless name is "") and its
// contents.
func (t *treeWriter) dir(fd int, st *unix.Stat_t, name string) error {
	if name != "" {
		h := t.header(st, name+"/", tar.TypeDir)
		opaque, err := t.fdXattrs(h, fd)
		if err != nil {
			return err
		}
		if err := t.write(h); err != nil {
			return err
		}
		if opaque && t.opts.diff {
			wh := &tar.Header{
				Typeflag: tar.TypeReg,
				Name:     name + "/" + whiteoutOpaque,
				ModTime:  h.ModTime,
				Format:   tar.FormatPAX,
			}
			if err := t.write(wh); err != nil {
				return err
			}
		}
	}
	return t.children(fd, name)
}

// file writes the regular file base in dirfd, or a hardlink entry if its
// inode was written before.
func (t *treeWriter) file(dirfd int, base, name string) error {
	fd, err := openat(dirfd, base, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY, 0)
	if err != nil {
		return openErr(name, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("stat %q: %w", name, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return fmt.Errorf("%q changed type while it was archived", name)
	}
	h := t.header(&st, name, tar.TypeReg)
	if t.hardlink(&st, h) {
		return t.write(h)
	}
	h.Size = st.Size
	if _, err := t.fdXattrs(h, fd); err != nil {
		return err
	}
	if err := t.write(h); err != nil {
		return err
	}
	for left := st.Size; left > 0; {
		if err := t.ctx.Err(); err != nil {
			return err
		}
		n, err := unix.Read(fd, t.buf[:min(int64(len(t.buf)), left)])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("read %q: %w", name, err)
		}
		p := t.buf[:n]
		if n == 0 { // the file shrank: pad to the size in the header
			p = t.buf[:min(int64(len(t.buf)), left)]
			clear(p)
		}
		if _, err := t.tw.Write(p); err != nil {
			return err
		}
		left -= int64(len(p))
	}
	return nil
}

// hardlink turns h into a hardlink entry if st's inode was archived
// before, and otherwise remembers it.
func (t *treeWriter) hardlink(st *unix.Stat_t, h *tar.Header) bool {
	if st.Nlink < 2 {
		return false
	}
	id := fileID{dev: uint64(st.Dev), ino: st.Ino}
	if first, ok := t.links[id]; ok {
		h.Typeflag = tar.TypeLink
		h.Linkname = first
		h.Size = 0
		h.Devmajor, h.Devminor = 0, 0
		return true
	}
	t.links[id] = h.Name
	return false
}

// header returns the deterministic header of an entry: numeric owner, no
// atime or ctime, mtime in whole seconds, PAX format.
func (t *treeWriter) header(st *unix.Stat_t, name string, typ byte) *tar.Header {
	return &tar.Header{
		Typeflag: typ,
		Name:     name,
		Mode:     int64(st.Mode & 0o7777),
		Uid:      int(st.Uid),
		Gid:      int(st.Gid),
		ModTime:  time.Unix(st.Mtim.Sec, 0),
		Format:   tar.FormatPAX,
	}
}

func (t *treeWriter) write(h *tar.Header) error {
	if err := t.tw.WriteHeader(h); err != nil {
		return fmt.Errorf("writing tar header for %q: %w", h.Name, err)
	}
	return nil
}

// fdXattrs adds the xattrs of fd to h and reports whether it is an opaque
// overlay directory.
func (t *treeWriter) fdXattrs(h *tar.Header, fd int) (opaque bool, err error) {
	return t.xattrs(h,
		func(b []byte) (int, error) { return unix.Flistxattr(fd, b) },
		func(k string, b []byte) (int, error) { return unix.Fgetxattr(fd, k, b) })
}

// pathXattrs adds the xattrs of base in dirfd (a symlink or device, which
// cannot be opened safely) to h.
func (t *treeWriter) pathXattrs(h *tar.Header, dirfd int, base string) error {
	p := procFdPath(dirfd, base)
	_, err := t.xattrs(h,
		func(b []byte) (int, error) { return unix.Llistxattr(p, b) },
		func(k string, b []byte) (int, error) { return unix.Lgetxattr(p, k, b) })
	return err
}

func (t *treeWriter) xattrs(h *tar.Header, list func([]byte) (int, error), get func(string, []byte) (int, error)) (bool, error) {
	names, err := getBuf(&t.xbuf, list)
	if err == unix.ENOTSUP {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("listing xattrs of %q: %w", h.Name, err)
	}
	if len(names) == 0 {
		return false, nil
	}
	keys := strings.Split(strings.TrimRight(string(names), "\x00"), "\x00")
	opaque := false
	var vbuf []byte
	for _, k := range keys {
		if k == "" {
			continue
		}
		v, err := getBuf(&vbuf, func(b []byte) (int, error) { return get(k, b) })
		if err == unix.ENODATA {
			continue
		}
		if err != nil {
			return false, fmt.Errorf("reading xattr %q of %q: %w", k, h.Name, err)
		}
		if strings.HasPrefix(k, overlayXattrPrefix) {
			if k == opaqueXattr && bytes.Equal(v, []byte("y")) {
				opaque = true
			}
			continue
		}
		if h.PAXRecords == nil {
			h.PAXRecords = map[string]string{}
		}
		h.PAXRecords[paxXattr+k] = string(v)
	}
	return opaque, nil
}

// getBuf calls an xattr getter with *buf, growing it on ERANGE.
func getBuf(buf *[]byte, call func([]byte) (int, error)) ([]byte, error) {
	if *buf == nil {
		*buf = make([]byte, 256)
	}
	for {
		n, err := call(*buf)
		if err == unix.ERANGE {
			size, err := call(nil)
			if err != nil {
				return nil, err
			}
			*buf = make([]byte, max(size, 2*len(*buf)))
			continue
		}
		if err != nil {
			return nil, err
		}
		return (*buf)[:n], nil
	}
}

func openErr(name string, err error) error {
	if err == unix.ENOENT {
		return errVanished
	}
	if err == unix.ELOOP || err == unix.ENOTDIR {
		return fmt.Errorf("%q changed type while it was archived: %w", name, err)
	}
	return fmt.Errorf("open %q: %w", name, err)
}
