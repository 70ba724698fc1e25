package store

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/berth-run/berth/internal/proc"
)

var tmpSeq atomic.Uint64 // the sequence part of temp names; not state that matters across calls

// TempName returns a fresh path in <root>/tmp owned by this process: Open
// of any later process removes it once this process is gone.
func (s *Store) TempName(kind string) string {
	return filepath.Join(s.root, "tmp", fmt.Sprintf("%s-%s-%d", s.self, kind, tmpSeq.Add(1)))
}

// TempDir creates a fresh directory in <root>/tmp owned by this process.
func (s *Store) TempDir(kind string) (string, error) {
	d := s.TempName(kind)
	if err := os.Mkdir(d, 0o700); err != nil {
		return "", err
	}
	return d, nil
}

// cleanTmp removes temp entries whose owning process is gone.
func (s *Store) cleanTmp() error {
	dir := filepath.Join(s.root, "tmp")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	for _, e := range ents {
		owner, _, _ := strings.Cut(e.Name(), "-")
		if id, ok := proc.ParseID(owner); ok && id.Alive() {
			continue
		}
		if err := RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return fmt.Errorf("open store: remove stale %s: %w", e.Name(), err)
		}
	}
	return nil
}

// WriteFile writes data to path atomically: a reader sees the old content
// or the new, never a mix, and a crash leaves one of the two. With sync the
// data is on disk before the rename (use it for records that must survive a
// machine crash).
func WriteFile(path string, data []byte, perm os.FileMode, sync bool) error {
	dir := filepath.Dir(path)
	tmp := filepath.Join(dir, "."+filepath.Base(path)+".tmp"+strconv.FormatUint(tmpSeq.Add(1), 10)+"-"+strconv.Itoa(os.Getpid()))
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil && sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// WriteJSON marshals v and writes it atomically (see WriteFile).
func WriteJSON(path string, v any, sync bool) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return WriteFile(path, b, 0o600, sync)
}

// ReadJSON reads a JSON file into v. A missing file is returned as an
// error satisfying errors.Is(err, fs.ErrNotExist).
func ReadJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	return nil
}
