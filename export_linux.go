package berth

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/berth-run/berth/internal/archive"
	"github.com/berth-run/berth/internal/overlay"
)

// rootMode says how a host-side operation reaches a container's files.
type rootMode int

const (
	// rootImage: the container's own filesystem, without the mounts
	// made inside it (export): the host's view of its overlay while it
	// runs, a read-only overlay of its layers otherwise.
	rootImage rootMode = iota
	// rootRead: the filesystem as the container's processes see it,
	// volumes and tmpfs mounts included, to read (cp out).
	rootRead
	// rootWrite: the same, to write (cp in); a stopped container gets
	// its overlay mounted read-write for the operation.
	rootWrite
)

// containerRoot is a directory that shows a container's root
// filesystem, valid until release is called.
type containerRoot struct {
	dir     string // give this to archive.Tar, OpenInRoot, ...
	running bool
	release func()
}

// openRoot makes the container's root filesystem reachable from this
// process. A running container is reached through its init's /proc root
// (rootRead, rootWrite) or the host's view of its overlay (rootImage),
// without its lock, so that a long copy does not hold up stop or kill.
// For a stopped container the container lock is held until release, so
// that it cannot start while its overlay is mounted here.
func (r *Runtime) openRoot(ctx context.Context, id string, mode rootMode) (_ *containerRoot, err error) {
	lk, st, rec, err := r.lockedState(ctx, id)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			lk.Unlock()
		}
	}()
	if st.Status == StatusRunning || st.Status == StatusPaused {
		var root *containerRoot
		if mode == rootImage {
			root, err = r.hostRootfs(rec)
		} else {
			root, err = procRoot(rec, st)
		}
		if err == nil {
			lk.Unlock()
			return root, nil
		}
		if mode != rootImage {
			return nil, err
		}
		// The overlay is mounted where this process cannot see it (in
		// another mount namespace): read the layers instead.
	}
	if st.Status == StatusRemoving || st.Status == StatusDead {
		return nil, fmt.Errorf("container %s is %s: %w", rec.Name, st.Status, ErrConflict)
	}
	var root *containerRoot
	if mode == rootWrite {
		if rec.Spec.ReadOnly {
			return nil, fmt.Errorf("container %s: container rootfs is marked read-only: %w", rec.Name, ErrInvalid)
		}
		root, err = r.mountRW(rec)
	} else {
		root, err = r.mountReadOnly(rec)
	}
	if err != nil {
		return nil, err
	}
	release := root.release
	root.release = func() { release(); lk.Unlock() }
	return root, nil
}

// procRoot opens the root directory of a running container's init:
// everything its processes see, mounts included. The directory is held
// open, so it stays valid (and never becomes another process's) until
// release.
func procRoot(rec *containerRecord, st *containerState) (*containerRoot, error) {
	fd, err := unix.Open(fmt.Sprintf("/proc/%d/root", st.Init.PID), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil || !st.Init.Alive() {
		if err == nil {
			unix.Close(fd)
		}
		return nil, notRunning(rec)
	}
	return &containerRoot{dir: fmt.Sprintf("/proc/self/fd/%d", fd), running: true, release: func() { unix.Close(fd) }}, nil
}

// hostRootfs opens the overlay a running container's owner mounted for
// it, as this process sees it: without the mounts inside the container.
func (r *Runtime) hostRootfs(rec *containerRecord) (*containerRoot, error) {
	rootfs := filepath.Join(r.containerDir(rec.ID), "rootfs")
	if !overlay.Mounted(rootfs) {
		return nil, fmt.Errorf("container %s: root filesystem not mounted here: %w", rec.Name, ErrNotSupported)
	}
	fd, err := unix.Open(rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", rec.Name, err)
	}
	return &containerRoot{dir: fmt.Sprintf("/proc/self/fd/%d", fd), running: true, release: func() { unix.Close(fd) }}, nil
}

// mountReadOnly mounts a read-only overlay of a stopped container's
// changes on its layers in a temporary directory.
func (r *Runtime) mountReadOnly(rec *containerRecord) (*containerRoot, error) {
	dir, err := r.store.TempDir("ctrfs")
	if err != nil {
		return nil, err
	}
	lowers := []string{r.upperDir(rec)}
	for i := len(rec.Layers) - 1; i >= 0; i-- {
		lowers = append(lowers, r.store.LayerLink(rec.Layers[i]))
	}
	if err := overlay.Mount(lowers, "", "", dir); err != nil {
		os.Remove(dir)
		return nil, fmt.Errorf("container %s: mount its filesystem: %w", rec.Name, err)
	}
	return &containerRoot{dir: dir, release: func() {
		_ = overlay.Unmount(dir)
		_ = os.Remove(dir)
	}}, nil
}

// mountRW mounts a stopped container's overlay at its rootfs, as a start
// does, and unmounts it on release if it was not mounted before.
func (r *Runtime) mountRW(rec *containerRecord) (*containerRoot, error) {
	c := &Container{rt: r, rec: rec}
	rootfs := filepath.Join(r.containerDir(rec.ID), "rootfs")
	was := overlay.Mounted(rootfs)
	if err := c.mountRootfs(); err != nil {
		return nil, fmt.Errorf("container %s: mount its filesystem: %w", rec.Name, err)
	}
	return &containerRoot{dir: rootfs, release: func() {
		if !was {
			_ = overlay.Unmount(rootfs)
		}
	}}, nil
}

func (c *Container) export(ctx context.Context, w io.Writer) error {
	r := c.rt
	root, err := r.openRoot(ctx, c.rec.ID, rootImage)
	if err != nil {
		return err
	}
	defer root.release()
	if err := archive.Tar(ctx, w, root.dir, archive.TarOptions{SkipWhiteouts: true}); err != nil {
		return fmt.Errorf("export container %s: %w", c.rec.Name, err)
	}
	r.event(ctx, "container", "export", c.rec.ID, map[string]string{"name": c.rec.Name, "image": c.rec.ImageName})
	return nil
}
