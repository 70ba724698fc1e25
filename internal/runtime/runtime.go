// Package runtime is berth's in-process OCI runtime: it executes an OCI
// runtime-spec bundle (a specs.Spec and a root filesystem) with Linux
// namespaces, mounts, pivot_root, capabilities, seccomp and cgroups, all in
// Go over system calls.
//
// The container's init is a re-exec of /proc/self/exe carrying an
// environment marker; this package's init() recognises the marker and runs
// the init stage before main, so programs and test binaries that import the
// package need no wiring. The init stage receives its configuration over an
// inherited socket, sets up the container and blocks before execve (the OCI
// "created" state) until Start, from this process or any other, releases it
// through a unix socket in the state directory (exec.sock).
//
// Three kinds of caller use it: the root package running foreground
// containers (the caller is the parent and can Wait), the monitor of
// detached containers, and `berth oci`, the runc-compatible command line
// (through the public ociruntime package), where every verb may be a
// separate process and the state directory is the only shared state.
package runtime

import (
	"context"
	"os"
	"sync"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Status is the OCI status of a container.
type Status string

// The OCI statuses.
const (
	StatusCreating Status = "creating"
	StatusCreated  Status = "created"
	StatusRunning  Status = "running"
	StatusStopped  Status = "stopped"
	StatusPaused   Status = "paused"
)

// CgroupManager places processes into the container's cgroup and removes it.
// It is the one seam between the runtime and the cgroup package.
type CgroupManager interface {
	// Create makes the cgroup and applies the limits.
	Create(res *specs.LinuxResources) error
	// Add moves a process into the cgroup.
	Add(pid int) error
	// Procs lists the processes in the cgroup.
	Procs() ([]int, error)
	// Frozen reports whether the cgroup is frozen.
	Frozen() (bool, error)
	// Delete removes the cgroup (it must be empty).
	Delete() error
}

// CgroupFactory returns the manager of the cgroup at path (an OCI
// cgroupsPath: absolute from the hierarchy roots, or relative to the
// caller's own cgroup).
type CgroupFactory func(path string) (CgroupManager, error)

// CreateOpts describe a container to create.
type CreateOpts struct {
	// ID names the container; it is unique per StateDir parent.
	ID string
	// Bundle is the bundle directory; a relative Spec.Root.Path is
	// resolved against it, and Spec is read from Bundle/config.json when
	// nil.
	Bundle string
	// Spec is the OCI runtime configuration (not modified).
	Spec *specs.Spec
	// StateDir is the container's own state directory (state.json, the
	// start socket). It is created; it must not hold a container already.
	StateDir string
	// Stdin, Stdout and Stderr become the process's stdio; nil means
	// /dev/null. Ignored when Spec.Process.Terminal is set.
	Stdin, Stdout, Stderr *os.File
	// ExtraFiles are passed to the process as fds 3, 4, ... (like runc's
	// --preserve-fds).
	ExtraFiles []*os.File
	// ConsoleSocket is the path of a unix socket that receives the pty
	// master (SCM_RIGHTS) when Spec.Process.Terminal is set; empty keeps
	// the master in the Container (Console).
	ConsoleSocket string
	// PidFile, when set, receives the init's pid (written atomically).
	PidFile string
	// CgroupPath is the cgroup used when the spec has no cgroupsPath
	// (default "berth/<ID>", below the caller's own cgroup).
	CgroupPath string
	// Cgroups makes the container's cgroup manager. A factory returning
	// a nil manager (NoCgroups) leaves the container in the caller's
	// cgroups. Default: DefaultCgroups.
	Cgroups CgroupFactory
	// PreStart runs in the parent once the init exists (its namespaces
	// are made and it is in its cgroup) and before it sets up the root
	// filesystem: the place to configure a network namespace made by
	// clone (/proc/<pid>/ns/net). An error aborts the creation.
	PreStart func(ctx context.Context, pid int) error
	// TieToParent kills the container (SIGKILL) when the creating process
	// dies. The init is forked from a thread locked to a parked goroutine
	// until Wait (or Delete) reaps it — the death signal fires when the
	// forking thread ends — and the signal is set again after the init
	// drops privileges.
	TieToParent bool
	// NoPivotRoot uses MS_MOVE and chroot instead of pivot_root (for
	// roots on initramfs). It is also the fallback when pivot_root fails
	// with EINVAL.
	NoPivotRoot bool
}

// ExitStatus is how a container process ended, as docker reports it.
// Whether the OOM killer did it is the caller's to find out, from the
// cgroup's OOM kill count (cgroup.Manager.OOMKillCount).
type ExitStatus struct {
	// Code is the exit code, or 128+signal when a signal killed it.
	Code int
	// Signal is the signal that killed the process, or 0.
	Signal syscall.Signal
	// ExitedAt is when the exit was observed.
	ExitedAt time.Time
}

// State is what the state directory records about a container plus its
// status derived from the running system. It embeds the OCI state.
type State struct {
	specs.State
	// Created is when the container was created.
	Created time.Time `json:"created"`
	// StartTime is the init's start time in clock ticks since boot
	// (/proc/PID/stat field 22): with the pid it identifies the process
	// even after pid reuse.
	StartTime uint64 `json:"startTime"`
	// Rootfs is the absolute path of the root filesystem.
	Rootfs string `json:"rootfs"`
	// CgroupPath is the cgroup path the container was placed in ("" when
	// cgroups were not used).
	CgroupPath string `json:"cgroupPath,omitempty"`
	// CgroupBase is the /proc/self/cgroup of the process that created the
	// container, when CgroupPath is relative: other processes, which may
	// sit in other cgroups, find the container's cgroup below it.
	CgroupBase string `json:"cgroupBase,omitempty"`
	// Config is the OCI spec the container was created from.
	Config *specs.Spec `json:"config"`
	// StateDir is the directory this state was loaded from.
	StateDir string `json:"-"`
}

// ExecOpts describe how to run an extra process in a container.
type ExecOpts struct {
	// Stdin, Stdout and Stderr become the process's stdio; nil means
	// /dev/null. Ignored with a terminal.
	Stdin, Stdout, Stderr *os.File
	// ConsoleSocket receives the pty master when proc.Terminal is set;
	// empty keeps it in the Process (Console).
	ConsoleSocket string
	// ExtraFiles are passed as fds 3, 4, ...
	ExtraFiles []*os.File
	// PidFile, when set, receives the process's pid.
	PidFile string
}

// Container is a container created by this process, which is its parent:
// it can Start, Wait for, signal and delete it. Other processes use Load
// and the package functions on the State.
type Container struct {
	state *State
	proc  *os.Process
	cg    CgroupManager
	sys   containerSys

	// mu guards console and sys.sock.
	mu      sync.Mutex
	console *os.File

	waitOnce sync.Once
	exit     ExitStatus
	waitErr  error
	exited   chan struct{}
}

// Create creates a container: its init runs in new namespaces, in its
// cgroup, with the root filesystem set up, and waits before executing the
// process (OCI "created"). ctx bounds the creation; the container
// outlives it.
func Create(ctx context.Context, opts CreateOpts) (*Container, error) { return create(ctx, opts) }

// ID is the container's ID.
func (c *Container) ID() string { return c.state.ID }

// Pid is the init's pid (in the caller's pid namespace).
func (c *Container) Pid() int { return c.proc.Pid }

// State returns the container's recorded state (status as of creation;
// Load derives the current one).
func (c *Container) State() *State { return c.state }

// Start lets the init execute the process, runs the poststart hooks, and
// returns once the process was executed (or failed to be).
func (c *Container) Start(ctx context.Context) error { return c.start(ctx) }

// Wait waits for the init to exit and returns its status. It can be called
// any number of times, from any goroutine.
func (c *Container) Wait() (ExitStatus, error) { return c.wait() }

// Exited is closed once Wait has observed the exit.
func (c *Container) Exited() <-chan struct{} { return c.exited }

// Kill sends sig to the init.
func (c *Container) Kill(sig syscall.Signal) error { return c.kill(sig) }

// Console is the pty master of a container whose process has a terminal
// and that was created without a console socket; nil otherwise. The
// caller owns it after Create.
func (c *Container) Console() *os.File {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.console
}

// Delete stops the container (SIGKILL when force, or when it is only
// created), waits for it, removes its cgroup, runs the poststop hooks and
// removes its state directory.
func (c *Container) Delete(ctx context.Context, force bool) error { return c.delete(ctx, force) }

// Process is a process started in a running container by Exec.
type Process struct {
	// Pid is the process's pid in the caller's pid namespace.
	Pid int

	proc    *os.Process
	console *os.File
	sys     processSys

	waitOnce sync.Once
	exit     ExitStatus
	waitErr  error
	exited   chan struct{}
}

// Wait waits for the process to exit (only the process that called Exec
// can). It can be called any number of times.
func (p *Process) Wait() (ExitStatus, error) { return p.wait() }

// Signal sends sig to the process.
func (p *Process) Signal(sig syscall.Signal) error { return p.signal(sig) }

// Console is the pty master of a process started with a terminal and no
// console socket; nil otherwise.
func (p *Process) Console() *os.File { return p.console }

// Resize sets the terminal size of a process started with a terminal.
func (p *Process) Resize(width, height uint16) error {
	if p.console == nil {
		return errNoConsole
	}
	return resizePty(p.console, width, height)
}

// Resize sets the terminal size of the container's console.
func (c *Container) Resize(width, height uint16) error {
	con := c.Console()
	if con == nil {
		return errNoConsole
	}
	return resizePty(con, width, height)
}

// Load reads the state of the container whose state directory is
// stateDir; its Status is derived from the running system (is the init
// alive and still the same process, is the start socket there, is the
// cgroup frozen).
func Load(stateDir string) (*State, error) { return load(stateDir) }

// Start releases a created container from any process (OCI start) and
// runs the poststart hooks. It returns before the exec happens.
func Start(ctx context.Context, s *State) error { return start(ctx, s) }

// Kill sends sig to the container's init, and with all to every process
// in its cgroup.
func Kill(s *State, sig syscall.Signal, all bool) error { return kill(s, sig, all) }

// Delete removes a container: a created one is killed; a running or
// paused one only with force (SIGKILL to every process). It waits for the
// init to exit, removes the cgroup through cgroups (nil: DefaultCgroups), runs
// the poststop hooks and removes the state directory. ctx bounds the wait.
func Delete(ctx context.Context, s *State, force bool, cgroups CgroupFactory) error {
	return remove(ctx, s, force, cgroups, nil)
}

// Exec starts proc in the running container s: in all its namespaces and
// cgroups, under its root, with the container's seccomp filter and the
// capabilities, user, environment and working directory of proc. It
// returns once the process was executed. ctx bounds the start.
func Exec(ctx context.Context, s *State, proc *specs.Process, opts ExecOpts) (*Process, error) {
	return execIn(ctx, s, proc, opts)
}
