package berth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/berth-run/berth/internal/archive"
	"github.com/berth-run/berth/internal/errdefs"
)

// maxSymlinks bounds the symlinks followed resolving one path, as the
// kernel's 40.
const maxSymlinks = 40

// cleanPath cleans a container path, keeping a trailing "/" or "/." (which
// docker cp gives meaning to).
func cleanPath(p string) string {
	c := path.Clean("/" + p)
	switch {
	case (p == "." || strings.HasSuffix(p, "/.")) && c != "/":
		return c + "/."
	case p == "." || strings.HasSuffix(p, "/."):
		return "/."
	case strings.HasSuffix(p, "/") && c != "/":
		return c + "/"
	}
	return c
}

// assertsDir reports whether p ends in "/" or "/." (asks for a
// directory).
func assertsDir(p string) bool { return strings.HasSuffix(p, "/") || path.Base(p) == "." }

// baseName is the name docker gives the archive of p: its base name,
// "." for "/." and for the root.
func baseName(p string) string {
	if strings.HasSuffix(p, "/.") || path.Clean(p) == "/" {
		return "."
	}
	return path.Base(path.Clean(p))
}

// resolveInRoot resolves p in root the way the kernel would in a process
// chrooted there, following symlinks (the last one too when followLast),
// and returns the resulting path. Every lookup goes through OpenInRoot, so
// nothing outside root is ever read. A missing last component is fine
// (the path names a file to create); a missing directory on the way is
// ENOENT.
func resolveInRoot(root, p string, followLast bool) (string, error) {
	rest := strings.Split(strings.Trim(path.Clean("/"+p), "/"), "/")
	cur := "/"
	links := 0
	for len(rest) > 0 {
		comp := rest[0]
		rest = rest[1:]
		switch comp {
		case "", ".":
			continue
		case "..":
			cur = path.Dir(cur)
			continue
		}
		next := path.Join(cur, comp)
		if len(rest) == 0 && !followLast {
			return next, nil
		}
		f, err := archive.OpenInRoot(root, next, unix.O_PATH|unix.O_NOFOLLOW, 0)
		if err != nil {
			if errors.Is(err, unix.ENOENT) && len(rest) == 0 {
				return next, nil
			}
			return "", err
		}
		var st unix.Stat_t
		err = unix.Fstat(int(f.Fd()), &st)
		var target string
		if err == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
			target, err = readlinkFd(int(f.Fd()))
		}
		f.Close()
		if err != nil {
			return "", err
		}
		if st.Mode&unix.S_IFMT != unix.S_IFLNK {
			cur = next
			continue
		}
		if links++; links > maxSymlinks {
			return "", &os.PathError{Op: "resolve", Path: p, Err: unix.ELOOP}
		}
		if strings.HasPrefix(target, "/") {
			cur = "/"
		}
		rest = append(strings.Split(target, "/"), rest...)
	}
	return cur, nil
}

