package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/opencontainers/go-digest"

	"github.com/berth-run/berth/internal/proc"
)

// A Lease keeps blobs and layers alive while an operation that made or
// found them has not yet recorded the image that will use them (import,
// pull, load, commit). Without it, a concurrent removal in another
// process could collect a layer an in-flight import just found and is
// about to reference.
//
// Leases are files under <root>/leases named by the owning process; those
// of dead processes count for nothing and are removed by Open. Adding to a
// lease and deleting a blob or layer both hold the "leases" lock, so a
// deletion either sees the lease or happens before the object is (re)made.
type Lease struct {
	s    *Store
	path string

	mu   sync.Mutex
	refs []digest.Digest
}

// NewLease starts an empty lease owned by this process. Release it when
// the objects it holds are referenced by records (or no longer needed).
func (s *Store) NewLease() *Lease {
	return &Lease{s: s, path: filepath.Join(s.root, "leases", s.self.String()+"-"+strconv.FormatUint(tmpSeq.Add(1), 10))}
}

// add records refs in the lease; the caller holds the leases lock.
func (l *Lease) add(refs ...digest.Digest) error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.refs = append(l.refs, refs...)
	return WriteJSON(l.path, l.refs, false)
}

// Release drops the lease.
func (l *Lease) Release() {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.refs = nil
	_ = os.Remove(l.path)
}

// leased returns the digests held by the leases of live processes; the
// caller holds the leases lock.
func (s *Store) leased() map[digest.Digest]bool {
	out := map[digest.Digest]bool{}
	dir := filepath.Join(s.root, "leases")
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		owner, _, _ := strings.Cut(e.Name(), "-")
		if id, ok := proc.ParseID(owner); !ok || !id.Alive() {
			continue
		}
		var refs []digest.Digest
		if ReadJSON(filepath.Join(dir, e.Name()), &refs) == nil {
			for _, r := range refs {
				out[r] = true
			}
		}
	}
	return out
}

// cleanLeases removes the lease files of dead processes.
func (s *Store) cleanLeases() error {
	dir := filepath.Join(s.root, "leases")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	for _, e := range ents {
		owner, _, _ := strings.Cut(e.Name(), "-")
		if id, ok := proc.ParseID(owner); ok && id.Alive() {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("open store: %w", err)
		}
	}
	return nil
}

// leaseLock takes the lock that orders lease additions against deletions.
func (s *Store) leaseLock() (*FileLock, error) { return s.LockName("leases") }
