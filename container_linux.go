package berth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-run/berth/internal/errdefs"
	"github.com/berth-run/berth/internal/oci"
	"github.com/berth-run/berth/internal/overlay"
	"github.com/berth-run/berth/internal/proc"
	"github.com/berth-run/berth/internal/runtime"
	"github.com/berth-run/berth/internal/store"
)

// ownedContainer is the handle of a container whose init this process
// started and is the parent of: it reaps it and records its exit.
type ownedContainer struct {
	rc   *runtime.Container
	done chan struct{} // closed once the exit is recorded and resources released
	exit int           // valid after done
	hub  *attachHub    // the streams' attach point (attach.go)
	// onExit, when set (by the monitor), sees the exit's state before it
	// is written, under the container lock (restart.go).
	onExit func(st *containerState)
}

func (r *Runtime) run(ctx context.Context, spec Spec, opts ...RunOption) (*Container, error) {
	c, err := r.Create(ctx, spec)
	if err != nil {
		return nil, err
	}
	if err := c.start(ctx, opts...); err != nil {
		if spec.AutoRemove {
			_ = c.remove(context.WithoutCancel(ctx), RemoveForce())
		}
		return nil, err
	}
	return c, nil
}

// lockContainer takes the container's cross-process lock, which orders
// the state changes of start, finalize, stop and remove.
func (r *Runtime) lockContainer(id string) (*store.FileLock, error) {
	lk, err := r.store.LockName("ctr-" + id)
	if err == nil && r.containerGone(id) {
		lk.RemoveLock() // no such container (any more): leave no lock file behind
	}
	return lk, err
}

// containerGone reports whether container id's directory is gone: a lock
// taken for it then removes its file.
func (r *Runtime) containerGone(id string) bool {
	_, err := os.Stat(r.containerDir(id))
	return errors.Is(err, os.ErrNotExist)
}

func (c *Container) start(ctx context.Context, opts ...RunOption) error {
	o := makeRunOptions(opts)
	if o.detach {
		return c.startDetached(ctx, o) // monitor_client_linux.go
	}
	r := c.rt
	lk, err := r.lockContainer(c.rec.ID)
	if err != nil {
		return err
	}
	defer lk.Unlock()
	st, err := r.reconcileLocked(ctx, c.rec.ID)
	if err != nil {
		return err
	}
	switch st.Status {
	case StatusRunning, StatusPaused, StatusRestarting:
		return nil
	case StatusRemoving, StatusDead:
		return errdefs.New(errdefs.ErrConflict, fmt.Sprintf("container %s is %s", c.rec.Name, st.Status))
	}
	rec, err := r.readRecord(c.rec.ID)
	if err != nil {
		return err
	}
	c.rec = rec
	st.RestartCount = 0 // a user's start, as docker's
	return c.startOwned(ctx, o, st)
}

