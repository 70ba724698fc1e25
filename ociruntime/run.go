package ociruntime

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/term"

	"github.com/berth-run/berth/internal/errdefs"
	rt "github.com/berth-run/berth/internal/runtime"
)

// forwarded are the signals Run and Exec pass on to the container's
// process (as runc does): stopping the caller stops the container.
var forwarded = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2}

// Run creates and starts the container and waits for it in the
// foreground (OCI-style `run`): the process's console, when it has a
// terminal and no console socket, is bridged to opts' stdio; signals to
// the caller are forwarded; the container is deleted when it exits and
// its exit code (128+signal for a signal) is returned. The container
// dies with the caller. With detach, Run returns once the process started
// and leaves the container running.
func (r *Runtime) Run(ctx context.Context, id, bundle string, opts CreateOpts, detach bool) (int, error) {
	c, err := r.create(ctx, id, bundle, opts, !detach)
	if err != nil {
		return -1, err
	}
	if detach {
		if c.Console() != nil && opts.ConsoleSocket == "" {
			_ = c.Delete(ctx, true)
			return -1, errdefs.New(errdefs.ErrInvalid, "a detached container with a terminal needs a console socket")
		}
		return 0, c.Start(ctx)
	}
	var restore func()
	if con := c.Console(); con != nil {
		restore = bridgeConsole(con, opts.Stdin, opts.Stdout, c.Resize)
	}
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, forwarded...)
	go func() {
		for s := range sigs {
			_ = c.Kill(s.(syscall.Signal))
		}
	}()
	err = c.Start(ctx)
	var st rt.ExitStatus
	if err == nil {
		st, err = c.Wait()
	}
	signal.Stop(sigs)
	close(sigs)
	if derr := c.Delete(context.Background(), true); err == nil {
		err = derr
	}
	if restore != nil {
		restore()
	}
	if err != nil {
		return -1, err
	}
	return st.Code, nil
}

// ExecOpts are the options of Exec.
type ExecOpts struct {
	// Stdin, Stdout and Stderr are the process's stdio (nil: /dev/null).
	Stdin, Stdout, Stderr *os.File
	// ConsoleSocket receives the pty master of a process with a terminal.
	ConsoleSocket string
	// PidFile receives the process's pid.
	PidFile string
	// Detach returns once the process started instead of waiting.
	Detach bool
	// ExtraFiles are passed as fds 3, 4, ...
	ExtraFiles []*os.File
}

// Exec runs proc in the running container id and returns its exit code
// (0 right after the start with Detach). With a terminal and no console
// socket, the process's console is bridged to opts' stdio.
func (r *Runtime) Exec(ctx context.Context, id string, proc *specs.Process, opts ExecOpts) (int, error) {
	s, err := r.load(id)
	if err != nil {
		return -1, err
	}
	p, err := rt.Exec(ctx, s, proc, rt.ExecOpts{
		Stdin: opts.Stdin, Stdout: opts.Stdout, Stderr: opts.Stderr,
		ConsoleSocket: opts.ConsoleSocket, PidFile: opts.PidFile, ExtraFiles: opts.ExtraFiles,
	})
	if err != nil {
		return -1, err
	}
	if opts.Detach {
		return 0, nil
	}
	var restore func()
	if con := p.Console(); con != nil {
		restore = bridgeConsole(con, opts.Stdin, opts.Stdout, p.Resize)
	}
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, forwarded...)
	go func() {
		for s := range sigs {
			_ = p.Signal(s.(syscall.Signal))
		}
	}()
	st, err := p.Wait()
	signal.Stop(sigs)
	close(sigs)
	if restore != nil {
		restore()
	}
	if err != nil {
		return -1, err
	}
	return st.Code, nil
}

// bridgeConsole copies between a pty master and the caller's stdio,
// putting the caller's terminal (if stdin is one) in raw mode and sizing
// the pty like it. The returned function restores the terminal.
func bridgeConsole(con, in, out *os.File, resize func(w, h uint16) error) func() {
	if in == nil {
		in = os.Stdin
	}
	if out == nil {
		out = os.Stdout
	}
	var state *term.State
	if term.IsTerminal(int(in.Fd())) {
		if w, h, err := term.GetSize(int(in.Fd())); err == nil {
			_ = resize(uint16(w), uint16(h))
		}
		state, _ = term.MakeRaw(int(in.Fd()))
	}
	done := make(chan struct{})
	go func() { io.Copy(con, in) }()
	go func() { io.Copy(out, con); close(done) }()
	return func() {
		// The copy ends when no process holds the pty's slave any more;
		// a leftover daemon in an exec'd session may keep it open.
		select {
		case <-done:
		case <-time.After(2 * time.Second):
			con.Close()
		}
		if state != nil {
			_ = term.Restore(int(in.Fd()), state)
		}
	}
}