// readlinkFd reads the target of the symlink opened (O_PATH) as fd.
func readlinkFd(fd int) (string, error) {
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(fd, "", buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

// statInRoot describes p in root as docker's ContainerStatPath: the
// directory part is resolved, the last component is not followed unless p
// asks for a directory; the entries of an archive of p are named after
// name. src is what to archive (parents resolved).
func statInRoot(root, p string) (st PathStat, src string, err error) {
	p = cleanPath(p)
	if assertsDir(p) {
		src, err = resolveInRoot(root, strings.TrimSuffix(p, "."), true)
	} else {
		dir, base := path.Split(p)
		var rdir string
		rdir, err = resolveInRoot(root, dir, true)
		src = path.Join(rdir, base)
	}
	if err != nil {
		return st, "", err
	}
	f, err := archive.OpenInRoot(root, src, unix.O_PATH|unix.O_NOFOLLOW, 0)
	if err != nil {
		return st, "", err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return st, "", err
	}
	if assertsDir(p) && !fi.IsDir() {
		return st, "", &os.PathError{Op: "stat", Path: p, Err: unix.ENOTDIR}
	}
	st = PathStat{Name: baseName(p), Size: fi.Size(), Mode: fi.Mode(), Mtime: fi.ModTime()}
	if fi.Mode()&os.ModeSymlink != 0 {
		if st.LinkTarget, err = resolveInRoot(root, src, true); err != nil {
			return st, "", err
		}
	}
	return st, src, nil
}

// pathError turns a lookup failure into docker's errors.
func (c *Container) pathError(p string, err error) error {
	switch {
	case errors.Is(err, unix.ENOENT):
		return errdefs.Wrap(errdefs.ErrNotFound, fmt.Sprintf("could not find the file %s in container %s", p, c.rec.Name), nil)
	case errors.Is(err, unix.ENOTDIR):
		return errdefs.Wrap(errdefs.ErrInvalid, fmt.Sprintf("%s in container %s: not a directory", p, c.rec.Name), nil)
	case errors.Is(err, unix.ELOOP):
		return errdefs.Wrap(errdefs.ErrInvalid, fmt.Sprintf("%s in container %s: too many levels of symbolic links", p, c.rec.Name), nil)
	}
	return fmt.Errorf("container %s: %s: %w", c.rec.Name, p, err)
}

func (c *Container) statPath(ctx context.Context, p string) (PathStat, error) {
	root, err := c.rt.openRoot(ctx, c.rec.ID, rootRead)
	if err != nil {
		return PathStat{}, err
	}
	defer root.release()
	st, _, err := statInRoot(root.dir, p)
	if err != nil {
		return PathStat{}, c.pathError(p, err)
	}
	return st, nil
}

func (c *Container) copyFrom(ctx context.Context, p string) (io.ReadCloser, PathStat, error) {
	r := c.rt
	root, err := r.openRoot(ctx, c.rec.ID, rootRead)
	if err != nil {
		return nil, PathStat{}, err
	}
	st, src, err := statInRoot(root.dir, p)
	if err != nil {
		root.release()
		return nil, PathStat{}, c.pathError(p, err)
	}
	name := st.Name
	if name == "." && src == "/" {
		src = "" // the whole tree, named "./..."
	}
	pr, pw := io.Pipe()
	go func() {
		err := archive.Tar(ctx, pw, root.dir, archive.TarOptions{Source: src, Name: name})
		root.release()
		pw.CloseWithError(err)
	}()
	r.event(ctx, "container", "archive-path", c.rec.ID, map[string]string{"name": c.rec.Name, "image": c.rec.ImageName})
	return pr, st, nil
}

// owner is a uid and gid to give every extracted file.
type owner struct{ uid, gid int }

func (c *Container) copyTo(ctx context.Context, p string, rd io.Reader, chown *owner) error {
	r := c.rt
	root, err := r.openRoot(ctx, c.rec.ID, rootWrite)
	if err != nil {
		return err
	}
	defer root.release()
	dst, err := resolveInRoot(root.dir, p, true)
	if err == nil {
		var f *os.File
		if f, err = archive.OpenInRoot(root.dir, dst, unix.O_PATH|unix.O_DIRECTORY, 0); err == nil {
			f.Close()
		}
	}
	if err != nil {
		if errors.Is(err, unix.ENOTDIR) {
			return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("extraction point %s in container %s is not a directory", p, c.rec.Name))
		}
		return c.pathError(p, err)
	}
	x := &extractor{ctx: ctx, root: root.dir, dst: dst, chown: chown}
	if err := x.extract(rd); err != nil {
		return fmt.Errorf("copy to container %s: %w", c.rec.Name, err)
	}
	r.event(ctx, "container", "extract-to-dir", c.rec.ID, map[string]string{"name": c.rec.Name, "image": c.rec.ImageName})
	return nil
}