// startOwned sets up and starts the container with this process as its
// parent. The caller holds the container lock.
func (c *Container) startOwned(ctx context.Context, o runOptions, st *containerState) (err error) {
	r, rec := c.rt, c.rec
	id := rec.ID
	dir := r.containerDir(id)
	rootfs := filepath.Join(dir, "rootfs")
	var undo []func()
	defer func() {
		if err != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
			st.Error = err.Error()
			st.ExitCode = exitCodeOf(err)
			_ = r.writeState(id, st)
		}
	}()

	if err := c.mountRootfs(); err != nil {
		return err
	}
	undo = append(undo, func() { _ = overlay.Unmount(rootfs) })

	im, err := r.imageOfRecord(rec)
	if err != nil {
		return err
	}
	cfg, err := r.ociConfig(&rec.Spec, im, rootfs, id)
	if err != nil {
		return err
	}
	mounts, err := r.resolveMounts(ctx, c)
	if err != nil {
		return err
	}
	cfg.Mounts = mounts
	netw, err := r.setupNetwork(ctx, c, &cfg)
	if err != nil {
		return err
	}
	undo = append(undo, func() {
		_ = netw.wait()
		r.teardownNetwork(context.WithoutCancel(ctx), c)
	})
	spec, err := oci.Generate(cfg)
	if err != nil {
		return err
	}
	if err := oci.CreateWorkdir(rootfs, spec.Process.Cwd); err != nil {
		return err
	}
	if b, err := json.Marshal(spec); err == nil {
		_ = store.WriteFile(filepath.Join(dir, "config.json"), b, 0o600, false)
	}

	// Standard streams: pipes (or the terminal) pumped into the log.
	log, err := openLog(filepath.Join(dir, logFileName), &rec.Spec)
	if err != nil {
		return err
	}
	undo = append(undo, func() { log.Close() })
	hub := newAttachHub(rec.Spec.OpenStdin, &o)
	undo = append(undo, func() { hub.close(-1, fmt.Errorf("container %s did not start", rec.Name)) })
	if o.hubReady != nil {
		o.hubReady(hub)
	}
	stdio, err := newStdio(spec.Process.Terminal, o)
	if err != nil {
		return err
	}
	undo = append(undo, stdio.closeAll)

	runDir := r.store.ContainerRunDir(id)
	_ = os.RemoveAll(runDir) // a previous run's state
	if err := os.MkdirAll(filepath.Dir(runDir), 0o700); err != nil {
		return err
	}
	rc, err := runtime.Create(ctx, runtime.CreateOpts{
		ID:          id,
		Bundle:      dir,
		Spec:        spec,
		StateDir:    runDir,
		Stdin:       stdio.childIn,
		Stdout:      stdio.childOut,
		Stderr:      stdio.childErr,
		TieToParent: true,
		PreStart:    netw.preStart,
	})
	if err != nil {
		return err
	}
	undo = append(undo, func() { _ = rc.Delete(context.WithoutCancel(ctx), true) })
	stdio.closeChildEnds()
	initID, err := proc.Of(rc.Pid())
	if err != nil {
		return fmt.Errorf("start container %s: %w", rec.Name, err)
	}
	*st = containerState{Status: StatusRunning, Init: initID, Owner: proc.Self(), Detached: o.detach,
		StartedAt: time.Now().UTC(), RestartCount: st.RestartCount}
	if err := r.writeState(id, st); err != nil {
		return err
	}
	oc := &ownedContainer{rc: rc, done: make(chan struct{}), hub: hub, onExit: o.onExit}
	hub.setResize(rc.Resize)
	stdio.start(rc.Console(), log, o)
	if err := rc.Start(ctx); err != nil {
		return err
	}
	c.owned = oc
	r.event(ctx, "container", "start", id, map[string]string{"name": rec.Name, "image": rec.ImageName})
	go c.finalize(oc, stdio, log)
	return nil
}

// exitCodeOf is docker's exit code for a container that failed to start:
// 127 when the command was not found, 126 when it could not be run, 125
// otherwise.
func exitCodeOf(err error) int {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "executable file not found"), strings.Contains(msg, "no such file or directory"):
		return 127
	case strings.Contains(msg, "permission denied"):
		return 126
	}
	return 125
}

// mountRootfs mounts the container's overlay root filesystem (once).
func (c *Container) mountRootfs() error {
	dir := c.rt.containerDir(c.rec.ID)
	rootfs := filepath.Join(dir, "rootfs")
	if overlay.Mounted(rootfs) {
		return nil
	}
	lowers := make([]string, 0, len(c.rec.Layers))
	for i := len(c.rec.Layers) - 1; i >= 0; i-- {
		lowers = append(lowers, c.rt.store.LayerLink(c.rec.Layers[i]))
	}
	return overlay.Mount(lowers, filepath.Join(dir, "upper"), filepath.Join(dir, "work"), rootfs)
}

