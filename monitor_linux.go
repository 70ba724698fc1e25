package berth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"sort"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-run/berth/internal/errdefs"
	"github.com/berth-run/berth/internal/proc"
	"github.com/berth-run/berth/internal/shim"
)

// init turns this process into the store's monitor when it is one (the
// marker monitorEnv is set) and never returns then. It does nothing
// otherwise. This is berth's second re-exec hook, beside
// internal/runtime's container init.
func init() {
	if os.Getenv(monitorEnv) != "1" {
		return
	}
	os.Exit(runMonitor())
}

// monitor is the monitor process's state.
type monitor struct {
	self    proc.ID
	ctx     context.Context // ends when the monitor shuts down
	sock    string
	ln      *net.UnixListener
	log     *log.Logger
	rt      *Runtime
	opts    []Option
	stopped chan struct{} // closed by shutdown

	// mu guards the fields below. Lock order: a container lock, then mu;
	// never take a container lock while holding mu.
	mu       sync.Mutex
	runtimes map[string]*Runtime         // by cgroup parent
	ctrs     map[string]*monitored       // the containers watched, by ID
	pending  map[string][]*attachSession // attaches waiting for a start, by ID
	conns    int                         // open connections
	idle     *time.Timer                 // runs shutdownIfIdle once idle long enough
	sweeping bool                        // a pending-attach sweep is scheduled
	closing  bool
	freeing  *time.Timer // returns memory to the system after a burst of starts
}

// monitored is a container the monitor runs, or waits to restart, or
// watches the creator of.
type monitored struct {
	id string
	c  *Container // with c.owned while it runs

	// Guarded by monitor.mu:
	running bool       // c's process runs (its exit is not recorded yet)
	hub     *attachHub // of the current run
	backoff restartBackoff
	restart bool          // the last exit asked for a restart
	delay   time.Duration // before that restart
	creator proc.ID       // watched for DieWithCreator (zero: none)
}

func runMonitor() int {
	lg := log.New(os.Stderr, fmt.Sprintf("monitor %d: ", os.Getpid()), log.LstdFlags|log.Lmicroseconds|log.LUTC)
	root, runRoot, sock := os.Getenv(monitorRootEnv), os.Getenv(monitorRunRootEnv), os.Getenv(monitorSockEnv)
	for _, k := range []string{monitorEnv, monitorRootEnv, monitorRunRootEnv, monitorSockEnv} {
		os.Unsetenv(k)
	}
	unix.CloseOnExec(monitorLockFd)
	unix.CloseOnExec(monitorReadyFd)
	ready := os.NewFile(monitorReadyFd, "ready")
	// The lock (fd monitorLockFd) stays open, and held, until the exit.
	// Memory is what the monitor is judged by: collect more often.
	debug.SetGCPercent(50)
	signal.Ignore(syscall.SIGHUP, syscall.SIGPIPE)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	opts := []Option{WithRoot(root), WithRunRoot(runRoot)}
	rt, err := Open(ctx, opts...)
	if err != nil {
		lg.Printf("open store: %v", err)
		return 1
	}
	defer rt.Close()
	ln, err := shim.Listen(sock)
	if err != nil {
		lg.Print(err)
		return 1
	}
	m := &monitor{self: proc.Self(), ctx: ctx, sock: sock, ln: ln, log: lg, rt: rt, opts: opts,
		stopped: make(chan struct{}), runtimes: map[string]*Runtime{"": rt},
		ctrs: map[string]*monitored{}, pending: map[string][]*attachSession{}}
	lg.Printf("listening on %s for store %s", sock, root)
	if _, err := ready.Write([]byte{1}); err != nil {
		lg.Printf("report ready: %v", err)
		return 1
	}
	ready.Close()
	m.mu.Lock()
	m.checkIdleLocked()
	m.mu.Unlock()
	go m.serve()
	<-m.stopped
	cancel()
	for _, r := range m.runtimes {
		if r != rt {
			r.Close()
		}
	}
	lg.Print("idle: exiting")
	return 0
}

