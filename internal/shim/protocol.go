// Package shim is the wire protocol between berth processes and the
// monitor of detached containers: framing on the monitor's unix socket,
// the handshake with its protocol version, the requests and the attach
// stream format. The monitor itself (a re-exec of the calling program,
// which starts and reaps the containers it owns) lives in the root
// package, because it runs the root package's container lifecycle; this
// package holds everything that both ends must agree on.
//
// A connection carries frames: one type byte, a 4-byte big-endian payload
// length, the payload (at most MaxFrame bytes). The first frame each way is
// a Control frame holding a Hello; the client then sends one Request and
// the monitor one Response. An attach request turns the connection into an
// attach stream: Stdout/Stderr frames from the monitor, Stdin/CloseStdin
// frames from the client, and a final End frame when the container's
// output has ended.
//
// The Hello's layout never changes: a client that meets a monitor of
// another protocol Version can tell, and uses a monitor of its own
// version at VersionedSocket instead.
package shim

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"

	"github.com/berth-run/berth/internal/errdefs"
	"github.com/berth-run/berth/internal/proc"
)

// Version is the protocol version this build speaks. Change it with any
// incompatible change of the frames, requests or responses.
const Version = 1

// FrameType says what a frame carries.
type FrameType byte

// The frame types.
const (
	// Control frames hold a JSON Hello, Request or Response.
	Control FrameType = 'c'
	// Stdin carries bytes for the container's standard input (client to
	// monitor).
	Stdin FrameType = '0'
	// Stdout and Stderr carry the container's output (monitor to client).
	// A container with a terminal has only Stdout.
	Stdout FrameType = '1'
	Stderr FrameType = '2'
	// CloseStdin asks the monitor to close the container's standard input
	// (the attached input ended and the client asked for StdinOnce).
	CloseStdin FrameType = 'e'
	// End ends an attach stream: the container's output is over. Its
	// payload is a JSON Exit.
	End FrameType = 'x'
)

// MaxFrame bounds a frame's payload.
const MaxFrame = 1 << 20

// Hello opens a connection, both ways.
type Hello struct {
	// Proto is the sender's protocol Version.
	Proto int `json:"proto"`
	// Monitor is the monitor's process identity (monitor to client only).
	Monitor proc.ID `json:"monitor"`
}

// The requests' operations.
const (
	// OpStart starts a created or exited container under the monitor and
	// answers once its process runs.
	OpStart = "start"
	// OpAttach attaches the connection to a container's streams. A
	// container the monitor does not run yet is attached as soon as the
	// monitor starts it (attach first, then start: no output is missed).
	OpAttach = "attach"
	// OpResize sets the size of a container's terminal.
	OpResize = "resize"
	// OpStatus reports the monitor's pid and the containers it watches.
	OpStatus = "status"
	// OpShutdown makes an idle monitor exit now; a busy one refuses with a
	// conflict.
	OpShutdown = "shutdown"
)

// Request is the client's one request on a connection.
type Request struct {
	Op string `json:"op"`
	// ID is the container's full ID.
	ID string `json:"id,omitempty"`
	// CgroupParent is the client runtime's default cgroup parent (start).
	CgroupParent string `json:"cgroupParent,omitempty"`
	// Creator is the process that starts the container; a container with
	// DieWithCreator is killed and removed when it exits (start).
	Creator proc.ID `json:"creator,omitempty"`
	// Stdin, Stdout and Stderr select the streams to attach (attach).
	Stdin  bool `json:"stdin,omitempty"`
	Stdout bool `json:"stdout,omitempty"`
	Stderr bool `json:"stderr,omitempty"`
	// CloseStdin closes the container's input when this client's input
	// ends (docker's StdinOnce) (attach).
	CloseStdin bool `json:"closeStdin,omitempty"`
	// Width and Height are the terminal's size (resize).
	Width  uint16 `json:"width,omitempty"`
	Height uint16 `json:"height,omitempty"`
}

// Response answers a Request.
type Response struct {
	// Error is the failure's text; Kind its errdefs kind ("not found",
	// "conflict", ...), empty for none.
	Error string `json:"error,omitempty"`
	Kind  string `json:"kind,omitempty"`
	// Containers are the IDs the monitor watches (status).
	Containers []string `json:"containers,omitempty"`
}

// Exit is the payload of an End frame.
type Exit struct {
	// ExitCode is the container's exit code, or -1 when the stream ended
	// for another reason (the monitor is shutting down, the client was
	// too slow).
	ExitCode int    `json:"exitCode"`
	Error    string `json:"error,omitempty"`
}

var kinds = []error{errdefs.ErrNotFound, errdefs.ErrConflict, errdefs.ErrInvalid, errdefs.ErrNotRunning,
	errdefs.ErrNotSupported, errdefs.ErrCorrupt, errdefs.ErrUnauthorized}