// finalize waits for the owned container to exit, records the exit and
// releases its resources.
func (c *Container) finalize(oc *ownedContainer, io *stdio, log *logWriter) {
	r, id := c.rt, c.rec.ID
	ctx := context.Background()
	// Wait for the exit in Go's poller (a pidfd), so that a process
	// running many containers (the monitor) holds no thread per
	// container in a blocking wait (monitor_linux.go).
	_ = waitProcessExit(context.Background(), proc.ID{PID: oc.rc.Pid(), Start: oc.rc.State().StartTime})
	es, _ := oc.rc.Wait()
	io.wait(2 * time.Second)
	log.Close()
	oom := false
	if cg, err := r.ownedCgroup(oc, c.rec); err == nil {
		if n, err := cg.OOMKillCount(); err == nil && n > 0 {
			oom = true
		}
	}
	lk, err := r.lockContainer(id)
	if err == nil {
		defer lk.Unlock()
	}
	// The runtime's cleanup (cgroup, state) and the release of the
	// network and mounts wait on the kernel independently: overlap them.
	released := make(chan struct{})
	go func() {
		r.releaseResources(ctx, c)
		close(released)
	}()
	_ = oc.rc.Delete(ctx, true)
	<-released
	st, err := r.readState(id)
	if err != nil {
		st = &containerState{}
	}
	st.Status = StatusExited
	st.ExitCode = es.Code
	st.OOMKilled = oom
	st.FinishedAt = time.Now().UTC()
	st.Error = ""
	if oc.onExit != nil {
		oc.onExit(st)
	}
	_ = r.writeState(id, st)
	oc.exit = es.Code
	r.event(ctx, "container", "die", id, map[string]string{"name": c.rec.Name, "exitCode": fmt.Sprint(es.Code)})
	if oom {
		r.event(ctx, "container", "oom", id, map[string]string{"name": c.rec.Name})
	}
	if c.rec.Spec.AutoRemove {
		_ = r.removeLocked(ctx, c.rec)
	}
	// Attached clients learn the exit code once every process sees the
	// container exited (and, with --rm, gone), as docker's attach.
	oc.hub.close(es.Code, nil)
	close(oc.done)
}

// releaseResources undoes what a start set up, whatever state it is in:
// the network, the mounts. Idempotent.
func (r *Runtime) releaseResources(ctx context.Context, c *Container) {
	netDone := make(chan struct{})
	go func() {
		r.teardownNetwork(ctx, c)
		close(netDone)
	}()
	_ = overlay.Unmount(filepath.Join(r.containerDir(c.rec.ID), "rootfs"))
	<-netDone
}

// reconcileLocked reads the container's state and, if the process that
// owned its init is gone (it was killed, or the machine restarted),
// records the container as exited and releases what it left. The caller
// holds the container lock.
func (r *Runtime) reconcileLocked(ctx context.Context, id string) (*containerState, error) {
	st, err := r.readState(id)
	if err != nil {
		return nil, err
	}
	switch st.Status {
	case StatusRunning, StatusPaused, StatusRestarting:
	default:
		return st, nil
	}
	if st.Owner.Alive() && st.Init.Alive() {
		return st, nil
	}
	if st.Owner.Alive() {
		// The owner has not recorded the exit yet: it will.
		return st, nil
	}
	rec, err := r.readRecord(id)
	if err != nil {
		return nil, err
	}
	if st.Init.Alive() {
		_ = unix.Kill(st.Init.PID, unix.SIGKILL)
	}
	c := &Container{rt: r, rec: rec}
	if s, err := runtime.Load(r.store.ContainerRunDir(id)); err == nil {
		_ = runtime.Delete(ctx, s, true, nil)
	} else if cg, err := r.containerCgroup(rec); err == nil {
		_ = cg.Kill(ctx)
		_ = cg.Delete()
	}
	_ = os.RemoveAll(r.store.ContainerRunDir(id))
	r.releaseResources(ctx, c)
	st.Status = StatusExited
	st.ExitCode = 137
	st.FinishedAt = time.Now().UTC()
	st.Error = "the process that ran the container exited"
	if err := r.writeState(id, st); err != nil {
		return nil, err
	}
	r.event(ctx, "container", "die", id, map[string]string{"name": rec.Name, "exitCode": "137"})
	if rec.Spec.AutoRemove {
		if err := r.removeLocked(ctx, rec); err != nil {
			return nil, err
		}
		return nil, errdefs.New(errdefs.ErrNotFound, "no such container: "+rec.Name)
	}
	return st, nil
}

