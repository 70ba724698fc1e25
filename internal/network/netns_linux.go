package network

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// isNetns reports whether path is a mounted network namespace (nsfs).
func isNetns(path string) bool {
	var st unix.Statfs_t
	return unix.Statfs(path, &st) == nil && st.Type == unix.NSFS_MAGIC
}

// nsHandle is a netlink handle inside a container's namespace.
type nsHandle struct {
	*netlink.Handle
	created bool // the namespace was created by this call
}

// newNetns makes path a network namespace with lo up, and returns a
// netlink handle inside it. A new namespace is made on a locked OS thread
// of its own: unshare(CLONE_NEWNET), bind-mount the thread's namespace to
// path, open the netlink socket while there, setns back. If setns back
// fails the thread is left locked, and the runtime discards it.
func newNetns(path string) (*nsHandle, error) {
	if isNetns(path) {
		ns, err := netns.GetFromPath(path)
		if err != nil {
			return nil, fmt.Errorf("netns %s: %w", path, err)
		}
		defer ns.Close()
		h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
		if err != nil {
			return nil, fmt.Errorf("netns %s: %w", path, err)
		}
		if err := loUp(h); err != nil {
			h.Close()
			return nil, fmt.Errorf("netns %s: %w", path, err)
		}
		return &nsHandle{Handle: h}, nil
	}

	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("netns %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o444)
	if err != nil {
		return nil, fmt.Errorf("netns %s: %w", path, err)
	}
	f.Close()

	type result struct {
		h   *netlink.Handle
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			done <- result{err: err}
			return
		}
		defer unix.Close(orig)
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			done <- result{err: os.NewSyscallError("unshare", err)}
			return
		}
		var h *netlink.Handle
		err = unix.Mount("/proc/thread-self/ns/net", path, "", unix.MS_BIND, "")
		if err != nil {
			err = &os.PathError{Op: "mount", Path: path, Err: err}
		} else if h, err = netlink.NewHandle(unix.NETLINK_ROUTE); err == nil {
			if err = loUp(h); err != nil {
				h.Close()
				h = nil
			}
		}
		if serr := unix.Setns(orig, unix.CLONE_NEWNET); serr != nil {
			// Keep the thread locked: it dies with this goroutine.
			if h != nil {
				h.Close()
			}
			done <- result{err: errors.Join(err, os.NewSyscallError("setns", serr))}
			return
		}
		runtime.UnlockOSThread()
		done <- result{h: h, err: err}
	}()
	r := <-done
	if r.err != nil {
		_ = removeNetns(path)
		return nil, fmt.Errorf("netns %s: %w", path, r.err)
	}
	return &nsHandle{Handle: r.h, created: true}, nil
}

// loUp brings up the loopback interface, which is ifindex 1 in every
// namespace.
func loUp(h *netlink.Handle) error {
	return h.LinkSetUp(&netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: 1}})
}

// removeNetns unmounts path (every mount stacked on it) and deletes it.
func removeNetns(path string) error {
	for range 8 {
		err := unix.Unmount(path, unix.MNT_DETACH)
		if err == nil {
			continue
		}
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
			break // not (or no longer) a mount point
		}
		return fmt.Errorf("netns %s: %w", path, &os.PathError{Op: "unmount", Path: path, Err: err})
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("netns %s: %w", path, err)
	}
	return nil
}

// openNetns returns a netlink handle in the namespace at path, or nil if
// path is not a namespace.
func openNetns(path string) (*netlink.Handle, error) {
	if !isNetns(path) {
		return nil, nil
	}
	ns, err := netns.GetFromPath(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("netns %s: %w", path, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netns %s: %w", path, err)
	}
	return h, nil
}
