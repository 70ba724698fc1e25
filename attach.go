package berth

import (
	"context"
	"errors"
	"io"
	"sync"

	"github.com/berth-run/berth/internal/errdefs"
	"github.com/berth-run/berth/internal/shim"
)

// AttachOptions select what Attach connects, as the flags of `docker
// attach`.
type AttachOptions struct {
	// Stdin, when not nil, is copied to the container's standard input.
	// It is ignored for a container created without OpenStdin (docker
	// does the same).
	Stdin io.Reader
	// Stdout and Stderr receive the container's output from now on; nil
	// leaves that stream unattached. A container with a terminal writes
	// everything to Stdout.
	Stdout, Stderr io.Writer
	// DetachKeys is the key sequence that, read from Stdin, ends the
	// attachment and leaves the container running, in docker's syntax.
	// Default: "ctrl-p,ctrl-q".
	DetachKeys string
	// CloseStdin closes the container's standard input when Stdin ends
	// (docker's StdinOnce, which `docker run -i` sets). Default: the
	// input stays open for later attachments.
	CloseStdin bool
	// Logs first writes the container's log so far (docker attach
	// --logs). Default: only output from now on.
	Logs bool
}

// ErrDetached is what Attachment.Wait returns when the attachment ended
// by the detach keys or Close: the container keeps running. Its text is
// docker's "read escape sequence".
var ErrDetached = shim.ErrDetached

// Attachment is a connection to a container's standard streams, made by
// Attach.
type Attachment struct {
	done    chan struct{}
	once    sync.Once
	err     error // valid after done
	exit    int   // valid after done
	closeFn func()
}

func newAttachment(closeFn func()) *Attachment {
	return &Attachment{done: make(chan struct{}), exit: -1, closeFn: closeFn}
}

// finish ends the attachment once, with the container's exit code or an
// error.
func (a *Attachment) finish(exit int, err error) {
	a.once.Do(func() {
		a.exit, a.err = exit, err
		close(a.done)
	})
}

// Wait blocks until the attachment ends: nil once the container's output
// has ended (it stopped; ExitCode has its exit code), ErrDetached when the
// detach keys were read or Close was called, or the error that broke the
// connection. ctx bounds the wait only.
func (a *Attachment) Wait(ctx context.Context) error {
	select {
	case <-a.done:
		return a.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Done is closed when the attachment has ended.
func (a *Attachment) Done() <-chan struct{} { return a.done }

// ExitCode is the container's exit code once Wait returned nil, and -1
// otherwise.
func (a *Attachment) ExitCode() int {
	select {
	case <-a.done:
		if a.err == nil {
			return a.exit
		}
	default:
	}
	return -1
}

// Close detaches: the streams are disconnected and the container keeps
// running.
func (a *Attachment) Close() error {
	a.finish(-1, ErrDetached)
	if a.closeFn != nil {
		a.closeFn()
	}
	return nil
}

// Attach connects to the container's standard streams, as `docker
// attach`. It works for a container run by the monitor (started with
// WithDetach) from any process, and for one this process runs through
// the handle that started it. Attaching to a container that is not
// running yet waits for it to be started with WithDetach — attach first,
// then start, is how `docker run -it` sees all of a container's output.
// ctx bounds the setting up; the attachment lasts until Wait returns.
func (c *Container) Attach(ctx context.Context, opts AttachOptions) (*Attachment, error) {
	keys, err := shim.ParseDetachKeys(opts.DetachKeys)
	if err != nil {
		return nil, err
	}
	if !c.rec.Spec.OpenStdin {
		opts.Stdin = nil
	}
	if opts.Logs {
		lo := LogsOptions{Stdout: opts.Stdout, Stderr: opts.Stderr}
		if err := c.Logs(ctx, lo); err != nil && !errors.Is(err, errdefs.ErrNotSupported) {
			return nil, err
		}
	}
	return c.attach(ctx, opts, keys)
}

// attachHub is a running container's attach point in the process that
// runs it: it fans the container's output out to the attached clients
// (and the writers given at start) and feeds their input to the
// container's standard input.
type attachHub struct {
	primaryOut, primaryErr io.Writer // WithStdout/WithStderr of the start; written synchronously

	mu      sync.Mutex // guards the fields below
	sinks   map[*hubSink]struct{}
	stdin   *io.PipeWriter // nil: the container's input is not open
	resize  func(width, height uint16) error
	closed  bool
	exit    int
	exitErr error
}

// newAttachHub makes the hub of a container being started with o, and
// routes o's streams through it: the container's stdin becomes a pipe the
// hub writes (kept open when openStdin, docker -i), its output goes to the
// hub.
func newAttachHub(openStdin bool, o *runOptions) *attachHub {
	h := &attachHub{primaryOut: o.stdout, primaryErr: o.stderr, sinks: map[*hubSink]struct{}{}}
	o.stdout, o.stderr = hubWriter{h, "stdout"}, hubWriter{h, "stderr"}
	if openStdin || o.stdin != nil {
		pr, pw := io.Pipe()
		h.stdin = pw
		if in := o.stdin; in != nil {
			// The start's own input: the container's input closes
			// when it ends (as before attach existed).
			go func() {
				_, _ = io.Copy(hubStdin{h}, in)
				h.closeStdin()
			}()
		}
		o.stdin = pr
	}
	return h
}

// hubWriter is one output stream of the container, as the pump writes it.
type hubWriter struct {
	h      *attachHub
	stream string
}

func (w hubWriter) Write(p []byte) (int, error) {
	h := w.h
	primary := h.primaryOut
	if w.stream == "stderr" {
		primary = h.primaryErr
	}
	if primary != nil {
		_, _ = primary.Write(p)
	}
	h.mu.Lock()
	for s := range h.sinks {
		if !s.send(w.stream, p) {
			delete(h.sinks, s)
			s.end(-1, errdefs.New(errdefs.ErrConflict, "attach: the client did not keep up with the container's output"))
		}
	}
	h.mu.Unlock()
	return len(p), nil
}

// hubStdin writes to the container's input.
type hubStdin struct{ h *attachHub }

func (w hubStdin) Write(p []byte) (int, error) {
	w.h.mu.Lock()
	pw := w.h.stdin
	w.h.mu.Unlock()
	if pw == nil {
		return 0, io.ErrClosedPipe
	}
	return pw.Write(p)
}

// closeStdin closes the container's input (it reads EOF).
func (h *attachHub) closeStdin() {
	h.mu.Lock()
	pw := h.stdin
	h.stdin = nil
	h.mu.Unlock()
	if pw != nil {
		pw.Close()
	}
}

// setResize sets how the container's terminal is resized.
func (h *attachHub) setResize(fn func(width, height uint16) error) {
	h.mu.Lock()
	h.resize = fn
	h.mu.Unlock()
}

// isClosed reports whether the container's output has ended.
func (h *attachHub) isClosed() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.closed
}

// add attaches s. A hub that has closed ends s at once.
func (h *attachHub) add(s *hubSink) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		s.end(h.exit, h.exitErr)
		return
	}
	h.sinks[s] = struct{}{}
}