// reconcile is reconcileLocked taking the container lock.
func (r *Runtime) reconcile(ctx context.Context, id string) (*containerState, error) {
	lk, err := r.lockContainer(id)
	if err != nil {
		return nil, err
	}
	defer lk.Unlock()
	return r.reconcileLocked(ctx, id)
}

func (c *Container) state(ctx context.Context) (State, error) {
	st, err := c.rt.reconcile(ctx, c.rec.ID)
	if err != nil {
		return State{}, err
	}
	return publicState(st), nil
}

func (c *Container) wait(ctx context.Context) (int, error) {
	if oc := c.owned; oc != nil {
		select {
		case <-oc.done:
			return oc.exit, nil
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	st, err := c.rt.waitExit(ctx, c.rec.ID)
	if err != nil {
		return 0, err
	}
	return st.ExitCode, nil
}

// waitExit waits, from any process, until container id is not running.
func (r *Runtime) waitExit(ctx context.Context, id string) (*containerState, error) {
	delay := time.Millisecond
	for {
		st, err := r.reconcile(ctx, id)
		if err != nil {
			return nil, err
		}
		switch st.Status {
		case StatusRunning, StatusPaused, StatusRestarting:
		default:
			return st, nil
		}
		if st.Init.Alive() {
			waitPidExit(ctx, st.Init, 100*time.Millisecond)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(delay):
		}
		if delay < 20*time.Millisecond {
			delay *= 2
		}
	}
}

// waitPidExit blocks until the process id exits, ctx ends or max passes,
// through a pidfd (which works for processes that are not our children).
func waitPidExit(ctx context.Context, id proc.ID, max time.Duration) {
	fd, err := unix.PidfdOpen(id.PID, 0)
	if err != nil {
		return
	}
	defer unix.Close(fd)
	if !id.Alive() { // the pid was reused before we opened it
		return
	}
	deadline := time.Now().Add(max)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, 20)
		if n > 0 || err != nil && !errors.Is(err, unix.EINTR) {
			return
		}
	}
}

func (c *Container) kill(ctx context.Context, sig syscall.Signal) error {
	if sig == 0 {
		sig = syscall.SIGKILL
	}
	r := c.rt
	lk, err := r.lockContainer(c.rec.ID)
	if err != nil {
		return err
	}
	st, err := r.reconcileLocked(ctx, c.rec.ID)
	if err != nil {
		lk.Unlock()
		return err
	}
	if st.Status != StatusRunning && st.Status != StatusPaused {
		lk.Unlock()
		return errdefs.New(errdefs.ErrNotRunning, fmt.Sprintf("cannot kill container %s: container %s is not running", c.rec.Name, c.rec.ID[:12]))
	}
	st.StoppedByUser = true
	_ = r.writeState(c.rec.ID, st)
	lk.Unlock()
	if err := signalProcess(st.Init, sig); err != nil {
		return fmt.Errorf("kill container %s: %w", c.rec.Name, err)
	}
	if st.Status == StatusPaused && (sig == syscall.SIGKILL || sig == syscall.SIGTERM) {
		// A frozen process gets the signal once thawed.
		if cg, err := r.containerCgroup(c.rec); err == nil {
			_ = cg.Thaw(ctx)
		}
	}
	r.event(ctx, "container", "kill", c.rec.ID, map[string]string{"name": c.rec.Name, "signal": fmt.Sprint(int(sig))})
	return nil
}

// signalProcess signals the process id through a pidfd, so that a reused
// pid is never hit.
func signalProcess(id proc.ID, sig syscall.Signal) error {
	fd, err := unix.PidfdOpen(id.PID, 0)
	if err != nil {
		if errors.Is(err, unix.ESRCH) {
			return nil
		}
		return err
	}
	defer unix.Close(fd)
	if !id.Alive() {
		return nil
	}
	err = unix.PidfdSendSignal(fd, sig, nil, 0)
	if errors.Is(err, unix.ESRCH) {
		return nil
	}
	return err
}

