package berth

import (
	"context"
	"io"
	"syscall"
)

// ExecSpec describes a process to run in a running container, as the
// flags of `docker exec` do.
type ExecSpec struct {
	// Cmd is the command and its arguments. Required.
	Cmd []string
	// Env entries ("KEY=VALUE") add to the container's environment.
	Env []string
	// User overrides the container's user ("name", "uid:gid", ...).
	User string
	// WorkingDir overrides the container's working directory.
	WorkingDir string
	// Tty gives the process a terminal; its output then all goes to Stdout.
	Tty bool
	// Privileged gives the process every capability.
	Privileged bool
	// Stdin, when not nil, is streamed to the process's standard input.
	Stdin io.Reader
	// Stdout and Stderr receive the process's output (nil discards it).
	Stdout, Stderr io.Writer
}

// Process is a process started in a container by Exec.
type Process struct {
	pid int
	sys *execProcess
}

// Exec starts a process in the running container, in all its namespaces
// and its cgroup, as `docker exec`, and returns once it runs. ctx bounds
// the start.
func (c *Container) Exec(ctx context.Context, spec ExecSpec) (*Process, error) {
	return c.exec(ctx, spec)
}

// Pid is the process's pid as seen from the host.
func (p *Process) Pid() int { return p.pid }

// Wait waits for the process to exit and its output to be copied, and
// returns its exit code (128+n for signal n).
func (p *Process) Wait(ctx context.Context) (int, error) { return p.wait(ctx) }

// Signal sends sig to the process.
func (p *Process) Signal(sig syscall.Signal) error { return p.signal(sig) }

// Resize sets the size of the process's terminal.
func (p *Process) Resize(width, height uint16) error { return p.resize(width, height) }
