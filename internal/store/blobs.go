package store

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/opencontainers/go-digest"

	"github.com/berth-run/berth/internal/errdefs"
)

// BlobPath is where the blob d lives (it may not exist).
func (s *Store) BlobPath(d digest.Digest) string {
	return filepath.Join(s.root, "blobs", d.Algorithm().String(), d.Encoded())
}

// HasBlob reports whether the blob d is stored.
func (s *Store) HasBlob(d digest.Digest) bool {
	if d.Validate() != nil {
		return false
	}
	_, err := os.Stat(s.BlobPath(d))
	return err == nil
}

// OpenBlob opens the stored blob d.
func (s *Store) OpenBlob(d digest.Digest) (*os.File, error) {
	if err := d.Validate(); err != nil {
		return nil, errdefs.Wrap(errdefs.ErrInvalid, fmt.Sprintf("blob %q", d), err)
	}
	f, err := os.Open(s.BlobPath(d))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("blob %s: %w", d, errdefs.ErrNotFound)
	}
	return f, err
}

// ReadBlob returns the content of a small stored blob (manifests, configs).
func (s *Store) ReadBlob(d digest.Digest) ([]byte, error) {
	f, err := s.OpenBlob(d)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", d, err)
	}
	if digest.FromBytes(b) != d {
		return nil, fmt.Errorf("blob %s: content does not match its digest: %w", d, errdefs.ErrCorrupt)
	}
	return b, nil
}

// BlobWriter writes one blob into the store: bytes go to a temp file while
// their digest is computed; Commit verifies and renames it into place.
type BlobWriter struct {
	s        *Store
	lease    *Lease
	f        *os.File
	digester digest.Digester
	n        int64
	done     bool
}

// NewBlobWriter starts writing a blob, to be held by lease (may be nil)
// once committed. Call Commit or Close.
func (s *Store) NewBlobWriter(lease *Lease) (*BlobWriter, error) {
	f, err := os.OpenFile(s.TempName("blob"), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("write blob: %w", err)
	}
	return &BlobWriter{s: s, lease: lease, f: f, digester: digest.Canonical.Digester()}, nil
}

// Write implements io.Writer.
func (w *BlobWriter) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.digester.Hash().Write(p[:n])
	w.n += int64(n)
	return n, err
}

// Size is the number of bytes written so far.
func (w *BlobWriter) Size() int64 { return w.n }

// Digest is the digest of the bytes written so far.
func (w *BlobWriter) Digest() digest.Digest { return w.digester.Digest() }

// Commit checks the content against expected (when not empty) and size
// (when >= 0), syncs it and moves it into place. A mismatch is an
// errdefs.ErrCorrupt error and stores nothing.
func (w *BlobWriter) Commit(expected digest.Digest, size int64) (digest.Digest, error) {
	if w.done {
		return "", errors.New("blob writer already closed")
	}
	w.done = true
	name := w.f.Name()
	got := w.digester.Digest()
	fail := func(err error) (digest.Digest, error) {
		w.f.Close()
		os.Remove(name)
		return "", err
	}
	if expected != "" && got != expected {
		return fail(fmt.Errorf("blob %s: content has digest %s: %w", expected, got, errdefs.ErrCorrupt))
	}
	if size >= 0 && w.n != size {
		return fail(fmt.Errorf("blob %s: got %d bytes, want %d: %w", got, w.n, size, errdefs.ErrCorrupt))
	}
	if err := w.f.Sync(); err != nil {
		return fail(fmt.Errorf("blob %s: %w", got, err))
	}
	if err := w.f.Close(); err != nil {
		os.Remove(name)
		return "", fmt.Errorf("blob %s: %w", got, err)
	}
	lk, err := w.s.leaseLock()
	if err != nil {
		os.Remove(name)
		return "", err
	}
	defer lk.Unlock()
	// The lease first: a process killed after the rename leaves a stale
	// lease that makes the next Open collect the blob, not an orphan
	// that nothing points at.
	if err := w.lease.add(got); err != nil {
		os.Remove(name)
		return "", err
	}
	if err := os.Rename(name, w.s.BlobPath(got)); err != nil {
		os.Remove(name)
		return "", fmt.Errorf("blob %s: %w", got, err)
	}
	return got, nil
}

// Close abandons an uncommitted blob.
func (w *BlobWriter) Close() error {
	if w.done {
		return nil
	}
	w.done = true
	w.f.Close()
	return os.Remove(w.f.Name())
}

// PutBlob stores the content of r, verified against expected (if not
// empty), held by lease (may be nil), and returns its digest and size.
func (s *Store) PutBlob(lease *Lease, r io.Reader, expected digest.Digest) (digest.Digest, int64, error) {
	w, err := s.NewBlobWriter(lease)
	if err != nil {
		return "", 0, err
	}
	defer w.Close()
	if _, err := io.Copy(w, r); err != nil {
		return "", 0, fmt.Errorf("write blob: %w", err)
	}
	d, err := w.Commit(expected, -1)
	return d, w.n, err
}

// PutBlobBytes stores b, held by lease (may be nil), and returns its
// digest.
func (s *Store) PutBlobBytes(lease *Lease, b []byte) (digest.Digest, error) {
	d := digest.FromBytes(b)
	lk, err := s.leaseLock()
	if err != nil {
		return "", err
	}
	defer lk.Unlock()
	if err := lease.add(d); err != nil { // first, as in Commit
		return "", err
	}
	if !s.HasBlob(d) {
		if err := WriteFile(s.BlobPath(d), b, 0o600, true); err != nil {
			return "", err
		}
	}
	return d, nil
}

// DeleteBlob removes the blob d unless a live lease holds it; a missing
// blob is not an error. The caller holds the store lock and has checked
// that no record uses it.
func (s *Store) DeleteBlob(d digest.Digest) error {
	if d.Validate() != nil {
		return nil
	}
	lk, err := s.leaseLock()
	if err != nil {
		return err
	}
	defer lk.Unlock()
	if s.leased()[d] {
		return nil
	}
	err = os.Remove(s.BlobPath(d))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}