func (c *Container) stop(ctx context.Context, timeout *time.Duration) error {
	r := c.rt
	st, err := r.reconcile(ctx, c.rec.ID)
	if err != nil {
		return err
	}
	if st.Status != StatusRunning && st.Status != StatusPaused && st.Status != StatusRestarting {
		return nil
	}
	if st.Status == StatusRestarting {
		// Waiting for its restart: stopping cancels it (restart.go).
		if cancelled, err := r.cancelRestart(ctx, c.rec.ID); cancelled || err != nil {
			return err
		}
	}
	wait := 10 * time.Second
	if c.rec.Spec.StopTimeout != nil {
		wait = time.Duration(*c.rec.Spec.StopTimeout) * time.Second
	}
	if timeout != nil {
		wait = *timeout
	}
	sig := syscall.SIGTERM
	if im, err := r.imageOfRecord(c.rec); err == nil {
		if s, err := oci.StopSignal(oci.Config{Image: im.config.Config, StopSignal: c.rec.Spec.StopSignal}); err == nil {
			sig = s
		}
	}
	if err := c.kill(ctx, sig); err != nil && !errors.Is(err, errdefs.ErrNotRunning) {
		return err
	}
	if wait >= 0 {
		wctx, cancel := context.WithTimeout(ctx, wait)
		_, err := c.wait(wctx)
		cancel()
		if err == nil {
			r.event(ctx, "container", "stop", c.rec.ID, map[string]string{"name": c.rec.Name})
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	if err := c.kill(ctx, syscall.SIGKILL); err != nil && !errors.Is(err, errdefs.ErrNotRunning) {
		return err
	}
	if _, err := c.wait(ctx); err != nil {
		return err
	}
	r.event(ctx, "container", "stop", c.rec.ID, map[string]string{"name": c.rec.Name})
	return nil
}

func (c *Container) remove(ctx context.Context, opts ...RemoveOption) error {
	var o removeOptions
	for _, opt := range opts {
		opt(&o)
	}
	r := c.rt
	st, err := r.reconcile(ctx, c.rec.ID)
	if err != nil {
		return err
	}
	if st.Status == StatusRunning || st.Status == StatusPaused || st.Status == StatusRestarting {
		if !o.force {
			return errdefs.New(errdefs.ErrConflict, fmt.Sprintf("cannot remove container %q: container is %s: stop the container before removing or force remove", "/"+c.rec.Name, st.Status))
		}
		if st.Status == StatusRestarting {
			if _, err := r.cancelRestart(ctx, c.rec.ID); err != nil {
				return err
			}
		}
		if err := c.kill(ctx, syscall.SIGKILL); err != nil && !errors.Is(err, errdefs.ErrNotRunning) {
			return err
		}
		if _, err := c.wait(ctx); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			return err
		}
	}
	lk, err := r.lockContainer(c.rec.ID)
	if err != nil {
		return err
	}
	defer lk.Unlock()
	if _, err := r.readRecord(c.rec.ID); err != nil {
		if errors.Is(err, errdefs.ErrNotFound) && c.rec.Spec.AutoRemove {
			return nil // removed by its own --rm meanwhile
		}
		return err
	}
	if err := r.removeLocked(ctx, c.rec); err != nil {
		return err
	}
	if o.volumes {
		r.removeAnonymousVolumes(ctx, c.rec)
	}
	return nil
}

// removeLocked removes a stopped container's files and resources. The
// caller holds the container lock.
func (r *Runtime) removeLocked(ctx context.Context, rec *containerRecord) error {
	// Before the store lock: releasing the network takes network locks,
	// which come before it.
	r.releaseResources(ctx, &Container{rt: r, rec: rec})
	unlock, err := r.store.Lock()
	if err != nil {
		return err
	}
	defer unlock()
	if s, err := runtime.Load(r.store.ContainerRunDir(rec.ID)); err == nil {
		_ = runtime.Delete(ctx, s, true, nil)
	}
	if cg, err := r.containerCgroup(rec); err == nil && cg.Exists() {
		_ = cg.Kill(ctx)
		_ = cg.Delete()
	}
	// The directory disappears at once (a rename), then its files go.
	dir := r.containerDir(rec.ID)
	gone := r.store.TempName("rmctr")
	if err := os.Rename(dir, gone); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove container %s: %w", rec.Name, err)
	}
	if err := store.RemoveAll(gone); err != nil {
		return fmt.Errorf("remove container %s: %w", rec.Name, err)
	}
	r.autoRemoveVolumesLocked(ctx, rec)
	_ = os.RemoveAll(r.store.ContainerRunDir(rec.ID))
	r.store.UnlinkLock("ctr-" + rec.ID) // held by the caller; the container is gone for good
	r.event(ctx, "container", "destroy", rec.ID, map[string]string{"name": rec.Name})
	return nil
}

