package shim

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
)

// The monitor's files in the run root. The lock is held by the running
// monitor for its whole life (a free lock means a dead monitor, and its
// socket is stale); clients take it only to start a monitor.
const (
	socketName = "monitor.sock"
	lockName   = "monitor.lock"
	// LogName is the monitor's own diagnostics log.
	LogName = "monitor.log"
)

// Socket is the path of the store's monitor socket, and Lock the path of
// its lock.
func Socket(runRoot string) string { return filepath.Join(runRoot, socketName) }
func Lock(runRoot string) string   { return filepath.Join(runRoot, lockName) }

// VersionedSocket and VersionedLock are the socket and lock of a monitor
// of this protocol version, used when the store's monitor speaks another
// one (a program built from another berth version runs it).
func VersionedSocket(runRoot string) string {
	return filepath.Join(runRoot, "monitor.v"+strconv.Itoa(Version)+".sock")
}
func VersionedLock(runRoot string) string {
	return filepath.Join(runRoot, "monitor.v"+strconv.Itoa(Version)+".lock")
}

// maxSockPath is the room for a path in a sockaddr_un (with its NUL).
const maxSockPath = 107

// shortPath returns a name for path short enough for a sockaddr_un: path
// itself, or /proc/self/fd/N/<base> through an O_PATH descriptor of its
// directory, which the caller closes with done.
func shortPath(path string) (string, func(), error) {
	if len(path) <= maxSockPath {
		return path, func() {}, nil
	}
	d, err := os.OpenFile(filepath.Dir(path), os.O_RDONLY|0x200000 /* O_PATH */, 0)
	if err != nil {
		return "", nil, err
	}
	p := fmt.Sprintf("/proc/self/fd/%d/%s", d.Fd(), filepath.Base(path))
	if len(p) > maxSockPath {
		d.Close()
		return "", nil, fmt.Errorf("socket path %s: too long", path)
	}
	return p, func() { d.Close() }, nil
}

// Listen listens on the unix socket at path, replacing a stale socket
// file. The caller must hold the monitor lock (so the file is stale).
func Listen(path string) (*net.UnixListener, error) {
	p, done, err := shortPath(path)
	if err != nil {
		return nil, err
	}
	defer done()
	_ = os.Remove(path)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: p, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("monitor socket: %w", err)
	}
	// The file is removed explicitly (only while the lock is held);
	// closing the listener must not remove a successor's socket.
	ln.SetUnlinkOnClose(false)
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

// Dial connects to the monitor socket at path.
func Dial(ctx context.Context, path string) (*Conn, error) {
	p, done, err := shortPath(path)
	if err != nil {
		return nil, err
	}
	defer done()
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", p)
	if err != nil {
		return nil, err
	}
	return NewConn(c), nil
}
