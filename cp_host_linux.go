package berth

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/berth-run/berth/internal/archive"
	"github.com/berth-run/berth/internal/errdefs"
)

// This file is docker cp's client side (moby's pkg/archive CopyInfo,
// PrepareArchiveCopy, CopyTo): which directory a copy unpacks into and
// what its top entry is called there.

// copyDest describes the destination of a copy.
type copyDest struct {
	path          string
	exists, isDir bool
}

// prepareCopy decides where the archive of a source (whose top entry is
// srcBase) unpacks for dst, renaming its top entry when the destination
// names a new file or directory, with docker's rules.
func prepareCopy(content io.Reader, srcBase string, srcIsDir bool, dst copyDest) (string, io.Reader, error) {
	dstDir, dstBase := path.Split(dst.path)
	if strings.HasSuffix(dst.path, "/.") {
		dstDir, dstBase = strings.TrimSuffix(dst.path, "/."), "."
	}
	switch {
	case dst.exists && dst.isDir:
		return strings.TrimSuffix(dst.path, "/."), content, nil
	case dst.exists && srcIsDir:
		return "", nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("cannot copy a directory to %s: it exists and is not a directory", dst.path))
	case dst.exists:
		return dstDir, rebaseTar(content, srcBase, dstBase), nil
	case srcIsDir:
		return dstDir, rebaseTar(content, srcBase, path.Base(strings.TrimSuffix(dst.path, "/"))), nil
	case assertsDir(dst.path):
		return "", nil, errdefs.New(errdefs.ErrNotFound, fmt.Sprintf("cannot copy a file to %s: no such directory", dst.path))
	}
	return dstDir, rebaseTar(content, srcBase, dstBase), nil
}

// closeReader closes r if it can be closed: a rebased stream stops its
// goroutine.
func closeReader(r io.Reader) {
	if c, ok := r.(io.Closer); ok {
		c.Close()
	}
}

// rebaseTar renames the top entry oldBase of a tar stream (and the
// entries below it) to newBase. Close the result (see closeReader) when
// not reading it to its end.
func rebaseTar(r io.Reader, oldBase, newBase string) io.Reader {
	if oldBase == newBase {
		return r
	}
	rename := func(name string) string {
		trimmed := strings.TrimPrefix(name, "./")
		if oldBase == "." {
			if name == "." || name == "./" {
				return newBase + "/"
			}
			return newBase + "/" + trimmed
		}
		if trimmed == oldBase || strings.HasPrefix(trimmed, oldBase+"/") {
			return newBase + trimmed[len(oldBase):]
		}
		return name
	}
	pr, pw := io.Pipe()
	go func() {
		tr := tar.NewReader(r)
		tw := tar.NewWriter(pw)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				pw.CloseWithError(tw.Close())
				return
			}
			if err != nil {
				pw.CloseWithError(err)
				return
			}
			h.Name = rename(h.Name)
			if h.Typeflag == tar.TypeLink {
				h.Linkname = rename(h.Linkname)
			}
			if err := tw.WriteHeader(h); err != nil {
				pw.CloseWithError(err)
				return
			}
			if _, err := io.Copy(tw, tr); err != nil {
				pw.CloseWithError(err)
				return
			}
		}
	}()
	return pr
}

// linkRebase is docker's GetRebaseName: the path a symlink source
// resolves to (keeping a trailing "/" or "/.") and the name its archive
// must have.
func linkRebase(orig, resolved string) (string, string) {
	if path.Base(orig) == "." && path.Base(resolved) != "." {
		resolved = strings.TrimSuffix(resolved, "/") + "/."
	}
	if strings.HasSuffix(orig, "/") && !strings.HasSuffix(resolved, "/") {
		resolved += "/"
	}
	if path.Base(orig) != path.Base(resolved) {
		return resolved, path.Base(orig)
	}
	return resolved, ""
}

func (c *Container) copyOut(ctx context.Context, src, hostPath string, o copyOptions) error {
	src = cleanPath(src)
	rebase := ""
	if o.followLink {
		st, err := c.statPath(ctx, src)
		if err != nil {
			return err
		}
		if st.Mode&os.ModeSymlink != 0 {
			src, rebase = linkRebase(src, st.LinkTarget)
		}
	}
	dst, err := hostDest(hostPath)
	if err != nil {
		return err
	}
	rc, st, err := c.copyFrom(ctx, src)
	if err != nil {
		return err
	}
	defer rc.Close()
	var content io.Reader = rc
	srcBase := st.Name
	if rebase != "" {
		content, srcBase = rebaseTar(rc, srcBase, rebase), rebase
		defer closeReader(content)
	}
	dstDir, content, err := prepareCopy(content, srcBase, st.Mode.IsDir(), dst)
	if err != nil {
		return err
	}
	defer closeReader(content)
	x := &extractor{ctx: ctx, root: dstDir, dst: "/", noChown: !o.archive, hostSide: true}
	if err := x.extract(content); err != nil {
		return fmt.Errorf("copy from container %s to %s: %w", c.rec.Name, hostPath, err)
	}
	return nil
}

