package berth

import (
	"context"
	"errors"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// dirWatch wakes a log follower when something changes in a container's
// directory: the log grows or rotates, the state file is replaced, the
// directory is removed. The inotify descriptor is non-blocking, so
// waiting parks a goroutine in Go's poller, not a thread.
type dirWatch struct{ f *os.File }

func watchDir(dir string) (*dirWatch, error) {
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return nil, err
	}
	const mask = unix.IN_MODIFY | unix.IN_CREATE | unix.IN_MOVED_TO | unix.IN_MOVED_FROM |
		unix.IN_DELETE | unix.IN_DELETE_SELF | unix.IN_MOVE_SELF
	if _, err := unix.InotifyAddWatch(fd, dir, mask); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return &dirWatch{f: os.NewFile(uintptr(fd), "inotify")}, nil
}

// wait returns after an event (draining all pending ones), after max, or
// with ctx's error when ctx ends.
func (w *dirWatch) wait(ctx context.Context, max time.Duration) error {
	stop := context.AfterFunc(ctx, func() { _ = w.f.SetReadDeadline(time.Now()) })
	defer stop()
	_ = w.f.SetReadDeadline(time.Now().Add(max))
	var buf [4096]byte
	_, err := w.f.Read(buf[:])
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		return err
	}
	// More events may be queued: one wake-up is enough for all.
	_ = w.f.SetReadDeadline(time.Now())
	for {
		if _, err := w.f.Read(buf[:]); err != nil {
			return nil
		}
	}
}

// close releases the watch without waiting for it: closing an inotify
// descriptor waits in the kernel for an SRCU grace period (the fsnotify
// group's marks are freed: 5-15 ms measured here), which would delay every
// reader that stops following, such as berthtest's wait for a log line.
func (w *dirWatch) close() { go w.f.Close() }