// serve accepts connections until the listener closes.
func (m *monitor) serve() {
	for {
		nc, err := m.ln.AcceptUnix()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			m.log.Printf("accept: %v", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		m.mu.Lock()
		if m.closing {
			m.mu.Unlock()
			nc.Close() // the client sees EOF and starts a new monitor
			continue
		}
		m.conns++
		m.checkIdleLocked()
		m.mu.Unlock()
		go m.handle(shim.NewConn(nc))
	}
}

// handle serves one connection: the handshake, one request, and for an
// attach the stream.
func (m *monitor) handle(c *shim.Conn) {
	defer func() {
		c.Close()
		m.mu.Lock()
		m.conns--
		m.checkIdleLocked()
		m.mu.Unlock()
	}()
	if _, err := shim.ServerHello(c, shim.Hello{Monitor: m.self}); err != nil {
		if !errors.Is(err, io.EOF) {
			m.log.Printf("handshake: %v", err)
		}
		return
	}
	var req shim.Request
	if err := c.ReadJSON(shim.Control, &req); err != nil {
		return
	}
	var resp shim.Response
	switch req.Op {
	case shim.OpStart:
		ctx, cancel := context.WithCancel(m.ctx)
		// A client that goes away gives up its start.
		go func() {
			var b [1]byte
			if _, err := c.Raw().Read(b[:]); err != nil {
				cancel()
			}
		}()
		err := m.start(ctx, req)
		cancel()
		if err != nil {
			m.log.Printf("start %s: %v", shortOr(req.ID), err)
			resp = shim.ErrorResponse(err)
		}
	case shim.OpAttach:
		m.attach(c, req)
		return
	case shim.OpResize:
		if err := m.resize(req); err != nil {
			resp = shim.ErrorResponse(err)
		}
	case shim.OpStatus:
		m.mu.Lock()
		for id := range m.ctrs {
			resp.Containers = append(resp.Containers, id)
		}
		m.mu.Unlock()
		sort.Strings(resp.Containers)
	case shim.OpShutdown:
		m.mu.Lock()
		busy := len(m.ctrs) > 0 || len(m.pending) > 0 || m.conns > 1
		if !busy {
			m.closing = true
		}
		m.mu.Unlock()
		if busy {
			resp = shim.ErrorResponse(errdefs.New(errdefs.ErrConflict, "the monitor is busy"))
		} else {
			defer m.shutdown()
		}
	default:
		resp = shim.ErrorResponse(errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("unknown monitor request %q", req.Op)))
	}
	_ = c.WriteJSON(shim.Control, resp)
}

// runtimeFor is the store opened with the client's cgroup parent, so that
// the container's cgroup is where that client would have put it.
func (m *monitor) runtimeFor(cgroupParent string) (*Runtime, error) {
	m.mu.Lock()
	r := m.runtimes[cgroupParent]
	m.mu.Unlock()
	if r != nil {
		return r, nil
	}
	r, err := Open(m.ctx, append(m.opts, WithCgroupParent(cgroupParent))...)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if prev := m.runtimes[cgroupParent]; prev != nil {
		r.Close()
		return prev, nil
	}
	m.runtimes[cgroupParent] = r
	return r, nil
}

// start starts container req.ID (created or exited) under the monitor.
func (m *monitor) start(ctx context.Context, req shim.Request) error {
	rt, err := m.runtimeFor(req.CgroupParent)
	if err != nil {
		return err
	}
	lk, err := rt.lockContainer(req.ID)
	if err != nil {
		return err
	}
	defer lk.Unlock()
	st, err := rt.reconcileLocked(ctx, req.ID)
	if err != nil {
		return err
	}
	rec, err := rt.readRecord(req.ID)
	if err != nil {
		return err
	}
	switch st.Status {
	case StatusRunning, StatusPaused, StatusRestarting:
		return nil // docker start of a running container does nothing
	case StatusRemoving, StatusDead:
		return errdefs.New(errdefs.ErrConflict, fmt.Sprintf("container %s is %s", rec.Name, st.Status))
	}
	mc := m.watch(rec.ID)
	if rec.Spec.DieWithCreator && req.Creator.PID > 0 {
		if err := rt.recordCreator(rec, req.Creator); err != nil {
			m.release(mc)
			return err
		}
		m.watchCreator(mc, rt, req.Creator)
	}
	st.RestartCount = 0 // a user's start resets it, as docker's
	if err := m.startLocked(ctx, mc, &Container{rt: rt, rec: rec}, st); err != nil {
		m.release(mc)
		return err
	}
	return nil
}

// watch registers container id as watched (before anything can make the
// monitor idle) and returns its entry.
func (m *monitor) watch(id string) *monitored {
	m.mu.Lock()
	defer m.mu.Unlock()
	mc := m.ctrs[id]
	if mc == nil {
		mc = &monitored{id: id}
		m.ctrs[id] = mc
	}
	m.checkIdleLocked()
	return mc
}

// release stops watching mc unless it still waits for a restart or its
// creator's death.
func (m *monitor) release(mc *monitored) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if mc.creator.PID > 0 || mc.running || mc.restart || m.ctrs[mc.id] != mc {
		return
	}
	delete(m.ctrs, mc.id)
	m.checkIdleLocked()
}

