package berth

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-run/berth/internal/errdefs"
	"github.com/berth-run/berth/internal/proc"
	"github.com/berth-run/berth/internal/shim"
)

// startDetached asks the store's monitor (started if none runs) to start
// the container.
func (c *Container) startDetached(ctx context.Context, o runOptions) error {
	if o.stdin != nil || o.stdout != nil || o.stderr != nil {
		return errdefs.New(errdefs.ErrInvalid, "start: WithDetach cannot be combined with WithStdin, WithStdout or WithStderr: use Attach")
	}
	req := shim.Request{Op: shim.OpStart, ID: c.rec.ID, CgroupParent: c.rt.opts.cgroupParent, Creator: proc.Self()}
	if _, err := c.rt.monitorRequest(ctx, nil, req); err != nil {
		return fmt.Errorf("start container %s: %w", c.rec.Name, err)
	}
	c.owned = nil // a run of this process before is over; Wait asks the store
	return nil
}

// resizeRemote resizes the terminal of a container the monitor runs.
func (c *Container) resizeRemote(ctx context.Context, width, height uint16) error {
	st, err := c.rt.readState(c.rec.ID)
	if err != nil {
		return err
	}
	if st.Status != StatusRunning && st.Status != StatusPaused {
		return errdefs.New(errdefs.ErrNotRunning, fmt.Sprintf("container %s is not running", c.rec.Name))
	}
	if !st.Detached {
		return errdefs.New(errdefs.ErrNotSupported, fmt.Sprintf("resize: the terminal of container %s belongs to the process that runs it (pid %d)", c.rec.Name, st.Owner.PID))
	}
	_, err = c.rt.monitorRequest(ctx, &st.Owner, shim.Request{Op: shim.OpResize, ID: c.rec.ID, Width: width, Height: height})
	return err
}

// monitorRequest sends req to a monitor and returns its answer: to the
// monitor that is owner, or (nil) to the store's monitor of this
// protocol version, started if none runs. The connection is closed.
func (r *Runtime) monitorRequest(ctx context.Context, owner *proc.ID, req shim.Request) (*shim.Response, error) {
	c, err := r.dialMonitor(ctx, owner)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	if err := c.WriteJSON(shim.Control, req); err != nil {
		return nil, r.monitorErr(ctx, err)
	}
	var resp shim.Response
	if err := c.ReadJSON(shim.Control, &resp); err != nil {
		return nil, r.monitorErr(ctx, err)
	}
	return &resp, resp.Err()
}

func (r *Runtime) monitorErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("monitor of %s: %w", r.opts.root, err)
}

// dialMonitor connects to the monitor that is owner, or (nil) to the
// store's monitor, starting it if needed.
func (r *Runtime) dialMonitor(ctx context.Context, owner *proc.ID) (*shim.Conn, error) {
	if owner != nil {
		return r.dialOwner(ctx, *owner)
	}
	return r.connectMonitor(ctx)
}

// dialOwner connects to the running monitor whose identity is owner: the
// store's monitor, or the one of this protocol version.
func (r *Runtime) dialOwner(ctx context.Context, owner proc.ID) (*shim.Conn, error) {
	if c, _, ok := r.dialRunning(ctx, func(h shim.Hello) bool { return h.Monitor == owner }); ok {
		return c, nil
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return nil, errdefs.New(errdefs.ErrNotSupported, fmt.Sprintf("the monitor that runs the container (pid %d) cannot be reached by this program (monitor protocol %d)", owner.PID, shim.Version))
}

// monitorStartTimeout bounds how long a client waits for a monitor that
// holds its lock but does not answer.
const monitorStartTimeout = 30 * time.Second

// connectMonitor connects to the store's monitor, starting one if none
// runs. Two processes doing so at once end with one monitor: only the
// holder of the monitor lock starts one. A monitor that speaks another
// protocol version (another build runs it) is left alone: this program
// uses a monitor of its own version beside it.
func (r *Runtime) connectMonitor(ctx context.Context) (*shim.Conn, error) {
	sock, lock := shim.Socket(r.opts.runRoot), shim.Lock(r.opts.runRoot)
	versioned := false
	deadline := time.Now().Add(monitorStartTimeout)
	delay := 2 * time.Millisecond
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if c, err := shim.Dial(ctx, sock); err == nil {
			_, err := shim.ClientHello(c)
			if err == nil {
				return c, nil
			}
			c.Close()
			if errors.Is(err, shim.ErrVersion) && !versioned {
				sock, lock = shim.VersionedSocket(r.opts.runRoot), shim.VersionedLock(r.opts.runRoot)
				versioned = true
				continue
			}
			// EOF: the monitor was shutting down. Try again.
		}
		started, err := r.spawnMonitor(ctx, sock, lock)
		if err != nil {
			return nil, err
		}
		if started {
			continue
		}
		// Another process holds the lock: a monitor starting or exiting.
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("monitor of %s: it holds %s but does not answer on %s", r.opts.root, lock, sock)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(delay):
		}
		delay = min(2*delay, 50*time.Millisecond)
	}
}

