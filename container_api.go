package berth

import (
	"context"
	"syscall"
	"time"
)

// Run creates and starts a container, as `docker run`, and returns once
// its process has started. The calling process is the container's parent:
// the container's output goes to its log (and to WithStdout/WithStderr),
// Wait returns its exit code, and the container dies with this process.
// With spec.AutoRemove it is removed when it exits. ctx bounds the
// start-up; the container outlives it.
func (r *Runtime) Run(ctx context.Context, spec Spec, opts ...RunOption) (*Container, error) {
	return r.run(ctx, spec, opts...)
}

// Run creates and starts a container on the default runtime (see
// Runtime.Run and Default).
func Run(ctx context.Context, spec Spec, opts ...RunOption) (*Container, error) {
	rt, err := Default(ctx)
	if err != nil {
		return nil, err
	}
	return rt.Run(ctx, spec, opts...)
}

// Start starts a created or exited container in this process, which
// becomes its parent (see Run). Starting a running container does
// nothing.
func (c *Container) Start(ctx context.Context, opts ...RunOption) error { return c.start(ctx, opts...) }

// State is the container's current status ("created", "running",
// "paused", "exited", ...), its exit code and timing.
type State struct {
	Status     string
	Running    bool
	Paused     bool
	Pid        int
	ExitCode   int
	OOMKilled  bool
	Error      string
	StartedAt  time.Time
	FinishedAt time.Time
	// RestartCount is how often the monitor restarted the container.
	RestartCount int
}

// State reads the container's current state.
func (c *Container) State(ctx context.Context) (State, error) { return c.state(ctx) }

// Wait waits for the container to exit and returns its exit code (128+n
// when signal n killed it). A container that is not running returns its
// last exit code at once. ctx bounds the wait.
func (c *Container) Wait(ctx context.Context) (int, error) { return c.wait(ctx) }

// Kill sends a signal to the container's main process (docker kill;
// default SIGKILL). The container must be running.
func (c *Container) Kill(ctx context.Context, sig syscall.Signal) error { return c.kill(ctx, sig) }

// Stop stops the container as `docker stop`: its stop signal, then
// SIGKILL once timeout has passed (nil: the spec's StopTimeout, default
// 10 seconds). A container that is not running is left alone.
func (c *Container) Stop(ctx context.Context, timeout *time.Duration) error {
	return c.stop(ctx, timeout)
}

// RemoveOption configures Container.Remove.
type RemoveOption func(*removeOptions)

type removeOptions struct{ force, volumes bool }

// RemoveForce kills a running container before removing it (docker rm
// -f). Default: a running container is refused with ErrConflict.
func RemoveForce() RemoveOption { return func(o *removeOptions) { o.force = true } }

// RemoveVolumes removes the container's anonymous volumes too (docker rm
// -v). Default: volumes stay.
func RemoveVolumes() RemoveOption { return func(o *removeOptions) { o.volumes = true } }

// Remove removes the container and everything it made: its filesystem
// changes, mounts, cgroup, network namespace, addresses and NAT rules.
// When Remove returns, they are gone.
func (c *Container) Remove(ctx context.Context, opts ...RemoveOption) error {
	return c.remove(ctx, opts...)
}

// Resize sets the size of the container's terminal (a container created
// with Tty).
func (c *Container) Resize(ctx context.Context, width, height uint16) error {
	return c.resize(ctx, width, height)
}

func publicState(st *containerState) State {
	s := State{Status: st.Status, ExitCode: st.ExitCode, OOMKilled: st.OOMKilled, Error: st.Error,
		StartedAt: st.StartedAt, FinishedAt: st.FinishedAt, RestartCount: st.RestartCount}
	s.Running = st.Status == StatusRunning || st.Status == StatusPaused
	s.Paused = st.Status == StatusPaused
	if s.Running {
		s.Pid = st.Init.PID
	}
	return s
}
