package berth

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/berth-run/berth/internal/errdefs"
	"github.com/berth-run/berth/internal/shim"
)

// attachSession is a client attached through the monitor's socket, or
// waiting for the container's start to be.
type attachSession struct {
	c    *shim.Conn
	id   string
	sink *hubSink

	mu         sync.Mutex // guards the fields below
	hub        *attachHub // nil until connected
	early      []byte     // input sent before the start, for the container once it runs
	closeEarly bool       // the input ended before the start
	failed     bool
}

// maxEarlyInput bounds the input a client may send before the container
// starts.
const maxEarlyInput = 1 << 20

// attach serves an attach request: it answers, then streams the
// container's output to the client and the client's input to the
// container until the container's output ends or the client leaves.
func (m *monitor) attach(c *shim.Conn, req shim.Request) {
	as := &attachSession{c: c, id: req.ID}
	as.sink = newHubSink(req.Stdout, req.Stderr, func(stream string, p []byte) error {
		t := shim.Stdout
		if stream == "stderr" {
			t = shim.Stderr
		}
		return c.WriteData(t, p)
	}, func(exit int, err error) {
		e := shim.Exit{ExitCode: exit}
		if err != nil {
			e.Error = err.Error()
		}
		_ = c.WriteJSON(shim.End, e)
		_ = c.CloseWrite()
		// The client closes when it has read the end; one that does
		// not is not waited for long.
		_ = c.Raw().SetReadDeadline(time.Now().Add(10 * time.Second))
	})
	hub, err := m.attachTarget(as)
	if err != nil {
		_ = c.WriteJSON(shim.Control, shim.ErrorResponse(err))
		as.sink.end(-1, err)
		return
	}
	if err := c.WriteJSON(shim.Control, shim.Response{}); err != nil {
		m.unpend(as)
		as.sink.end(-1, err)
		return
	}
	if hub != nil {
		as.connect(hub)
	}
	for {
		typ, p, err := c.ReadFrame()
		if err != nil {
			break
		}
		switch typ {
		case shim.Stdin:
			as.input(p, false)
		case shim.CloseStdin:
			as.input(nil, true)
		}
	}
	// The client left: detached, or done after the end.
	m.unpend(as)
	as.mu.Lock()
	h := as.hub
	as.mu.Unlock()
	if h != nil {
		h.remove(as.sink)
	}
	as.sink.end(-1, ErrDetached)
}

// attachTarget finds what as attaches to: the hub of the running
// container, or (nil) a place among the attaches waiting for its start.
func (m *monitor) attachTarget(as *attachSession) (*attachHub, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	mc := m.ctrs[as.id]
	if mc != nil && mc.hub != nil && !mc.hub.isClosed() {
		return mc.hub, nil
	}
	st, err := m.rt.readState(as.id)
	if err != nil {
		return nil, err
	}
	switch st.Status {
	case StatusRunning, StatusPaused:
		if st.Owner != m.self {
			return nil, errdefs.New(errdefs.ErrConflict, fmt.Sprintf("container %s is run by another process (pid %d)", shortOr(as.id), st.Owner.PID))
		}
	case StatusRestarting:
		if mc == nil {
			return nil, errdefs.New(errdefs.ErrConflict, fmt.Sprintf("container %s is restarted by another monitor (pid %d)", shortOr(as.id), st.Owner.PID))
		}
	case StatusCreated, StatusExited:
	default:
		return nil, errdefs.New(errdefs.ErrConflict, fmt.Sprintf("container %s is %s", shortOr(as.id), st.Status))
	}
	m.pending[as.id] = append(m.pending[as.id], as)
	m.scheduleSweepLocked()
	return nil, nil
}

// connect attaches as to h. It never blocks (it runs inside the start):
// input sent before it is passed on by a goroutine.
func (as *attachSession) connect(h *attachHub) {
	as.mu.Lock()
	as.hub = h
	early := len(as.early) > 0 || as.closeEarly
	as.mu.Unlock()
	h.add(as.sink)
	if early {
		go as.input(nil, false)
	}
}

// fail ends a waiting session.
func (as *attachSession) fail(err error) {
	as.mu.Lock()
	as.failed, as.early = true, nil
	as.mu.Unlock()
	as.sink.end(-1, err)
}

// input passes p (and, with end, the end of the input) to the container,
// after what came before the start; before the start it keeps it.
func (as *attachSession) input(p []byte, end bool) {
	as.mu.Lock()
	defer as.mu.Unlock()
	if as.failed {
		return
	}
	if as.hub == nil {
		if len(as.early)+len(p) <= maxEarlyInput {
			as.early = append(as.early, p...)
		}
		as.closeEarly = as.closeEarly || end
		return
	}
	if len(as.early) > 0 {
		_, _ = hubStdin{as.hub}.Write(as.early)
		as.early = nil
	}
	if len(p) > 0 {
		_, _ = hubStdin{as.hub}.Write(p)
	}
	if end || as.closeEarly {
		as.closeEarly = false
		as.hub.closeStdin()
	}
}

// unpend removes as from the waiting attaches.
func (m *monitor) unpend(as *attachSession) {
	m.mu.Lock()
	defer m.mu.Unlock()
	list := m.pending[as.id]
	for i, x := range list {
		if x == as {
			list = append(list[:i:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(m.pending, as.id)
	} else {
		m.pending[as.id] = list
	}
	m.checkIdleLocked()
}

// scheduleSweepLocked arranges for sweepPending to run while attaches
// wait. The caller holds mu.
func (m *monitor) scheduleSweepLocked() {
	if m.sweeping || len(m.pending) == 0 {
		return
	}
	m.sweeping = true
	time.AfterFunc(time.Second, m.sweepPending)
}

// sweepPending fails the attaches that wait for a start that will not
// come from this monitor: the container was removed, or another process
// started it.
func (m *monitor) sweepPending() {
	m.mu.Lock()
	m.sweeping = false
	var failed []*attachSession
	var why []error
	for id, list := range m.pending {
		st, err := m.rt.readState(id)
		switch {
		case errors.Is(err, errdefs.ErrNotFound):
			err = errdefs.New(errdefs.ErrNotFound, "no such container: "+id)
		case err == nil && (st.Status == StatusRunning || st.Status == StatusPaused) && st.Owner != m.self:
			err = errdefs.New(errdefs.ErrConflict, fmt.Sprintf("container %s was started by another process (pid %d), not by the monitor", shortOr(id), st.Owner.PID))
		default:
			continue
		}
		for _, as := range list {
			failed = append(failed, as)
			why = append(why, err)
		}
		delete(m.pending, id)
	}
	m.scheduleSweepLocked()
	m.checkIdleLocked()
	m.mu.Unlock()
	for i, as := range failed {
		as.fail(why[i])
	}
}