// drop stops watching mc for good (it was removed).
func (m *monitor) drop(mc *monitored) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ctrs[mc.id] == mc {
		delete(m.ctrs, mc.id)
	}
	mc.creator, mc.restart = proc.ID{}, false
	m.checkIdleLocked()
}

// startLocked starts c, mc's container, with the monitor as its parent.
// The caller holds the container lock.
func (m *monitor) startLocked(ctx context.Context, mc *monitored, c *Container, st *containerState) error {
	policy := c.rec.Spec.RestartPolicy
	o := runOptions{
		detach:   true,
		hubReady: func(h *attachHub) { m.hubReady(mc, h) },
		onExit:   func(st *containerState) { m.onExit(mc, policy, st) },
	}
	m.mu.Lock()
	mc.restart = false
	m.mu.Unlock()
	if err := c.startOwned(ctx, o, st); err != nil {
		return err
	}
	oc := c.owned
	m.mu.Lock()
	mc.c, mc.running = c, true
	m.mu.Unlock()
	m.log.Printf("started %s (%s), pid %d", c.rec.Name, shortOr(mc.id), oc.rc.Pid())
	go m.afterExit(mc, oc)
	m.freeMemorySoon()
	return nil
}

// hubReady connects the attaches that waited for this start.
func (m *monitor) hubReady(mc *monitored, h *attachHub) {
	m.mu.Lock()
	mc.hub = h
	waiting := m.pending[mc.id]
	delete(m.pending, mc.id)
	m.mu.Unlock()
	for _, as := range waiting {
		as.connect(h)
	}
}

// onExit decides, as the exit is recorded, whether the container
// restarts: it then shows "restarting" rather than "exited".
func (m *monitor) onExit(mc *monitored, policy RestartPolicy, st *containerState) {
	m.mu.Lock()
	defer m.mu.Unlock()
	mc.restart = shouldRestart(policy, st.ExitCode, st.RestartCount, st.StoppedByUser)
	if !mc.restart {
		return
	}
	mc.delay = mc.backoff.next(st.FinishedAt.Sub(st.StartedAt))
	st.Status = StatusRestarting
	st.RestartCount++
}

// afterExit waits for oc's exit to be recorded, then schedules the
// restart or lets the container go.
func (m *monitor) afterExit(mc *monitored, oc *ownedContainer) {
	<-oc.done
	m.log.Printf("%s exited with %d", shortOr(mc.id), oc.exit)
	m.mu.Lock()
	mc.running = false
	m.mu.Unlock()
	m.next(mc)
}

// next restarts mc's container after its delay when its last exit asked
// for a restart, and lets it go otherwise.
func (m *monitor) next(mc *monitored) {
	m.mu.Lock()
	restart, delay := mc.restart, mc.delay
	m.mu.Unlock()
	if restart {
		time.AfterFunc(delay, func() { m.restartNow(mc) })
		return
	}
	m.release(mc)
}

// restartNow restarts mc's container if it still waits for it (a stop or
// a removal in the meantime cancels the restart).
func (m *monitor) restartNow(mc *monitored) {
	m.mu.Lock()
	r := mc.c.rt
	m.mu.Unlock()
	ctx := m.ctx
	lk, err := r.lockContainer(mc.id)
	if err != nil {
		m.log.Printf("restart %s: %v", shortOr(mc.id), err)
		m.drop(mc)
		return
	}
	defer lk.Unlock()
	st, err := r.readState(mc.id)
	if err != nil || st.Status != StatusRestarting || st.StoppedByUser {
		m.mu.Lock()
		mc.restart = false
		m.mu.Unlock()
		m.release(mc)
		if err != nil {
			m.drop(mc) // removed
		}
		return
	}
	rec, err := r.readRecord(mc.id)
	if err != nil {
		m.drop(mc)
		return
	}
	st.Status = StatusExited // what a failed start leaves
	err = m.startLocked(ctx, mc, &Container{rt: r, rec: rec}, st)
	if err == nil {
		return
	}
	// A start that fails is an exit too: the policy decides again.
	m.log.Printf("restart %s: %v", shortOr(mc.id), err)
	st.FinishedAt = time.Now().UTC()
	m.onExit(mc, rec.Spec.RestartPolicy, st)
	_ = r.writeState(mc.id, st)
	m.next(mc)
}

// resize sets the terminal size of a container the monitor runs.
func (m *monitor) resize(req shim.Request) error {
	m.mu.Lock()
	var c *Container
	if mc := m.ctrs[req.ID]; mc != nil && mc.running {
		c = mc.c
	}
	m.mu.Unlock()
	if c == nil {
		return errdefs.New(errdefs.ErrNotRunning, fmt.Sprintf("container %s is not running under this monitor", shortOr(req.ID)))
	}
	return c.resize(m.ctx, req.Width, req.Height)
}

