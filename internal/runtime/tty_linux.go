package runtime

import (
	"fmt"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// newPty opens a pty pair in the devpts instance mounted at /dev/pts (the
// container's own once the root is entered), sized as the spec asks.
func newPty(size *specs.Box) (master, slave int, name string, err error) {
	master, err = unix.Open("/dev/pts/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		master, err = unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
		if err != nil {
			return -1, -1, "", fmt.Errorf("open ptmx: %w", err)
		}
	}
	if err := unix.IoctlSetPointerInt(master, unix.TIOCSPTLCK, 0); err != nil {
		unix.Close(master)
		return -1, -1, "", fmt.Errorf("unlock pty: %w", err)
	}
	n, err := unix.IoctlGetInt(master, unix.TIOCGPTN)
	if err != nil {
		unix.Close(master)
		return -1, -1, "", fmt.Errorf("pty number: %w", err)
	}
	name = fmt.Sprintf("/dev/pts/%d", n)
	slave, err = unix.Open(name, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		unix.Close(master)
		return -1, -1, "", fmt.Errorf("open %s: %w", name, err)
	}
	if size != nil && size.Width > 0 && size.Height > 0 {
		_ = unix.IoctlSetWinsize(master, unix.TIOCSWINSZ, &unix.Winsize{Row: uint16(size.Height), Col: uint16(size.Width)})
	}
	return master, slave, name, nil
}

// setupConsole makes the container's terminal: a pty from its devpts,
// the slave bound over /dev/console (with a mount namespace), the master
// sent to the parent. The slave becomes stdio in finalizeProcess.
func setupConsole(sock *syncSocket, cfg *stageConfig, mountConsole bool) error {
	master, slave, name, err := newPty(cfg.Process.ConsoleSize)
	if err != nil {
		return err
	}
	defer unix.Close(master)
	if mountConsole {
		fd, err := unix.Open("/dev/console", unix.O_CREAT|unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err == nil {
			unix.Close(fd)
		}
		if err := unix.Mount(name, "/dev/console", "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind %s over /dev/console: %w", name, err)
		}
	}
	if err := sock.sendFd(msgConsole, master); err != nil {
		return err
	}
	cfg.consoleSlave = slave
	return nil
}

// useConsole makes the pty slave this process's stdio and controlling
// terminal (the process is a session leader: SysProcAttr.Setsid).
func useConsole(slave int) error {
	for fd := 0; fd < 3; fd++ {
		if err := unix.Dup3(slave, fd, 0); err != nil {
			return fmt.Errorf("dup console: %w", err)
		}
	}
	unix.Close(slave)
	if err := unix.IoctlSetInt(0, unix.TIOCSCTTY, 0); err != nil {
		return fmt.Errorf("set controlling terminal: %w", err)
	}
	return nil
}

// sendConsole passes a pty master to the OCI console socket at path.
// Plain syscalls, not package net: importing net puts its (and its
// dependencies') initialisation before this package's, which every
// container init, a re-exec of the whole binary, would pay first.
func sendConsole(path string, master *os.File) error {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("console socket: %w", err)
	}
	defer unix.Close(fd)
	err = unix.Connect(fd, &unix.SockaddrUnix{Name: path})
	for err == unix.EINTR {
		if err = unix.Connect(fd, &unix.SockaddrUnix{Name: path}); err == unix.EISCONN {
			err = nil
		}
	}
	if err != nil {
		return fmt.Errorf("console socket %s: %w", path, err)
	}
	oob := unix.UnixRights(int(master.Fd()))
	for {
		err = unix.Sendmsg(fd, []byte(master.Name()), oob, nil, 0)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("send console: %w", err)
	}
	return nil
}

// Resize sets the window size of a pty master.
func resizePty(master *os.File, width, height uint16) error {
	return unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: height, Col: width})
}