// stdio are a container's standard streams on the parent's side.
type stdio struct {
	tty                            bool
	childIn, childOut, childErr    *os.File // the child's ends (closed after Create)
	parentIn, parentOut, parentErr *os.File
	console                        *os.File     // the terminal's master, with tty
	pumps                          atomic.Int32 // running output pumps; the last to end closes doneCh
	doneCh                         chan struct{}
}

func newStdio(tty bool, o runOptions) (*stdio, error) {
	s := &stdio{tty: tty, doneCh: make(chan struct{})}
	if tty {
		return s, nil
	}
	var err error
	if s.parentOut, s.childOut, err = os.Pipe(); err != nil {
		return nil, err
	}
	if s.parentErr, s.childErr, err = os.Pipe(); err != nil {
		s.closeAll()
		return nil, err
	}
	if o.stdin != nil {
		if s.childIn, s.parentIn, err = os.Pipe(); err != nil {
			s.closeAll()
			return nil, err
		}
	}
	return s, nil
}

func (s *stdio) closeChildEnds() {
	for _, f := range []*os.File{s.childIn, s.childOut, s.childErr} {
		if f != nil {
			f.Close()
		}
	}
}

func (s *stdio) closeAll() {
	s.closeChildEnds()
	for _, f := range []*os.File{s.parentIn, s.parentOut, s.parentErr} {
		if f != nil {
			f.Close()
		}
	}
}

// start pumps the streams: output into the log and the caller's writers,
// the caller's input into the container.
func (s *stdio) start(console *os.File, log *logWriter, o runOptions) {
	// The last pump to end closes doneCh (no goroutine waits for them:
	// the monitor runs many containers).
	done := func() {
		if s.pumps.Add(-1) == 0 {
			close(s.doneCh)
		}
	}
	if s.tty && console != nil {
		s.pumps.Store(1)
		go pump(console, o.stdout, log, "stdout", done)
		if o.stdin != nil {
			go func() { _, _ = io.Copy(console, o.stdin) }()
		}
	} else if !s.tty {
		s.pumps.Store(2)
		go pump(s.parentOut, o.stdout, log, "stdout", done)
		go pump(s.parentErr, o.stderr, log, "stderr", done)
		if s.parentIn != nil {
			go func() {
				_, _ = io.Copy(s.parentIn, o.stdin)
				s.parentIn.Close()
			}()
		}
	} else {
		close(s.doneCh)
	}
	s.console = console
}

// wait waits up to max for the output to drain, then closes the parent's
// ends.
func (s *stdio) wait(max time.Duration) {
	select {
	case <-s.doneCh:
	case <-time.After(max):
	}
	for _, f := range []*os.File{s.parentOut, s.parentErr} {
		if f != nil {
			f.Close()
		}
	}
	if s.console != nil {
		s.console.Close()
	}
}

func (c *Container) resize(ctx context.Context, width, height uint16) error {
	if oc := c.owned; oc != nil {
		if err := oc.rc.Resize(width, height); err != nil {
			return errdefs.Wrap(errdefs.ErrInvalid, "resize", err)
		}
		return nil
	}
	return c.resizeRemote(ctx, width, height) // monitor_client_linux.go
}