// checkIdleLocked arms the idle timer when the monitor has nothing to do,
// and disarms it otherwise. The caller holds mu.
func (m *monitor) checkIdleLocked() {
	busy := len(m.ctrs) > 0 || len(m.pending) > 0 || m.conns > 0
	if busy || m.closing {
		if m.idle != nil {
			m.idle.Stop()
			m.idle = nil
		}
		return
	}
	if m.idle == nil {
		m.idle = time.AfterFunc(monitorIdle, m.shutdownIfIdle)
	}
}

func (m *monitor) shutdownIfIdle() {
	m.mu.Lock()
	if m.closing || len(m.ctrs) > 0 || len(m.pending) > 0 || m.conns > 0 {
		m.mu.Unlock()
		return
	}
	m.closing = true
	m.mu.Unlock()
	m.shutdown()
}

// shutdown stops listening and removes the socket (the lock is still
// held, so it is ours), then lets runMonitor return. The caller has set
// closing.
func (m *monitor) shutdown() {
	m.ln.Close()
	_ = os.Remove(m.sock)
	close(m.stopped)
}

// freeMemorySoon returns the memory a burst of starts used to the
// system once the burst is over: the monitor is judged by its resident
// memory per container.
func (m *monitor) freeMemorySoon() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.freeing != nil {
		m.freeing.Reset(time.Second)
		return
	}
	m.freeing = time.AfterFunc(time.Second, debug.FreeOSMemory)
}

// recordCreator notes in the container's record which process it dies
// with, so that a later Open can remove it if the monitor is gone too.
// The caller holds the container lock.
func (r *Runtime) recordCreator(rec *containerRecord, creator proc.ID) error {
	unlock, err := r.store.Lock()
	if err != nil {
		return err
	}
	defer unlock()
	cur, err := r.readRecord(rec.ID)
	if err != nil {
		return err
	}
	if cur.Extra == nil {
		cur.Extra = map[string]string{}
	}
	cur.Extra[extraCreator] = creator.String()
	if err := r.writeRecord(cur); err != nil {
		return err
	}
	*rec = *cur
	return nil
}

// extraCreator is the record's Extra key of a DieWithCreator container's
// creator ("PID.START").
const extraCreator = "monitor.creator"

// creatorOf is the process a DieWithCreator container dies with: the
// recorded creator of a detached one, the owner of a foreground one.
func creatorOf(rec *containerRecord, st *containerState) proc.ID {
	if id, ok := proc.ParseID(rec.Extra[extraCreator]); ok {
		return id
	}
	return st.Owner
}

// watchCreator kills and removes mc's container (in rt) once creator
// exits.
// A later start by another process makes that one the creator.
func (m *monitor) watchCreator(mc *monitored, rt *Runtime, creator proc.ID) {
	m.mu.Lock()
	same := mc.creator == creator
	mc.creator = creator
	m.mu.Unlock()
	if same {
		return
	}
	go func() {
		if err := waitProcessExit(m.ctx, creator); err != nil {
			if m.ctx.Err() == nil {
				m.log.Printf("watch creator %d of %s: %v", creator.PID, shortOr(mc.id), err)
			}
			return
		}
		m.mu.Lock()
		current := mc.creator == creator
		m.mu.Unlock()
		if !current {
			return
		}
		m.log.Printf("creator %d of %s exited: removing it", creator.PID, shortOr(mc.id))
		ctx := context.WithoutCancel(m.ctx)
		c, err := rt.Container(ctx, mc.id)
		if err == nil {
			err = c.Remove(ctx, RemoveForce())
		}
		if err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			m.log.Printf("remove %s: %v", shortOr(mc.id), err)
		}
		m.drop(mc)
	}()
}

// waitProcessExit returns once the process id has exited (nil), or ctx
// ended. It waits on a pidfd in Go's poller, not on a thread.
func waitProcessExit(ctx context.Context, id proc.ID) error {
	fd, err := unix.PidfdOpen(id.PID, unix.O_NONBLOCK)
	if err != nil {
		if errors.Is(err, unix.ESRCH) {
			return nil
		}
		return fmt.Errorf("pidfd %d: %w", id.PID, err)
	}
	f := os.NewFile(uintptr(fd), "pidfd")
	defer f.Close()
	if !id.Alive() { // gone, or the pid was reused before we opened it
		return nil
	}
	raw, err := f.SyscallConn()
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { _ = f.SetReadDeadline(time.Now()) })
	defer stop()
	err = raw.Read(func(fd uintptr) bool {
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, _ := unix.Poll(pfd, 0)
		return n > 0
	})
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}
