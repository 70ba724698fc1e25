package berth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/berth-run/berth/internal/errdefs"
	"github.com/berth-run/berth/internal/proc"
	"github.com/berth-run/berth/internal/shim"
)

func (c *Container) attach(ctx context.Context, o AttachOptions, keys []byte) (*Attachment, error) {
	if oc := c.owned; oc != nil && !oc.hub.isClosed() {
		return attachLocal(oc.hub, o, keys), nil
	}
	st, err := c.rt.reconcile(ctx, c.rec.ID)
	if err != nil {
		return nil, err
	}
	var owner *proc.ID
	switch st.Status {
	case StatusRunning, StatusPaused, StatusRestarting:
		if !st.Detached {
			return nil, errdefs.New(errdefs.ErrNotSupported, fmt.Sprintf("attach: container %s runs in the foreground of process %d, whose handle alone can attach; start it with WithDetach to attach from anywhere", c.rec.Name, st.Owner.PID))
		}
		owner = &st.Owner
	case StatusCreated, StatusExited:
		// Waits at the monitor for a start with WithDetach.
	default:
		return nil, errdefs.New(errdefs.ErrConflict, fmt.Sprintf("attach: container %s is %s", c.rec.Name, st.Status))
	}
	return c.attachRemote(ctx, owner, o, keys)
}

// attachLocal attaches to a container this process runs.
func attachLocal(h *attachHub, o AttachOptions, keys []byte) *Attachment {
	var sink *hubSink
	a := newAttachment(func() {
		h.remove(sink)
		sink.end(-1, ErrDetached)
	})
	sink = newHubSink(o.Stdout != nil, o.Stderr != nil, func(stream string, p []byte) error {
		w := o.Stdout
		if stream == "stderr" {
			w = o.Stderr
		}
		_, err := w.Write(p)
		return err
	}, a.finishExit)
	h.add(sink)
	if o.Stdin != nil {
		go func() {
			_, err := io.Copy(hubStdin{h}, shim.NewEscapeProxy(o.Stdin, keys))
			switch {
			case errors.Is(err, ErrDetached):
				a.Close()
			case err == nil && o.CloseStdin:
				h.closeStdin()
			}
		}()
	}
	return a
}

// finishExit ends the attachment as its stream ended: with the exit
// code, or the error.
func (a *Attachment) finishExit(exit int, err error) {
	if err != nil {
		a.finish(-1, err)
		return
	}
	a.finish(exit, nil)
}

// attachRemote attaches through the monitor's socket: to the monitor
// that is owner, or (nil) to the store's monitor, which will start the
// container.
func (c *Container) attachRemote(ctx context.Context, owner *proc.ID, o AttachOptions, keys []byte) (*Attachment, error) {
	conn, err := c.rt.dialMonitor(ctx, owner)
	if err != nil {
		return nil, fmt.Errorf("attach %s: %w", c.rec.Name, err)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	req := shim.Request{Op: shim.OpAttach, ID: c.rec.ID, Stdin: o.Stdin != nil, Stdout: o.Stdout != nil,
		Stderr: o.Stderr != nil, CloseStdin: o.CloseStdin}
	var resp shim.Response
	err = conn.WriteJSON(shim.Control, req)
	if err == nil {
		err = conn.ReadJSON(shim.Control, &resp)
	}
	if err == nil {
		err = resp.Err()
	}
	if !stop() || err != nil {
		conn.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("attach %s: %w", c.rec.Name, err)
	}
	a := newAttachment(func() { conn.Close() })
	go func() {
		for {
			typ, p, err := conn.ReadFrame()
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					err = ErrDetached // Close
				}
				a.finish(-1, err)
				conn.Close()
				return
			}
			var w io.Writer
			switch typ {
			case shim.Stdout:
				w = o.Stdout
			case shim.Stderr:
				w = o.Stderr
			case shim.End:
				var e shim.Exit
				_ = json.Unmarshal(p, &e)
				if e.Error != "" {
					a.finish(-1, errors.New(e.Error))
				} else {
					a.finish(e.ExitCode, nil)
				}
				conn.Close()
				return
			}
			if w != nil {
				_, _ = w.Write(p)
			}
		}
	}()
	if o.Stdin != nil {
		go func() {
			in := shim.NewEscapeProxy(o.Stdin, keys)
			buf := make([]byte, 32<<10)
			for {
				n, err := in.Read(buf)
				if n > 0 {
					if conn.WriteData(shim.Stdin, buf[:n]) != nil {
						return
					}
				}
				if errors.Is(err, ErrDetached) {
					a.Close()
					return
				}
				if err != nil {
					if o.CloseStdin {
						_ = conn.WriteFrame(shim.CloseStdin, nil)
					}
					return
				}
			}
		}()
	}
	return a, nil
}