// remove detaches s (without ending it).
func (h *attachHub) remove(s *hubSink) {
	h.mu.Lock()
	delete(h.sinks, s)
	h.mu.Unlock()
}

// close ends every attachment once the container's output is over: with
// its exit code, or with err when it did not start.
func (h *attachHub) close(exit int, err error) {
	h.mu.Lock()
	h.closed, h.exit, h.exitErr = true, exit, err
	sinks := h.sinks
	h.sinks = map[*hubSink]struct{}{}
	pw := h.stdin
	h.stdin = nil
	h.mu.Unlock()
	if pw != nil {
		pw.Close()
	}
	for s := range sinks {
		s.end(exit, err)
	}
}

// hubSink is one attached client's output queue: the hub never blocks
// on a client; one that falls hubQueue chunks behind is disconnected.
type hubSink struct {
	stdout, stderr bool
	q              chan sinkChunk
	once           sync.Once
	exit           int   // set before q closes
	err            error // set before q closes
}

type sinkChunk struct {
	stream string
	p      []byte
}

const hubQueue = 256

// newHubSink makes a sink and its goroutine, which calls out for every
// chunk and then end with the exit code (or error) that ended the sink.
// An error from out stops the forwarding; the hub drops the sink later.
func newHubSink(stdout, stderr bool, out func(stream string, p []byte) error, end func(exit int, err error)) *hubSink {
	s := &hubSink{stdout: stdout, stderr: stderr, q: make(chan sinkChunk, hubQueue)}
	go func() {
		var failed error
		for c := range s.q {
			if failed == nil {
				failed = out(c.stream, c.p)
			}
		}
		if failed != nil {
			end(-1, failed)
			return
		}
		end(s.exit, s.err)
	}()
	return s
}

// send queues p; false when the client is too far behind.
func (s *hubSink) send(stream string, p []byte) bool {
	if stream == "stdout" && !s.stdout || stream == "stderr" && !s.stderr {
		return true
	}
	select {
	case s.q <- sinkChunk{stream, append([]byte(nil), p...)}:
		return true
	default:
		return false
	}
}

// end closes the queue: the goroutine forwards what is queued, then ends.
func (s *hubSink) end(exit int, err error) {
	s.once.Do(func() {
		s.exit, s.err = exit, err
		close(s.q)
	})
}
