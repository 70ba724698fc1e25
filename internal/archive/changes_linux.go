//go:build linux

package archive

import (
	"fmt"
	"os"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// changeWalker walks an upper dir and looks its paths up in the lowers.
type changeWalker struct {
	lowers []int             // O_PATH fds of the lower dirs, topmost first
	opaque []map[string]bool // per lower: is this directory opaque
	out    []Change
	xbuf   []byte
}

func changes(upper string, lowers []string) ([]Change, error) {
	ufd, err := openat(unix.AT_FDCWD, upper, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: upper, Err: err}
	}
	defer unix.Close(ufd)
	w := &changeWalker{xbuf: make([]byte, 8)}
	defer func() {
		for _, fd := range w.lowers {
			unix.Close(fd)
		}
	}()
	for _, l := range lowers {
		fd, err := openat(unix.AT_FDCWD, l, unix.O_PATH|unix.O_DIRECTORY, 0)
		if err != nil {
			return nil, &os.PathError{Op: "open", Path: l, Err: err}
		}
		w.lowers = append(w.lowers, fd)
		w.opaque = append(w.opaque, map[string]bool{})
	}
	if err := w.walk(ufd, "", false); err != nil {
		return nil, err
	}
	slices.SortFunc(w.out, func(a, b Change) int { return strings.Compare(a.Path, b.Path) })
	return w.out, nil
}

// walk records the changes below the upper directory fd, named rel.
func (w *changeWalker) walk(fd int, rel string, opaque bool) error {
	names, err := readDirNames(fd)
	if err != nil {
		return fmt.Errorf("reading directory %q: %w", "/"+rel, err)
	}
	slices.Sort(names)
	for _, n := range names {
		p := n
		if rel != "" {
			p = rel + "/" + n
		}
		var st unix.Stat_t
		if err := unix.Fstatat(fd, n, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			if err == unix.ENOENT {
				continue
			}
			return fmt.Errorf("lstat %q: %w", "/"+p, err)
		}
		typ := st.Mode & unix.S_IFMT
		if typ == unix.S_IFCHR && st.Rdev == 0 {
			w.out = append(w.out, Change{Kind: Deleted, Path: "/" + p})
			continue
		}
		kind := Added
		if !opaque && w.inLowers(p) {
			kind = Modified
		}
		w.out = append(w.out, Change{Kind: kind, Path: "/" + p})
		if typ != unix.S_IFDIR {
			continue
		}
		dfd, err := openat(fd, n, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
		if err != nil {
			if err == unix.ENOENT {
				continue
			}
			return fmt.Errorf("open %q: %w", "/"+p, err)
		}
		err = w.walk(dfd, p, opaque || w.isOpaque(dfd))
		unix.Close(dfd)
		if err != nil {
			return err
		}
	}
	return nil
}

func (w *changeWalker) isOpaque(fd int) bool {
	n, err := unix.Fgetxattr(fd, opaqueXattr, w.xbuf)
	return err == nil && n == 1 && w.xbuf[0] == 'y'
}

// inLowers reports whether the merged lower layers have the path p: the
// topmost lower that has an entry at p or hides it decides.
func (w *changeWalker) inLowers(p string) bool {
	parent, base := splitName(p)
	for i, lfd := range w.lowers {
		pfd, err := openBeneath(lfd, parent, unix.O_PATH|unix.O_DIRECTORY, false)
		if err == unix.ENOENT {
			continue
		}
		if err != nil {
			return false // a non-directory (a whiteout, a file, a symlink) hides the path
		}
		var st unix.Stat_t
		err = unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW)
		unix.Close(pfd)
		if err == nil {
			return !(st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0)
		}
		if w.opaqueAncestor(i, parent) {
			return false
		}
	}
	return false
}

// opaqueAncestor reports whether dir or one of its parents is opaque in
// lower i.
func (w *changeWalker) opaqueAncestor(i int, dir string) bool {
	for dir != "" {
		o, ok := w.opaque[i][dir]
		if !ok {
			o = false
			if fd, err := openBeneath(w.lowers[i], dir, unix.O_RDONLY|unix.O_DIRECTORY, false); err == nil {
				o = w.isOpaque(fd)
				unix.Close(fd)
			}
			w.opaque[i][dir] = o
		}
		if o {
			return true
		}
		dir, _ = splitName(dir)
	}
	return false
}
