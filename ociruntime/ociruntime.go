// Package ociruntime runs OCI bundles (a directory with config.json and a
// root filesystem) the way runc does, with berth's in-process runtime: the
// verbs of the OCI Runtime Command Line Interface — Create, Start, State,
// Kill, Delete — plus Run and Exec, each usable from a separate process.
// Containers are named by ID below a state root directory, which is the
// only state the verbs share.
//
// A program that imports this package needs no other wiring: the
// container's init is a re-exec of the program itself, caught before main
// by berth's runtime package.
package ociruntime

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-run/berth/cgroup"
	"github.com/berth-run/berth/internal/errdefs"
	rt "github.com/berth-run/berth/internal/runtime"
)

// DefaultRoot is the state root used when none is given.
const DefaultRoot = "/run/berth-oci"

// Runtime manages the containers whose state lives below one root.
type Runtime struct {
	root string
}

// New returns a Runtime over the state root dir (created when needed).
// Default (""): DefaultRoot.
func New(root string) *Runtime {
	if root == "" {
		root = DefaultRoot
	}
	return &Runtime{root: root}
}

// Root is the state root directory.
func (r *Runtime) Root() string { return r.root }

// CreateOpts are the options of Create and Run.
type CreateOpts struct {
	// Stdin, Stdout and Stderr are the process's stdio (nil: /dev/null).
	Stdin, Stdout, Stderr *os.File
	// ExtraFiles are passed as fds 3, 4, ... (runc's --preserve-fds).
	ExtraFiles []*os.File
	// ConsoleSocket receives the pty master of a process with a terminal.
	ConsoleSocket string
	// PidFile receives the init's pid.
	PidFile string
	// NoPivot uses MS_MOVE+chroot instead of pivot_root.
	NoPivot bool
}

func (r *Runtime) stateDir(id string) (string, error) {
	if id == "" || strings.ContainsAny(id, "/\x00") || id == "." || id == ".." {
		return "", errdefs.New(errdefs.ErrInvalid, "invalid container id "+quote(id))
	}
	return filepath.Join(r.root, id), nil
}

func quote(s string) string { return `"` + s + `"` }

func (r *Runtime) create(ctx context.Context, id, bundle string, opts CreateOpts, tie bool) (*rt.Container, error) {
	dir, err := r.stateDir(id)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(r.root, 0o711); err != nil {
		return nil, err
	}
	if bundle == "" {
		bundle = "."
	}
	return rt.Create(ctx, rt.CreateOpts{
		ID:            id,
		Bundle:        bundle,
		StateDir:      dir,
		Stdin:         opts.Stdin,
		Stdout:        opts.Stdout,
		Stderr:        opts.Stderr,
		ExtraFiles:    opts.ExtraFiles,
		ConsoleSocket: opts.ConsoleSocket,
		PidFile:       opts.PidFile,
		NoPivotRoot:   opts.NoPivot,
		TieToParent:   tie,
	})
}

// Create creates the container id from the bundle (OCI create): its
// process waits to be started. The container outlives the caller.
// A process with a terminal needs a console socket (the caller goes away).
func (r *Runtime) Create(ctx context.Context, id, bundle string, opts CreateOpts) error {
	c, err := r.create(ctx, id, bundle, opts, false)
	if err != nil {
		return err
	}
	if c.Console() != nil {
		_ = c.Delete(ctx, true)
		return errdefs.New(errdefs.ErrInvalid, "a process with a terminal needs a console socket")
	}
	return nil
}

func (r *Runtime) load(id string) (*rt.State, error) {
	dir, err := r.stateDir(id)
	if err != nil {
		return nil, err
	}
	return rt.Load(dir)
}

// Start starts the created container id (OCI start) and runs its
// poststart hooks.
func (r *Runtime) Start(ctx context.Context, id string) error {
	s, err := r.load(id)
	if err != nil {
		return err
	}
	return rt.Start(ctx, s)
}

