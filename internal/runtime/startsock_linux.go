package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/berth-run/berth/internal/errdefs"
)

// The created init waits on a listening unix socket, exec.sock in the
// state directory (the OCI "created" state is: the init is alive and the
// socket exists). Start, from any process, connects, sends one byte and
// removes the socket file; the init accepts, and keeps the connection
// open, close-on-exec, until its execve: the starter reads EOF once the
// process runs, or the error that stopped it. Poststart hooks therefore
// run after the process started, as the spec asks.

const startSockFile = "exec.sock"

// sockAddr names path in a sockaddr_un, through a /proc/self/fd path of
// its directory when path is too long for sun_path. The returned func
// releases the directory fd.
func sockAddr(path string) (*unix.SockaddrUnix, func(), error) {
	if len(path) < 100 {
		return &unix.SockaddrUnix{Name: path}, func() {}, nil
	}
	dir, err := unix.Open(filepath.Dir(path), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	return &unix.SockaddrUnix{Name: fdPath(dir) + "/" + filepath.Base(path)}, func() { unix.Close(dir) }, nil
}

// listenStart makes the listening start socket for the init.
func listenStart(stateDir string) (*os.File, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("start socket: %w", err)
	}
	addr, done, err := sockAddr(filepath.Join(stateDir, startSockFile))
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	defer done()
	if err := unix.Bind(fd, addr); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bind start socket: %w", err)
	}
	if err := unix.Listen(fd, 8); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("listen on start socket: %w", err)
	}
	return os.NewFile(uintptr(fd), "start-sock"), nil
}

// waitStart blocks the init until Start connects and returns the
// connection (close-on-exec).
func waitStart(lfd int) (int, error) {
	for {
		nfd, _, err := unix.Accept4(lfd, unix.SOCK_CLOEXEC)
		if err == unix.EINTR || err == unix.ECONNABORTED {
			continue
		}
		if err != nil {
			return -1, fmt.Errorf("wait for start: %w", err)
		}
		var b [1]byte
		n, err := unix.Read(nfd, b[:])
		if err != nil || n != 1 {
			// A stray connection: wait for a real start.
			unix.Close(nfd)
			continue
		}
		unix.Close(lfd)
		return nfd, nil
	}
}

// reportStart writes an error to the starter's connection.
func reportStart(conn int, err error) {
	if conn >= 0 {
		b := []byte(errorMessage(err).Error)
		_, _ = unix.Write(conn, b)
	}
}

// releaseStart starts a created init and waits until its process was
// executed; an error the init reported is returned.
func releaseStart(stateDir string) error {
	path := filepath.Join(stateDir, startSockFile)
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	addr, done, err := sockAddr(path)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return errdefs.New(errdefs.ErrConflict, "container was already started")
		}
		return err
	}
	err = unix.Connect(fd, addr)
	done()
	switch {
	case errors.Is(err, unix.ENOENT):
		return errdefs.New(errdefs.ErrConflict, "container was already started")
	case errors.Is(err, unix.ECONNREFUSED):
		// No listener: the init is gone.
		os.Remove(path)
		return errdefs.New(errdefs.ErrNotRunning, "container init is not running")
	case err != nil:
		return fmt.Errorf("connect to start socket: %w", err)
	}
	if _, err := unix.Write(fd, []byte{1}); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	os.Remove(path)
	buf := make([]byte, 4096)
	for {
		n, err := unix.Read(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil && !errors.Is(err, unix.ECONNRESET) {
			return fmt.Errorf("start: %w", err)
		}
		if n > 0 {
			return startError(string(buf[:n]))
		}
		return nil
	}
}

// startError rebuilds the kind of an error the init reported at start.
func startError(msg string) error {
	e := &stageError{msg: msg}
	if strings.Contains(msg, "executable file not found") || strings.Contains(msg, "no such file or directory") {
		e.kind, e.errno = errdefs.ErrNotFound, unix.ENOENT
	} else if strings.Contains(msg, "permission denied") {
		e.errno = unix.EACCES
	}
	return e
}
