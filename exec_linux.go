package berth

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/berth-run/berth/internal/errdefs"
	"github.com/berth-run/berth/internal/oci"
	"github.com/berth-run/berth/internal/runtime"
)

// execProcess is the Linux side of Process.
type execProcess struct {
	rp   *runtime.Process
	wg   sync.WaitGroup // output pumps
	done chan struct{}
	code int
	err  error
}

func (c *Container) exec(ctx context.Context, es ExecSpec) (*Process, error) {
	r := c.rt
	if len(es.Cmd) == 0 {
		return nil, errdefs.New(errdefs.ErrInvalid, "exec: no command given")
	}
	st, err := r.reconcile(ctx, c.rec.ID)
	if err != nil {
		return nil, err
	}
	switch st.Status {
	case StatusRunning:
	case StatusPaused:
		return nil, errdefs.New(errdefs.ErrConflict, fmt.Sprintf("container %s is paused, unpause the container before exec", c.rec.ID))
	default:
		return nil, errdefs.New(errdefs.ErrNotRunning, fmt.Sprintf("container %s is not running", c.rec.ID))
	}
	rs, err := runtime.Load(r.store.ContainerRunDir(c.rec.ID))
	if err != nil {
		return nil, fmt.Errorf("exec in %s: %w", c.rec.Name, err)
	}
	im, err := r.imageOfRecord(c.rec)
	if err != nil {
		return nil, err
	}
	// The exec'd process is the container's process with the exec's
	// command, user, environment and directory: the spec generator makes
	// it, so users, groups, HOME and capabilities follow the same rules.
	spec := c.rec.Spec
	spec.Entrypoint, spec.Cmd = []string{}, es.Cmd
	spec.Env = append(append([]string(nil), spec.Env...), es.Env...)
	if es.User != "" {
		spec.User = es.User
	}
	if es.WorkingDir != "" {
		spec.WorkingDir = es.WorkingDir
	}
	spec.Tty, spec.Init = es.Tty, false
	if es.Privileged {
		spec.Privileged = true
	}
	cfg, err := r.ociConfig(&spec, im, filepath.Join(r.containerDir(c.rec.ID), "rootfs"), c.rec.ID)
	if err != nil {
		return nil, err
	}
	gen, err := oci.Generate(cfg)
	if err != nil {
		return nil, err
	}
	proc := gen.Process
	if !es.Privileged {
		// The container's own capabilities, as docker's exec.
		if cs, err := runtime.ReadSpec(filepath.Join(r.containerDir(c.rec.ID), "config.json")); err == nil && cs.Process != nil {
			proc.Capabilities = cs.Process.Capabilities
		}
	}
	io := &execIO{}
	if err := io.open(es); err != nil {
		return nil, err
	}
	rp, err := runtime.Exec(ctx, rs, proc, runtime.ExecOpts{Stdin: io.childIn, Stdout: io.childOut, Stderr: io.childErr})
	io.closeChild()
	if err != nil {
		io.closeParent()
		return nil, fmt.Errorf("exec in %s: %w", c.rec.Name, err)
	}
	ep := &execProcess{rp: rp, done: make(chan struct{})}
	io.pump(ep, rp.Console(), es)
	go func() {
		status, err := rp.Wait()
		ep.wg.Wait()
		io.closeParent()
		if con := rp.Console(); con != nil {
			con.Close()
		}
		ep.code, ep.err = status.Code, err
		close(ep.done)
	}()
	r.event(ctx, "container", "exec_start", c.rec.ID, map[string]string{"name": c.rec.Name, "execID": fmt.Sprint(rp.Pid)})
	return &Process{pid: rp.Pid, sys: ep}, nil
}

func (p *Process) wait(ctx context.Context) (int, error) {
	select {
	case <-p.sys.done:
		return p.sys.code, p.sys.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

func (p *Process) signal(sig syscall.Signal) error { return p.sys.rp.Signal(sig) }

func (p *Process) resize(w, h uint16) error {
	if err := p.sys.rp.Resize(w, h); err != nil {
		return errdefs.Wrap(errdefs.ErrInvalid, "resize", err)
	}
	return nil
}

// execIO are an exec'd process's streams on the caller's side.
type execIO struct {
	childIn, childOut, childErr    *os.File
	parentIn, parentOut, parentErr *os.File
}

func (x *execIO) open(es ExecSpec) error {
	var err error
	if es.Tty {
		return nil
	}
	if x.parentOut, x.childOut, err = os.Pipe(); err != nil {
		return err
	}
	if x.parentErr, x.childErr, err = os.Pipe(); err != nil {
		x.closeChild()
		x.closeParent()
		return err
	}
	if es.Stdin != nil {
		if x.childIn, x.parentIn, err = os.Pipe(); err != nil {
			x.closeChild()
			x.closeParent()
			return err
		}
	}
	return nil
}

func (x *execIO) closeChild() {
	for _, f := range []*os.File{x.childIn, x.childOut, x.childErr} {
		if f != nil {
			f.Close()
		}
	}
}

func (x *execIO) closeParent() {
	for _, f := range []*os.File{x.parentOut, x.parentErr} {
		if f != nil {
			f.Close()
		}
	}
}

func (x *execIO) pump(ep *execProcess, console *os.File, es ExecSpec) {
	copyOut := func(w io.Writer, r io.Reader) {
		defer ep.wg.Done()
		if w == nil {
			w = io.Discard
		}
		_, _ = io.Copy(w, r)
	}
	if console != nil {
		ep.wg.Add(1)
		go copyOut(es.Stdout, console)
		if es.Stdin != nil {
			go func() { _, _ = io.Copy(console, es.Stdin) }()
		}
		return
	}
	ep.wg.Add(2)
	go copyOut(es.Stdout, x.parentOut)
	go copyOut(es.Stderr, x.parentErr)
	if x.parentIn != nil {
		go func() {
			_, _ = io.Copy(x.parentIn, es.Stdin)
			x.parentIn.Close()
		}()
	}
}
