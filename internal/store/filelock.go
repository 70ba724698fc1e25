package store

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// FileLock is a named cross-process lock under <root>/locks. Lock files are
// never removed, so holders and waiters always agree on the inode.
type FileLock struct{ f *os.File }

// LockName takes the exclusive lock called name (for example
// "layer-<hex>"), blocking until it is free.
func (s *Store) LockName(name string) (*FileLock, error) {
	if name == "" || strings.ContainsAny(name, "/\x00") {
		return nil, fmt.Errorf("lock name %q: invalid", name)
	}
	f, err := os.OpenFile(filepath.Join(s.root, "locks", name), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", name, err)
	}
	if err := flock(f, true); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", name, err)
	}
	return &FileLock{f: f}, nil
}

// Unlock releases the lock.
func (l *FileLock) Unlock() {
	_ = funlock(l.f)
	_ = l.f.Close()
}