// spawnMonitor starts a monitor listening on sock if nobody holds lock,
// and returns once it listens. It reports false when the lock is held.
func (r *Runtime) spawnMonitor(ctx context.Context, sock, lock string) (bool, error) {
	if err := os.MkdirAll(r.opts.runRoot, 0o700); err != nil {
		return false, err
	}
	lf, err := os.OpenFile(lock, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return false, fmt.Errorf("monitor lock: %w", err)
	}
	// Our descriptor closes on return; the monitor inherits the open
	// file, and with it the lock, for its whole life.
	defer lf.Close()
	if err := unix.Flock(int(lf.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		if errors.Is(err, unix.EWOULDBLOCK) || errors.Is(err, unix.EINTR) {
			return false, nil
		}
		return false, fmt.Errorf("monitor lock: %w", err)
	}
	readyR, readyW, err := os.Pipe()
	if err != nil {
		return false, err
	}
	defer readyR.Close()
	logPath := filepath.Join(r.opts.runRoot, shim.LogName)
	rotateMonitorLog(logPath)
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		readyW.Close()
		return false, err
	}
	cmd := &exec.Cmd{
		Path: "/proc/self/exe",
		Args: []string{"berth-monitor", r.opts.root},
		Env: append(os.Environ(), monitorEnv+"=1", monitorRootEnv+"="+r.opts.root,
			monitorRunRootEnv+"="+r.opts.runRoot, monitorSockEnv+"="+sock),
		Dir:        "/",
		Stdout:     logf,
		Stderr:     logf,
		ExtraFiles: []*os.File{lf, readyW}, // fds 3 and 4
		// A session of its own: the terminal's signals and the
		// creator's death do not reach it.
		SysProcAttr: &syscall.SysProcAttr{Setsid: true},
	}
	err = cmd.Start()
	readyW.Close()
	logf.Close()
	if err != nil {
		return false, fmt.Errorf("start monitor: %w", err)
	}
	// Reap it if it exits while we run; after we exit, init does.
	go func() { _ = cmd.Wait() }()
	stop := context.AfterFunc(ctx, func() { _ = readyR.SetReadDeadline(time.Now()) })
	defer stop()
	var b [1]byte
	if n, _ := readyR.Read(b[:]); n == 1 {
		return true, nil
	}
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	return false, fmt.Errorf("monitor did not start: %s", lastLines(logPath, 3))
}

// rotateMonitorLog keeps the monitor's diagnostics log small: past 1 MiB
// it moves to monitor.log.1.
func rotateMonitorLog(path string) {
	if fi, err := os.Stat(path); err == nil && fi.Size() > 1<<20 {
		_ = os.Rename(path, path+".1")
	}
}

// lastLines returns the last n lines of the file at path, for errors.
func lastLines(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.TrimSpace(string(bytes.Join(lines, []byte("; "))))
}

// dialRunning connects to a running monitor of the store that speaks
// this protocol version and that match accepts (nil: any), without
// starting one: the store's, or the one of this version beside it.
func (r *Runtime) dialRunning(ctx context.Context, match func(shim.Hello) bool) (*shim.Conn, shim.Hello, bool) {
	for _, sock := range []string{shim.Socket(r.opts.runRoot), shim.VersionedSocket(r.opts.runRoot)} {
		c, err := shim.Dial(ctx, sock)
		if err != nil {
			continue
		}
		h, err := shim.ClientHello(c)
		if err == nil && (match == nil || match(h)) {
			return c, h, true
		}
		c.Close()
	}
	return nil, shim.Hello{}, false
}

// monitorStatus reports the pid of the store's running monitor and the
// containers it watches; pid 0 when none runs. It never starts one.
func (r *Runtime) monitorStatus(ctx context.Context) (int, []string, error) {
	c, h, ok := r.dialRunning(ctx, nil)
	if !ok {
		return 0, nil, nil
	}
	defer c.Close()
	if err := c.WriteJSON(shim.Control, shim.Request{Op: shim.OpStatus}); err != nil {
		return 0, nil, err
	}
	var resp shim.Response
	if err := c.ReadJSON(shim.Control, &resp); err != nil {
		return 0, nil, err
	}
	return h.Monitor.PID, resp.Containers, resp.Err()
}

// shutdownMonitor makes the store's monitor exit now if it is idle
// (ErrConflict if it is not) and waits until it has. No monitor is fine.
func (r *Runtime) shutdownMonitor(ctx context.Context) error {
	c, h, ok := r.dialRunning(ctx, nil)
	if !ok {
		return nil
	}
	defer c.Close()
	if err := c.WriteJSON(shim.Control, shim.Request{Op: shim.OpShutdown}); err != nil {
		return err
	}
	var resp shim.Response
	if err := c.ReadJSON(shim.Control, &resp); err != nil {
		return err
	}
	if err := resp.Err(); err != nil {
		return err
	}
	return waitProcessExit(ctx, h.Monitor)
}