// hostDest describes a host destination path as docker's
// CopyInfoDestinationPath: symlinks are followed (it is the caller's own
// path), and a missing one needs an existing parent directory.
func hostDest(p string) (copyDest, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return copyDest{}, err
	}
	p = keepTrailing(abs, p)
	for i := 0; ; i++ {
		fi, err := os.Lstat(p)
		if err == nil && fi.Mode()&os.ModeSymlink == 0 {
			return copyDest{path: p, exists: true, isDir: fi.IsDir()}, nil
		}
		if err != nil {
			if !errors.Is(err, os.ErrNotExist) {
				return copyDest{}, err
			}
			parent := filepath.Dir(filepath.Clean(p))
			pfi, err := os.Stat(parent)
			if err != nil {
				return copyDest{}, err
			}
			if !pfi.IsDir() {
				return copyDest{}, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("%s: not a directory", parent))
			}
			return copyDest{path: p}, nil
		}
		if i == 10 {
			return copyDest{}, errdefs.New(errdefs.ErrInvalid, "too many symlinks in "+p)
		}
		target, err := os.Readlink(p)
		if err != nil {
			return copyDest{}, err
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(filepath.Dir(p), target)
		}
		p = target
	}
}

// keepTrailing cleans p as clean but keeps orig's trailing "/" or "/.".
func keepTrailing(clean, orig string) string {
	switch {
	case (orig == "." || strings.HasSuffix(orig, "/.")) && path.Base(clean) != ".":
		return strings.TrimSuffix(clean, "/") + "/."
	case strings.HasSuffix(orig, "/") && !strings.HasSuffix(clean, "/"):
		return clean + "/"
	}
	return clean
}

func (c *Container) copyIn(ctx context.Context, hostPath, dst string, o copyOptions) error {
	// The destination in the container (a final symlink followed, as
	// docker's client does).
	dst = cleanPath(dst)
	d := copyDest{path: dst}
	st, err := c.statPath(ctx, dst)
	if err == nil && st.Mode&os.ModeSymlink != 0 {
		d.path = keepTrailing(st.LinkTarget, dst)
		st, err = c.statPath(ctx, d.path)
	}
	switch {
	case err == nil:
		d.exists, d.isDir = true, st.Mode.IsDir()
	case !errors.Is(err, errdefs.ErrNotFound):
		return err
	}
	// The source on the host.
	abs, err := filepath.Abs(hostPath)
	if err != nil {
		return err
	}
	src := keepTrailing(abs, hostPath)
	rebase := ""
	if o.followLink {
		resolved, err := filepath.EvalSymlinks(strings.TrimSuffix(src, "/."))
		if err != nil {
			return err
		}
		src, rebase = linkRebase(src, keepTrailing(resolved, src))
	} else if dir, base := filepath.Split(strings.TrimSuffix(src, "/.")); base != "" {
		rdir, err := filepath.EvalSymlinks(dir)
		if err != nil {
			return err
		}
		src = keepTrailing(filepath.Join(rdir, base), src)
	}
	fi, err := os.Lstat(strings.TrimSuffix(src, "/."))
	if assertsDir(src) && err == nil {
		fi, err = os.Stat(strings.TrimSuffix(src, "/."))
	}
	if err != nil {
		return err
	}
	srcBase := baseName(src)
	if rebase != "" {
		srcBase = rebase
	}
	pr, pw := io.Pipe()
	defer pr.Close()
	go func() {
		srcDir, base := filepath.Split(strings.TrimSuffix(src, "/."))
		opts := archive.TarOptions{Source: base, Name: srcBase}
		if strings.HasSuffix(src, "/.") || base == "" {
			srcDir, opts.Source = strings.TrimSuffix(src, "/."), ""
		}
		pw.CloseWithError(archive.Tar(ctx, pw, srcDir, opts))
	}()
	dstDir, content, err := prepareCopy(pr, srcBase, fi.IsDir(), d)
	if err != nil {
		return err
	}
	defer closeReader(content)
	var chown *owner
	if !o.archive {
		chown = &owner{0, 0}
	}
	return c.copyTo(ctx, dstDir, content, chown)
}

// mkdirNoFollow opens the directory rel below dirfd, creating missing
// components, and refuses symlinks on the way: the host side of a copy
// out of a container never follows a link the container made.
func mkdirNoFollow(dirfd int, rel string) (int, error) { return walkNoFollow(dirfd, rel, true) }

// openNoFollow opens the existing directory rel below dirfd, refusing
// symlinks on the way.
func openNoFollow(dirfd int, rel string) (int, error) { return walkNoFollow(dirfd, rel, false) }

func walkNoFollow(dirfd int, rel string, create bool) (int, error) {
	fd, err := unix.Dup(dirfd)
	if err != nil {
		return -1, err
	}
	for _, comp := range strings.Split(rel, "/") {
		if comp == "" || comp == "." {
			continue
		}
		if comp == ".." {
			unix.Close(fd)
			return -1, unix.EINVAL
		}
		if create {
			if err := unix.Mkdirat(fd, comp, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
				unix.Close(fd)
				return -1, err
			}
		}
		next, err := unix.Openat(fd, comp, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		unix.Close(fd)
		if err != nil {
			return -1, err
		}
		fd = next
	}
	return fd, nil
}
