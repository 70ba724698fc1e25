// Package lockfile takes exclusive flock(2) locks on files, so that several
// processes sharing one berth store serialise their updates of network state
// (IPAM leases, published ports).
//
// A lock is held by an open file description: two Lock calls on the same path
// exclude each other whether they come from two processes or from two
// goroutines of one process. The kernel drops the lock when the holder dies,
// so a crash never leaves a stale lock behind.
package lockfile

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// File is a held lock. Unlock releases it.
type File struct {
	f *os.File
}

// Lock creates path (and its directory) if missing and waits until it holds
// an exclusive lock on it, or ctx is done.
func Lock(ctx context.Context, path string) (*File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	// Poll with a non-blocking flock so that ctx can interrupt the wait. The
	// critical sections this guards are short (tens of microseconds), so
	// the first attempts are close together.
	wait := 20 * time.Microsecond
	for {
		ok, err := tryLock(f)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if ok {
			return &File{f: f}, nil
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, ctx.Err())
		case <-t.C:
		}
		if wait < 5*time.Millisecond {
			wait *= 2
		}
	}
}

// Unlock releases the lock. It is safe to call more than once.
func (l *File) Unlock() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close() // closing the description drops the flock
	l.f = nil
	return err
}
