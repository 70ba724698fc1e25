package runtime

import (
	"fmt"
	"os"
	"runtime"
	"sync"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-run/berth/internal/errdefs"
)

var nsFlags = map[specs.LinuxNamespaceType]int{
	specs.PIDNamespace:     unix.CLONE_NEWPID,
	specs.NetworkNamespace: unix.CLONE_NEWNET,
	specs.MountNamespace:   unix.CLONE_NEWNS,
	specs.IPCNamespace:     unix.CLONE_NEWIPC,
	specs.UTSNamespace:     unix.CLONE_NEWUTS,
	specs.UserNamespace:    unix.CLONE_NEWUSER,
	specs.CgroupNamespace:  unix.CLONE_NEWCGROUP,
	specs.TimeNamespace:    unix.CLONE_NEWTIME,
}

// nsJoin is a namespace to enter by path.
type nsJoin struct {
	flag int
	path string
}

// joinOrder is the order namespaces are entered in: user first (it grants
// the capabilities for the others), mount last (it changes the root).
var joinOrder = []int{unix.CLONE_NEWUSER, unix.CLONE_NEWIPC, unix.CLONE_NEWUTS, unix.CLONE_NEWNET, unix.CLONE_NEWPID, unix.CLONE_NEWCGROUP, unix.CLONE_NEWTIME, unix.CLONE_NEWNS}

// namespacePlan splits the spec's namespaces into clone flags (new ones)
// and ones to join by path. A new cgroup namespace is left to the init,
// which unshares it once it is in its cgroup.
func namespacePlan(spec *specs.Spec) (clone uintptr, joins []nsJoin, newCgroupNS, userNS bool, err error) {
	if spec.Linux == nil {
		return 0, nil, false, false, nil
	}
	seen := map[specs.LinuxNamespaceType]bool{}
	for _, ns := range spec.Linux.Namespaces {
		flag, ok := nsFlags[ns.Type]
		if !ok {
			return 0, nil, false, false, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("unknown namespace type %q", ns.Type))
		}
		if seen[ns.Type] {
			return 0, nil, false, false, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("namespace %q listed twice", ns.Type))
		}
		seen[ns.Type] = true
		if ns.Path != "" {
			if ns.Type == specs.UserNamespace {
				return 0, nil, false, false, errdefs.New(errdefs.ErrNotSupported, "joining a user namespace by path is not supported")
			}
			joins = append(joins, nsJoin{flag: flag, path: ns.Path})
			continue
		}
		switch ns.Type {
		case specs.TimeNamespace:
			return 0, nil, false, false, errdefs.New(errdefs.ErrNotSupported, "a new time namespace is not supported")
		case specs.CgroupNamespace:
			newCgroupNS = true
		case specs.UserNamespace:
			userNS = true
			clone |= uintptr(flag)
		default:
			clone |= uintptr(flag)
		}
	}
	if userNS && (len(spec.Linux.UIDMappings) == 0 || len(spec.Linux.GIDMappings) == 0) {
		return 0, nil, false, false, errdefs.New(errdefs.ErrInvalid, "a user namespace needs uidMappings and gidMappings")
	}
	return clone, joins, newCgroupNS, userNS, nil
}

// joinNamespaces enters the namespaces on the calling thread, which must
// be locked and must never be unlocked again.
func joinNamespaces(joins []nsJoin) error {
	for _, flag := range joinOrder {
		for _, j := range joins {
			if j.flag != flag {
				continue
			}
			if flag == unix.CLONE_NEWNS {
				// setns into a mount namespace needs an fs_struct of
				// our own; Go threads share one.
				if err := unix.Unshare(unix.CLONE_FS); err != nil {
					return fmt.Errorf("unshare fs: %w", err)
				}
			}
			fd, err := unix.Open(j.path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				return fmt.Errorf("open namespace %s: %w", j.path, err)
			}
			err = unix.Setns(fd, flag)
			unix.Close(fd)
			if err != nil {
				return fmt.Errorf("join namespace %s: %w", j.path, err)
			}
		}
	}
	return nil
}

// forker starts a process from a thread chosen for it.
//
// With namespaces to join, it locks a thread, joins them and forks from
// there: the child is born in them. Such a thread must never run other
// goroutines again, so its goroutine stays locked and exits when released,
// and Go ends the thread.
//
// With keep (PR_SET_PDEATHSIG), the forking thread is the child's parent
// for the death signal: if that thread ended, the child would be killed.
// Any thread of the Go runtime can end (a goroutine that locks it and
// exits), so the fork happens on a thread that stays: without namespaces
// to join, the process's tied thread (onTiedThread), shared by every such
// child; with them, the joining thread, locked to a goroutine that stays
// parked until release, and then ends.
//
// Without either, the fork happens on whatever thread runs a fresh
// goroutine.
type forker struct {
	release chan struct{}
}

