package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"

	"github.com/berth-run/berth/internal/errdefs"
)

// The parent and the init (or exec) stage talk over a SOCK_SEQPACKET
// socketpair: one JSON message per packet, file descriptors (the pty
// master) as SCM_RIGHTS on a message of their own.
//
//	parent -> child   config              the whole stage configuration
//	child  -> parent  hooks               mounts are done: run prestart/createRuntime
//	parent -> child   hooksDone           (or error)
//	child  -> parent  console + fd        the pty master
//	child  -> parent  ready               blocked before execve (OCI "created")
//	child  -> parent  error               setup failed; the child exits
//
// The child's end is close-on-exec: after a successful execve the parent
// reads EOF, which is how an in-process Start learns the exec happened.

// msgType names a message.
type msgType string

const (
	msgConfig    msgType = "config"
	msgHooks     msgType = "hooks"
	msgHooksDone msgType = "hooksDone"
	msgConsole   msgType = "console"
	msgReady     msgType = "ready"
	msgError     msgType = "error"
)

// message is one packet.
type message struct {
	Type msgType `json:"type"`
	// Error is the failure text of msgError; Errno and Kind keep it
	// matchable on the parent's side.
	Error string `json:"error,omitempty"`
	Errno int    `json:"errno,omitempty"`
	Kind  string `json:"kind,omitempty"`
	// Config is the payload of msgConfig.
	Config *stageConfig `json:"config,omitempty"`
}

// maxPacket bounds one packet; the config of a container with a large
// seccomp profile is a few tens of KiB.
const maxPacket = 4 << 20

type syncSocket struct {
	f   *os.File
	buf []byte
}

func newSyncSocket(f *os.File) *syncSocket { return &syncSocket{f: f} }

func (s *syncSocket) fd() int { return int(s.f.Fd()) }

func (s *syncSocket) send(m *message) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if len(b) > 200<<10 {
		// Room for the packet in the socket buffer (root only; a failure
		// shows up as EMSGSIZE below).
		_ = unix.SetsockoptInt(s.fd(), unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, len(b)+4096)
	}
	for {
		_, err = unix.Write(s.fd(), b)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("send %s: %w", m.Type, err)
	}
	return nil
}

func (s *syncSocket) sendFd(t msgType, fd int) error {
	b, _ := json.Marshal(&message{Type: t})
	oob := unix.UnixRights(fd)
	for {
		err := unix.Sendmsg(s.fd(), b, oob, nil, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("send %s: %w", t, err)
		}
		return nil
	}
}

// recv reads one message; io.EOF when the peer closed its end. A received
// fd is returned as a file (nil when none came).
func (s *syncSocket) recv() (*message, *os.File, error) {
	if s.buf == nil {
		s.buf = make([]byte, 64<<10)
	}
	oob := make([]byte, unix.CmsgSpace(4*4))
	for {
		// A SEQPACKET read drops what does not fit: peek at the packet's
		// size first (a config with a large environment is over 64 KiB).
		size, _, _, _, err := unix.Recvmsg(s.fd(), s.buf[:1], nil, unix.MSG_PEEK|unix.MSG_TRUNC)
		if err == unix.EINTR {
			continue
		}
		if err == nil && size > len(s.buf) && size <= maxPacket {
			s.buf = make([]byte, size)
		}
		n, oobn, flags, _, err := unix.Recvmsg(s.fd(), s.buf, oob, unix.MSG_CMSG_CLOEXEC)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			if errors.Is(err, unix.ECONNRESET) {
				return nil, nil, io.EOF
			}
			return nil, nil, err
		}
		if flags&unix.MSG_TRUNC != 0 {
			if len(s.buf) >= maxPacket {
				return nil, nil, errors.New("sync message too large")
			}
			// SEQPACKET drops the rest of a truncated packet; the
			// sender sizes its packets to fit, so this is a bug.
			return nil, nil, errors.New("sync message truncated")
		}
		if n == 0 && oobn == 0 {
			return nil, nil, io.EOF
		}
		var file *os.File
		if oobn > 0 {
			cmsgs, err := unix.ParseSocketControlMessage(oob[:oobn])
			if err == nil {
				for _, c := range cmsgs {
					fds, err := unix.ParseUnixRights(&c)
					if err != nil {
						continue
					}
					for i, fd := range fds {
						if i == 0 && file == nil {
							file = os.NewFile(uintptr(fd), "console")
						} else {
							unix.Close(fd)
						}
					}
				}
			}
		}
		m := &message{}
		if err := json.Unmarshal(s.buf[:n], m); err != nil {
			if file != nil {
				file.Close()
			}
			return nil, nil, fmt.Errorf("bad sync message: %w", err)
		}
		return m, file, nil
	}
}

func (s *syncSocket) close() error { return s.f.Close() }

// errorMessage turns a stage error into a message that keeps its kind and
// errno.
func errorMessage(err error) *message {
	m := &message{Type: msgError, Error: err.Error()}
	var errno unix.Errno
	if errors.As(err, &errno) {
		m.Errno = int(errno)
	}
	for _, k := range []struct {
		name string
		kind error
	}{{"notfound", errdefs.ErrNotFound}, {"invalid", errdefs.ErrInvalid}, {"notsupported", errdefs.ErrNotSupported}} {
		if errors.Is(err, k.kind) {
			m.Kind = k.name
			break
		}
	}
	return m
}

// stageError is an error reported by the init or exec stage. Errno is the
// kernel's error when there was one (errors.Is matches it), so callers can
// map ENOENT to 127 and EACCES to 126 as docker does.
type stageError struct {
	msg   string
	kind  error
	errno unix.Errno
}

func (e *stageError) Error() string { return e.msg }

func (e *stageError) Unwrap() []error {
	var errs []error
	if e.kind != nil {
		errs = append(errs, e.kind)
	}
	if e.errno != 0 {
		errs = append(errs, e.errno)
	}
	return errs
}

func (m *message) err() error {
	e := &stageError{msg: m.Error, errno: unix.Errno(m.Errno)}
	switch m.Kind {
	case "notfound":
		e.kind = errdefs.ErrNotFound
	case "invalid":
		e.kind = errdefs.ErrInvalid
	case "notsupported":
		e.kind = errdefs.ErrNotSupported
	}
	return e
}
