// Package store is berth's on-disk state: content-addressed blobs, unpacked
// layers, image records and tags, and the directories of containers,
// volumes and networks. It is the only state shared between the processes
// that use one root (test binaries, the CLI, programs, the monitor).
//
// Locking: metadata mutations hold the store lock (Lock), a flock on
// <root>/lock plus an in-process mutex, because flock does not exclude
// goroutines that share one open file. Reads take no lock: every file is
// replaced atomically (write a temp file, rename), so a reader sees the old
// or the new version, never a torn one. Long work — downloads, unpacking a
// layer — runs outside the store lock under a per-object lock.
//
// Crash safety: temporary files and directories live in <root>/tmp under a
// name that carries the identity of the process that made them; Open
// removes those whose process is gone. A layer becomes visible only by the
// rename of its complete directory.
package store

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/berth-run/berth/internal/proc"
)

// Store is an opened root and run root.
type Store struct {
	root    string
	runRoot string
	self    proc.ID

	mu       sync.Mutex // serializes Lock holders within this process
	lockFile *os.File   // <root>/lock, flocked while mu is held
}

// Open prepares root and runRoot (creating them as needed) and removes the
// temporary files of processes that died.
func Open(root, runRoot string) (*Store, error) {
	if !filepath.IsAbs(root) || !filepath.IsAbs(runRoot) {
		return nil, fmt.Errorf("store root %q and run root %q must be absolute paths", root, runRoot)
	}
	for _, d := range []string{root, filepath.Join(root, "tmp"), filepath.Join(root, "blobs", "sha256"),
		filepath.Join(root, "layers"), filepath.Join(root, "l"), filepath.Join(root, "images"),
		filepath.Join(root, "containers"), filepath.Join(root, "volumes"), filepath.Join(root, "networks"),
		filepath.Join(root, "locks"), filepath.Join(root, "leases"), runRoot} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("open store: %w", err)
		}
	}
	// Layers are unpacked in tmp/, containers and volumes made in theirs.
	for _, d := range []string{"tmp", "containers", "volumes"} {
		spreadSubdirs(filepath.Join(root, d))
	}
	lf, err := os.OpenFile(filepath.Join(root, "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	s := &Store{root: root, runRoot: runRoot, self: proc.Self(), lockFile: lf}
	// What crashed processes left: temp files, leases, and the blobs and
	// layers only those leases held (check.go).
	if err := s.cleanCrashed(); err != nil {
		lf.Close()
		return nil, err
	}
	return s, nil
}

// Close releases the store's open files. Containers keep running.
func (s *Store) Close() error { return s.lockFile.Close() }

// Root is the store's root directory.
func (s *Store) Root() string { return s.root }

// RunRoot is the store's run directory (sockets, netns, runtime state).
func (s *Store) RunRoot() string { return s.runRoot }

// Path joins elem below the root.
func (s *Store) Path(elem ...string) string {
	return filepath.Join(append([]string{s.root}, elem...)...)
}

// RunPath joins elem below the run root.
func (s *Store) RunPath(elem ...string) string {
	return filepath.Join(append([]string{s.runRoot}, elem...)...)
}

// Lock takes the store-wide metadata lock and returns its release.
func (s *Store) Lock() (unlock func(), err error) {
	s.mu.Lock()
	if err := flock(s.lockFile, true); err != nil {
		s.mu.Unlock()
		return nil, fmt.Errorf("lock store: %w", err)
	}
	return func() {
		_ = funlock(s.lockFile)
		s.mu.Unlock()
	}, nil
}