type forkResult struct {
	p   *os.Process
	err error
}

func startProcess(joins []nsJoin, join func() error, keep bool, path string, argv []string, attr *os.ProcAttr) (*os.Process, *forker, error) {
	if keep && len(joins) == 0 && join == nil {
		var p *os.Process
		var err error
		onTiedThread(func() { p, err = os.StartProcess(path, argv, attr) })
		if err != nil {
			return nil, nil, err
		}
		return p, nil, nil // nothing to release: the thread stays
	}
	ch := make(chan forkResult, 1)
	if len(joins) == 0 && join == nil {
		go func() {
			p, err := os.StartProcess(path, argv, attr)
			ch <- forkResult{p, err}
		}()
		r := <-ch
		return r.p, nil, r.err // nothing to release: the thread was not held
	}
	f := &forker{release: make(chan struct{})}
	goTainted(func() {
		var err error
		if join != nil {
			err = join()
		} else {
			err = joinNamespaces(joins)
		}
		if err != nil {
			ch <- forkResult{err: err}
			return
		}
		p, err := os.StartProcess(path, argv, attr)
		ch <- forkResult{p, err}
		if err == nil {
			<-f.release
		}
	})
	r := <-ch
	if r.err != nil {
		return nil, nil, r.err
	}
	return r.p, f, nil
}

// goTainted runs fn on a new goroutine locked to its thread for good:
// fn may change the thread's namespaces, and the thread ends with the
// goroutine. Never the process's main thread: Go cannot end that one and
// parks it for ever instead, still in the namespaces fn joined, which
// would then outlive their container (a network namespace, and with it
// its veth, that no removal can take away). When the goroutine starts
// there, it holds the main thread while another thread runs fn.
func goTainted(fn func()) {
	go func() {
		runtime.LockOSThread()
		if unix.Gettid() != unix.Getpid() {
			fn()
			return // still locked: the thread ends
		}
		done := make(chan struct{})
		go func() {
			runtime.LockOSThread() // not the main thread: held above
			defer close(done)
			fn()
		}()
		<-done
		runtime.UnlockOSThread()
	}()
}

// tiedThread forks the children tied to this process (keep) that join no
// namespace. Its goroutine stays locked to it and never returns, so the
// thread lasts as long as the process: one thread for all of them,
// rather than a parked thread each, which a monitor running many
// containers would pay for in memory (~45 KiB of stacks per thread). It
// is process-wide as the death signal is: a property of this process's
// threads, not of any caller's object.
var tiedThread struct {
	once sync.Once
	reqs chan func()
}

// onTiedThread runs fn on the tied thread and returns when it is done.
func onTiedThread(fn func()) {
	tiedThread.once.Do(func() {
		tiedThread.reqs = make(chan func())
		go func() {
			runtime.LockOSThread() // never unlocked, never returns
			for fn := range tiedThread.reqs {
				fn()
			}
		}()
	})
	done := make(chan struct{})
	tiedThread.reqs <- func() {
		defer close(done)
		fn()
	}
	<-done
}

// done lets the forking thread exit (call once the child is reaped).
func (f *forker) done() {
	if f == nil {
		return
	}
	select {
	case <-f.release:
	default:
		close(f.release)
	}
}

func sysProcAttr(spec *specs.Spec, clone uintptr, userNS bool) *syscall.SysProcAttr {
	sys := &syscall.SysProcAttr{
		Cloneflags: clone,
		Setsid:     true,
	}
	if userNS {
		for _, m := range spec.Linux.UIDMappings {
			sys.UidMappings = append(sys.UidMappings, syscall.SysProcIDMap{ContainerID: int(m.ContainerID), HostID: int(m.HostID), Size: int(m.Size)})
		}
		for _, m := range spec.Linux.GIDMappings {
			sys.GidMappings = append(sys.GidMappings, syscall.SysProcIDMap{ContainerID: int(m.ContainerID), HostID: int(m.HostID), Size: int(m.Size)})
		}
		sys.GidMappingsEnableSetgroups = true
		// Become the namespace's root before the re-exec: an euid that
		// is not mapped would lose every capability at execve.
		sys.Credential = &syscall.Credential{Uid: 0, Gid: 0}
	}
	return sys
}
