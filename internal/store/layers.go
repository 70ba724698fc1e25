package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berth-run/berth/internal/errdefs"
)

// Layer is the record of one unpacked layer, keyed by its chain ID (the
// identity of the layer together with all layers below it, as in
// containerd). The layer directory holds only this layer's own changes, in
// overlay format, so layers unpack independently of each other.
type Layer struct {
	ChainID digest.Digest `json:"chainID"`
	DiffID  digest.Digest `json:"diffID"`
	Parent  digest.Digest `json:"parent,omitempty"` // chain ID of the layer below
	Size    int64         `json:"size"`             // bytes of the uncompressed layer tar
	Created time.Time     `json:"created"`
}

// ChainID computes the chain ID of diffID on top of the chain parent
// (empty for a base layer): sha256(parent + " " + diffID).
func ChainID(parent, diffID digest.Digest) digest.Digest {
	if parent == "" {
		return diffID
	}
	return digest.FromString(parent.String() + " " + diffID.String())
}

// ChainIDs returns the chain IDs of a list of diffIDs, bottom first.
func ChainIDs(diffIDs []digest.Digest) []digest.Digest {
	out := make([]digest.Digest, len(diffIDs))
	var parent digest.Digest
	for i, d := range diffIDs {
		parent = ChainID(parent, d)
		out[i] = parent
	}
	return out
}

func (s *Store) layerPath(chainID digest.Digest) string {
	return filepath.Join(s.root, "layers", chainID.Encoded())
}

// LayerDir is the directory of the layer's contents (an overlay lowerdir).
func (s *Store) LayerDir(chainID digest.Digest) string {
	return filepath.Join(s.layerPath(chainID), "diff")
}

// LayerLink is the short path of the layer's contents, <root>/l/<12 hex>,
// a symlink to LayerDir that keeps overlay mount options short.
func (s *Store) LayerLink(chainID digest.Digest) string {
	return filepath.Join(s.root, "l", chainID.Encoded()[:12])
}

// GetLayer returns the record of a complete layer, or an ErrNotFound error.
func (s *Store) GetLayer(chainID digest.Digest) (*Layer, error) {
	if chainID.Validate() != nil {
		return nil, fmt.Errorf("layer %q: %w", chainID, errdefs.ErrInvalid)
	}
	var l Layer
	if err := ReadJSON(filepath.Join(s.layerPath(chainID), "meta.json"), &l); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("layer %s: %w", chainID, errdefs.ErrNotFound)
		}
		return nil, err
	}
	return &l, nil
}

// FillFunc writes a layer's contents into dir (an empty directory) and
// returns the layer's diffID and the size of its uncompressed tar.
type FillFunc func(dir string) (diffID digest.Digest, size int64, err error)

// CreateLayer returns the layer diffID on top of the chain parent, making
// it with fill when it does not exist yet. When diffID is known (pulls,
// loads), concurrent creators of the same layer wait for each other and
// only the first fills it; fill's result must match diffID, or the layer is
// refused as corrupt. When diffID is empty (import, commit), fill runs
// first and the layer it made is kept unless an identical one appeared
// meanwhile. Nothing is visible until the complete layer is renamed into
// place; the store lock is not held while fill runs.
//
// The layer is added to lease (may be nil) before CreateLayer returns, so
// no concurrent removal collects it before the caller records its image.
func (s *Store) CreateLayer(ctx context.Context, lease *Lease, parent, diffID digest.Digest, fill FillFunc) (*Layer, error) {
	for attempt := 0; ; attempt++ {
		l, err := s.createLayer(ctx, parent, diffID, fill)
		if err != nil {
			return nil, err
		}
		// Hold it, unless a removal took it between creation and now.
		lk, err := s.leaseLock()
		if err != nil {
			return nil, err
		}
		_, gone := s.GetLayer(l.ChainID)
		if gone == nil {
			err = lease.add(l.ChainID)
		}
		lk.Unlock()
		if gone == nil || attempt == 3 {
			return l, err
		}
	}
}

func (s *Store) createLayer(ctx context.Context, parent, diffID digest.Digest, fill FillFunc) (*Layer, error) {
	if diffID != "" {
		chain := ChainID(parent, diffID)
		if l, err := s.GetLayer(chain); err == nil {
			return l, nil
		}
		lk, err := s.LockName("layer-" + chain.Encoded())
		if err != nil {
			return nil, err
		}
		defer lk.Unlock()
		if l, err := s.GetLayer(chain); err == nil {
			return l, nil
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	tmp, err := s.TempDir("layer")
	if err != nil {
		return nil, fmt.Errorf("create layer: %w", err)
	}
	defer RemoveAll(tmp)
	dir := filepath.Join(tmp, "diff")
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create layer: %w", err)
	}
	got, size, err := fill(dir)
	if err != nil {
		return nil, err
	}
	if diffID != "" && got != diffID {
		return nil, fmt.Errorf("layer %s: content has diffID %s: %w", diffID, got, errdefs.ErrCorrupt)
	}
	l := &Layer{ChainID: ChainID(parent, got), DiffID: got, Parent: parent, Size: size, Created: time.Now().UTC()}
	if diffID == "" {
		lk, err := s.LockName("layer-" + l.ChainID.Encoded())
		if err != nil {
			return nil, err
		}
		defer lk.Unlock()
		if existing, err := s.GetLayer(l.ChainID); err == nil {
			return existing, nil
		}
	}
	if err := WriteJSON(filepath.Join(tmp, "meta.json"), l, false); err != nil {
		return nil, err
	}
	link := s.LayerLink(l.ChainID)
	_ = os.Remove(link)
	if err := os.Symlink(filepath.Join("..", "layers", l.ChainID.Encoded(), "diff"), link); err != nil {
		return nil, fmt.Errorf("create layer %s: %w", l.ChainID, err)
	}
	if err := os.Rename(tmp, s.layerPath(l.ChainID)); err != nil {
		return nil, fmt.Errorf("create layer %s: %w", l.ChainID, err)
	}
	return l, nil
}

// Layers lists the complete layers.
func (s *Store) Layers() ([]Layer, error) {
	ents, err := os.ReadDir(filepath.Join(s.root, "layers"))
	if err != nil {
		return nil, err
	}
	var out []Layer
	for _, e := range ents {
		var l Layer
		if err := ReadJSON(filepath.Join(s.root, "layers", e.Name(), "meta.json"), &l); err == nil {
			out = append(out, l)
		}
	}
	return out, nil
}

// DeleteLayer removes a layer unless a live lease holds it. The caller
// holds the store lock and has checked that no record uses it. The layer
// disappears at once (a rename); its files are removed after.
func (s *Store) DeleteLayer(chainID digest.Digest) error {
	lk, err := s.LockName("layer-" + chainID.Encoded())
	if err != nil {
		return err
	}
	defer lk.Unlock()
	ll, err := s.leaseLock()
	if err != nil {
		return err
	}
	if s.leased()[chainID] {
		ll.Unlock()
		return nil
	}
	tmp := s.TempName("rmlayer")
	err = os.Rename(s.layerPath(chainID), tmp)
	ll.Unlock()
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("delete layer %s: %w", chainID, err)
	}
	_ = os.Remove(s.LayerLink(chainID))
	return RemoveAll(tmp)
}