// State returns the OCI state of container id.
func (r *Runtime) State(id string) (*specs.State, error) {
	s, err := r.load(id)
	if err != nil {
		return nil, err
	}
	st := s.State
	if st.Status == specs.StateStopped {
		st.Pid = 0
	}
	return &st, nil
}

// List returns the states of all containers below the root.
func (r *Runtime) List() ([]specs.State, error) {
	ents, err := os.ReadDir(r.root)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, nil
		}
		return nil, err
	}
	var out []specs.State
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		if st, err := r.State(e.Name()); err == nil {
			out = append(out, *st)
		}
	}
	return out, nil
}

// Kill sends sig to the container's init, or with all to all of its
// processes (OCI kill).
func (r *Runtime) Kill(id string, sig syscall.Signal, all bool) error {
	s, err := r.load(id)
	if err != nil {
		return err
	}
	return rt.Kill(s, sig, all)
}

// Delete deletes the container (OCI delete): a created one is killed, a
// running one only with force.
func (r *Runtime) Delete(ctx context.Context, id string, force bool) error {
	s, err := r.load(id)
	if err != nil {
		return err
	}
	return rt.Delete(ctx, s, force, nil)
}

// Pids lists the processes of the container (its cgroup, or its init).
func (r *Runtime) Pids(id string) ([]int, error) {
	s, err := r.load(id)
	if err != nil {
		return nil, err
	}
	if s.CgroupPath != "" {
		if m, err := rt.DefaultCgroups(s.CgroupPath); err == nil && m != nil {
			if pids, err := m.Procs(); err == nil {
				return pids, nil
			}
		}
	}
	if s.Status == specs.StateStopped {
		return nil, nil
	}
	return []int{s.Pid}, nil
}

// ParseSignal parses a signal as a number or a name, with or without the
// SIG prefix ("9", "KILL", "SIGKILL", "sigterm").
func ParseSignal(s string) (syscall.Signal, error) {
	if s == "" {
		return syscall.SIGTERM, nil
	}
	n := 0
	isNum := true
	for _, c := range s {
		if c < '0' || c > '9' {
			isNum = false
			break
		}
		n = n*10 + int(c-'0')
	}
	if isNum {
		if n <= 0 || n > 64 {
			return 0, errdefs.New(errdefs.ErrInvalid, "invalid signal "+s)
		}
		return syscall.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, errdefs.New(errdefs.ErrInvalid, "unknown signal "+s)
}

// Config returns the OCI spec container id was created from.
func (r *Runtime) Config(id string) (*specs.Spec, error) {
	s, err := r.load(id)
	if err != nil {
		return nil, err
	}
	if s.Config == nil {
		return nil, errdefs.New(errdefs.ErrCorrupt, "container "+quote(id)+" has no recorded config")
	}
	return s.Config, nil
}

// Pause freezes every process of the running container id (its cgroup's
// freezer).
func (r *Runtime) Pause(ctx context.Context, id string) error {
	m, err := r.cgroup(id, specs.StateRunning)
	if err != nil {
		return err
	}
	return m.Freeze(ctx)
}

// Resume thaws the paused container id.
func (r *Runtime) Resume(ctx context.Context, id string) error {
	m, err := r.cgroup(id, specs.ContainerState("paused"))
	if err != nil {
		return err
	}
	return m.Thaw(ctx)
}

// cgroup returns the manager of container id's cgroup, checking that the
// container is in the status want.
func (r *Runtime) cgroup(id string, want specs.ContainerState) (*cgroup.Manager, error) {
	s, err := r.load(id)
	if err != nil {
		return nil, err
	}
	if s.Status != want {
		return nil, errdefs.New(errdefs.ErrConflict, "container "+quote(id)+" is "+string(s.Status)+", not "+string(want))
	}
	if s.CgroupPath == "" {
		return nil, errdefs.New(errdefs.ErrNotSupported, "container "+quote(id)+" has no cgroup")
	}
	return cgroup.New(s.CgroupPath)
}
