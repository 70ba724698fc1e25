package testutil

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/vishvananda/netns"
)

// EnterNetns moves the calling test goroutine into a fresh, empty network
// namespace for the rest of the test (netlink's setUpNetlinkTest pattern):
// the goroutine is locked to its OS thread, the thread enters the new
// namespace, and cleanup (registered first, so it runs last) puts the thread
// back and unlocks it. Everything the test does on this goroutine —
// netlink, nftables, sysctls under /proc/sys/net, sockets — happens in the
// namespace and disappears with it. Goroutines the test starts are NOT in
// it; use InNetns for those. Subtests (t.Run) run on other goroutines too.
func EnterNetns(t testing.TB) netns.NsHandle {
	t.Helper()
	RequiresRoot(t)
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("get current netns: %v", err)
	}
	ns, err := netns.New() // unshare(CLONE_NEWNET): the thread is now in ns
	if err != nil {
		orig.Close()
		runtime.UnlockOSThread()
		t.Fatalf("new netns: %v", err)
	}
	t.Cleanup(func() {
		if err := netns.Set(orig); err != nil {
			// Leave the thread locked: the runtime kills it when the
			// test goroutine exits, instead of reusing a thread in the
			// wrong namespace.
			t.Errorf("restore netns: %v", err)
			return
		}
		orig.Close()
		ns.Close()
		runtime.UnlockOSThread()
	})
	return ns
}

// NewNetns creates a network namespace without entering it and returns a
// handle to it, closed in cleanup (the namespace lives while the handle or
// anything inside it does).
func NewNetns(t testing.TB) netns.NsHandle {
	t.Helper()
	RequiresRoot(t)
	var ns netns.NsHandle
	err := run(func() error {
		var err error
		ns, err = netns.New()
		return err
	}, netns.None())
	if err != nil {
		t.Fatalf("new netns: %v", err)
	}
	t.Cleanup(func() { ns.Close() })
	return ns
}

// InNetns runs fn on a goroutine locked to an OS thread that is inside ns,
// and waits for it. Sockets created by fn stay in ns for their lifetime, so
// a listener created here can be served from any goroutine afterwards.
func InNetns(ns netns.NsHandle, fn func() error) error {
	return run(fn, ns)
}

// InNetnsPath is InNetns for a namespace bind-mounted at path.
func InNetnsPath(path string, fn func() error) error {
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return fmt.Errorf("open netns %s: %w", path, err)
	}
	defer ns.Close()
	return run(fn, ns)
}

// run executes fn on a fresh locked thread, inside target unless target is
// None (then fn itself switches namespaces). The thread's original
// namespace is restored afterwards; if that fails the thread stays locked
// and dies with the goroutine.
func run(fn func() error, target netns.NsHandle) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer orig.Close()
		if target.IsOpen() {
			if err := netns.Set(target); err != nil {
				runtime.UnlockOSThread()
				errc <- fmt.Errorf("setns: %w", err)
				return
			}
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			errc <- fmt.Errorf("restore netns: %w", err)
			return // thread stays locked and is discarded
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}