// ErrorResponse is the Response that reports err, keeping its kind.
func ErrorResponse(err error) Response {
	r := Response{Error: err.Error()}
	for _, k := range kinds {
		if errors.Is(err, k) {
			r.Kind = k.Error()
			break
		}
	}
	return r
}

// Err is the response's error (nil for success), of its kind.
func (r *Response) Err() error {
	if r.Error == "" {
		return nil
	}
	for _, k := range kinds {
		if r.Kind == k.Error() {
			return errdefs.New(k, r.Error)
		}
	}
	return errors.New(r.Error)
}

// Conn is one end of a monitor connection. Writes are safe from several
// goroutines; reads are for one goroutine.
type Conn struct {
	c   net.Conn
	r   *bufio.Reader
	buf []byte

	wmu sync.Mutex // serialises frames
	hdr [5]byte    // guarded by wmu
}

// NewConn wraps a connected socket.
func NewConn(c net.Conn) *Conn { return &Conn{c: c, r: bufio.NewReaderSize(c, 32<<10)} }

// WriteFrame sends one frame.
func (c *Conn) WriteFrame(t FrameType, p []byte) error {
	if len(p) > MaxFrame {
		return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("frame of %d bytes exceeds %d", len(p), MaxFrame))
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.hdr[0] = byte(t)
	binary.BigEndian.PutUint32(c.hdr[1:], uint32(len(p)))
	if _, err := c.c.Write(c.hdr[:]); err != nil {
		return err
	}
	if len(p) == 0 {
		return nil
	}
	_, err := c.c.Write(p)
	return err
}

// WriteData sends p as frames of type t, split at MaxFrame.
func (c *Conn) WriteData(t FrameType, p []byte) error {
	for len(p) > 0 {
		n := min(len(p), MaxFrame)
		if err := c.WriteFrame(t, p[:n]); err != nil {
			return err
		}
		p = p[n:]
	}
	return nil
}

// WriteJSON sends v as a frame of type t.
func (c *Conn) WriteJSON(t FrameType, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return c.WriteFrame(t, b)
}

// ReadFrame reads the next frame. The payload is valid until the next
// ReadFrame.
func (c *Conn) ReadFrame() (FrameType, []byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(c.r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if n > MaxFrame {
		return 0, nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("frame of %d bytes exceeds %d", n, MaxFrame))
	}
	if cap(c.buf) < int(n) {
		c.buf = make([]byte, n)
	}
	p := c.buf[:n]
	if _, err := io.ReadFull(c.r, p); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, err
	}
	return FrameType(hdr[0]), p, nil
}

// ReadJSON reads a frame of type t into v.
func (c *Conn) ReadJSON(t FrameType, v any) error {
	ft, p, err := c.ReadFrame()
	if err != nil {
		return err
	}
	if ft != t {
		return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("monitor protocol: expected frame %q, got %q", t, ft))
	}
	if err := json.Unmarshal(p, v); err != nil {
		return errdefs.Wrap(errdefs.ErrInvalid, "monitor protocol", err)
	}
	return nil
}

// CloseWrite shuts down the sending side: the peer reads EOF.
func (c *Conn) CloseWrite() error {
	if uc, ok := c.c.(*net.UnixConn); ok {
		return uc.CloseWrite()
	}
	return nil
}

// Close closes the connection.
func (c *Conn) Close() error { return c.c.Close() }

// Raw is the underlying connection (for deadlines).
func (c *Conn) Raw() net.Conn { return c.c }

// ErrVersion is returned by ClientHello for a monitor of another protocol
// version.
var ErrVersion = errors.New("monitor speaks another protocol version")

// ClientHello does the client's side of the handshake and returns the
// monitor's Hello. A monitor of another version gives an error matching
// ErrVersion (with its Hello).
func ClientHello(c *Conn) (Hello, error) {
	if err := c.WriteJSON(Control, Hello{Proto: Version}); err != nil {
		return Hello{}, err
	}
	var h Hello
	if err := c.ReadJSON(Control, &h); err != nil {
		return Hello{}, err
	}
	if h.Proto != Version {
		return h, fmt.Errorf("monitor %d: protocol %d, this program speaks %d: %w", h.Monitor.PID, h.Proto, Version, ErrVersion)
	}
	return h, nil
}

// ServerHello does the monitor's side of the handshake: it reads the
// client's Hello and answers with self. A client of another version gets
// the answer (so it can tell) and an error matching ErrVersion.
func ServerHello(c *Conn, self Hello) (Hello, error) {
	var h Hello
	if err := c.ReadJSON(Control, &h); err != nil {
		return h, err
	}
	self.Proto = Version
	if err := c.WriteJSON(Control, self); err != nil {
		return h, err
	}
	if h.Proto != Version {
		return h, fmt.Errorf("client protocol %d: %w", h.Proto, ErrVersion)
	}
	return h, nil
}
