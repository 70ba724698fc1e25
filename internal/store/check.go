package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/berth-run/berth/internal/proc"
)

// What `system check` needs to see of the store beyond its records: every
// stored blob, the layer links, the leases and the leftovers of dead
// processes.

// Blobs lists the stored blobs. Files under blobs/ whose names are not
// sha256 digests are returned in odd (as paths below the root).
func (s *Store) Blobs() (blobs []digest.Digest, odd []string, err error) {
	dir := filepath.Join(s.root, "blobs")
	algs, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, err
	}
	for _, a := range algs {
		if a.Name() != digest.SHA256.String() || !a.IsDir() {
			odd = append(odd, filepath.Join("blobs", a.Name()))
			continue
		}
		ents, err := os.ReadDir(filepath.Join(dir, a.Name()))
		if err != nil {
			return nil, nil, err
		}
		for _, e := range ents {
			d := digest.NewDigestFromEncoded(digest.SHA256, e.Name())
			if d.Validate() != nil || !e.Type().IsRegular() {
				odd = append(odd, filepath.Join("blobs", a.Name(), e.Name()))
				continue
			}
			blobs = append(blobs, d)
		}
	}
	return blobs, odd, nil
}

// LayerDirs lists the entries of layers/ that hold no complete layer
// record (no readable meta.json), as paths below the root.
func (s *Store) LayerDirs() (incomplete []string, err error) {
	ents, err := os.ReadDir(filepath.Join(s.root, "layers"))
	if err != nil {
		return nil, err
	}
	for _, e := range ents {
		var l Layer
		if ReadJSON(filepath.Join(s.root, "layers", e.Name(), "meta.json"), &l) != nil {
			incomplete = append(incomplete, filepath.Join("layers", e.Name()))
		}
	}
	return incomplete, nil
}

// Leased returns the digests that leases of live processes hold.
func (s *Store) Leased() (map[digest.Digest]bool, error) {
	lk, err := s.leaseLock()
	if err != nil {
		return nil, err
	}
	defer lk.Unlock()
	return s.leased(), nil
}

// Stale lists what dead processes left in tmp/ and leases/ (paths below
// the root): what Open removes.
func (s *Store) Stale() ([]string, error) {
	var out []string
	for _, d := range []string{"tmp", "leases"} {
		ents, err := os.ReadDir(filepath.Join(s.root, d))
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			owner, _, _ := strings.Cut(e.Name(), "-")
			if id, ok := proc.ParseID(owner); ok && id.Alive() {
				continue
			}
			out = append(out, filepath.Join(d, e.Name()))
		}
	}
	return out, nil
}

// RemoveStale removes what dead processes left in tmp/ and leases/, as
// Open does.
func (s *Store) RemoveStale() error {
	if err := s.cleanTmp(); err != nil {
		return err
	}
	return s.cleanLeases()
}

// LayerLinks maps the names in l/ to their targets ("" for an entry that
// is not a symlink).
func (s *Store) LayerLinks() (map[string]string, error) {
	dir := filepath.Join(s.root, "l")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(ents))
	for _, e := range ents {
		target, _ := os.Readlink(filepath.Join(dir, e.Name()))
		out[e.Name()] = target
	}
	return out, nil
}

// LinkTarget is what the l/ link of a layer points at.
func LinkTarget(chainID digest.Digest) string {
	return filepath.Join("..", "layers", chainID.Encoded(), "diff")
}

// LinkedLayer is the chain ID of the layer that the l/ entry name, whose
// target is target, is the link of; ok is false when it is no layer's
// link (LinkTarget's inverse).
func LinkedLayer(name, target string) (chainID digest.Digest, ok bool) {
	hex, ok := strings.CutSuffix(strings.TrimPrefix(target, filepath.Join("..", "layers")+"/"), "/diff")
	if !ok || !strings.HasPrefix(hex, name) {
		return "", false
	}
	chainID = digest.NewDigestFromEncoded(digest.SHA256, hex)
	return chainID, chainID.Validate() == nil
}

// RelinkLayer makes the l/ link of a stored layer point at it again.
func (s *Store) RelinkLayer(chainID digest.Digest) error {
	if _, err := s.GetLayer(chainID); err != nil {
		return err
	}
	link := s.LayerLink(chainID)
	tmp := link + ".tmp"
	_ = os.Remove(tmp)
	if err := os.Symlink(LinkTarget(chainID), tmp); err != nil {
		return fmt.Errorf("layer %s: link: %w", chainID, err)
	}
	if err := os.Rename(tmp, link); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("layer %s: link: %w", chainID, err)
	}
	return nil
}

// RemoveLayerLink removes the entry name of l/ (a dangling link). The
// caller holds the store lock.
func (s *Store) RemoveLayerLink(name string) error {
	if name == "" || strings.ContainsAny(name, "/\x00") || name == "." || name == ".." {
		return fmt.Errorf("layer link %q: invalid name", name)
	}
	err := os.Remove(filepath.Join(s.root, "l", name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// RemoveIncompleteLayer removes an entry of layers/ that holds no layer
// record (rel as LayerDirs returns it). The caller holds the store lock.
func (s *Store) RemoveIncompleteLayer(rel string) error {
	name, ok := strings.CutPrefix(rel, "layers"+string(filepath.Separator))
	if !ok || name == "" || strings.ContainsAny(name, "/\x00") || name == "." || name == ".." {
		return fmt.Errorf("layer dir %q: invalid name", rel)
	}
	lk, err := s.LockName("layer-" + name)
	if err != nil {
		return err
	}
	defer lk.Unlock()
	var l Layer
	if ReadJSON(filepath.Join(s.root, "layers", name, "meta.json"), &l) == nil {
		return nil // completed meanwhile
	}
	tmp := s.TempName("rmlayer")
	if err := os.Rename(filepath.Join(s.root, "layers", name), tmp); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	return RemoveAll(tmp)
}

// RemoveBlobFile removes the blob file d whatever its content (a corrupt
// blob, so that a pull fetches it again). The caller holds the store lock.
func (s *Store) RemoveBlobFile(d digest.Digest) error {
	if d.Validate() != nil {
		return fmt.Errorf("blob %q: invalid digest", d)
	}
	err := os.Remove(s.BlobPath(d))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// Locks lists the names of the lock files under locks/.
func (s *Store) Locks() ([]string, error) {
	ents, err := os.ReadDir(filepath.Join(s.root, "locks"))
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(ents))
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out, nil
}

// RemoveLock deletes the file of lock name, which the caller holds. Only
// for the locks of objects that can never exist again (a removed
// container's ID): a process that waited on the old file and gets it
// after the removal then finds the object gone, as one that opens the
// name afresh does.
func (l *FileLock) RemoveLock() {
	_ = os.Remove(l.f.Name())
}

// UnlinkLock deletes the file of lock name, which the caller holds (see
// FileLock.RemoveLock for when that is safe).
func (s *Store) UnlinkLock(name string) {
	if name == "" || strings.ContainsAny(name, "/\x00") {
		return
	}
	_ = os.Remove(filepath.Join(s.root, "locks", name))
}

// cleanCrashed removes what processes that died left: their temp files
// and leases and, when there were any (a sign that an operation was
// killed before it recorded what it made), the blobs and layers that no
// image, container or live lease uses.
func (s *Store) cleanCrashed() error {
	stale, err := s.Stale()
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	if err := s.cleanAtomicTemps(); err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	if len(stale) == 0 {
		return nil
	}
	if err := s.cleanTmp(); err != nil {
		return err
	}
	if err := s.cleanLeases(); err != nil {
		return err
	}
	if err := s.cleanDanglingLinks(); err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	if err := s.CollectGarbage(); err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	return nil
}

// cleanDanglingLinks removes the l/ links of layers that do not exist:
// a creator makes the link just before it renames the layer into place,
// and a removal takes the link just after it renames the layer away, so a
// crash between the two leaves one. A link whose layer's lock is held
// (a creator at work) stays.
func (s *Store) cleanDanglingLinks() error {
	links, err := s.LayerLinks()
	if err != nil {
		return err
	}
	for name, target := range links {
		chainID, ok := LinkedLayer(name, target)
		if !ok {
			continue // not a layer link: Check reports it
		}
		hex := chainID.Encoded()
		if _, err := os.Lstat(filepath.Join(s.root, "layers", hex)); err == nil {
			continue
		}
		lk, ok, err := s.TryLockName("layer-" + hex)
		if err != nil || !ok {
			continue
		}
		if _, err := os.Lstat(filepath.Join(s.root, "layers", hex)); errors.Is(err, fs.ErrNotExist) {
			err = s.RemoveLayerLink(name)
		}
		lk.Unlock()
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// StaleTempFile recognises the temp files of WriteFile (".NAME.tmpSEQ-PID")
// and tells whether their writer is gone.
func StaleTempFile(name string) (stale, ok bool) {
	if !strings.HasPrefix(name, ".") {
		return false, false
	}
	i := strings.LastIndex(name, ".tmp")
	if i < 0 {
		return false, false
	}
	_, pid, found := strings.Cut(name[i+len(".tmp"):], "-")
	n, err := strconv.Atoi(pid)
	if !found || err != nil || n <= 0 {
		return false, false
	}
	_, err = os.Stat("/proc/" + pid)
	return err != nil, true
}

// AtomicTempDirs are the directories (below the root) where WriteFile
// leaves temp files: the root itself, images/, blobs/sha256/, networks/
// and every container's and volume's directory.
func (s *Store) AtomicTempDirs() []string {
	dirs := []string{".", "images", filepath.Join("blobs", "sha256"), "networks"}
	for _, parent := range []string{"containers", "volumes"} {
		ents, _ := os.ReadDir(filepath.Join(s.root, parent))
		for _, e := range ents {
			if e.IsDir() {
				dirs = append(dirs, filepath.Join(parent, e.Name()))
			}
		}
	}
	return dirs
}

// cleanAtomicTemps removes the temp files of WriteFile calls whose process
// died.
func (s *Store) cleanAtomicTemps() error {
	for _, d := range s.AtomicTempDirs() {
		ents, err := os.ReadDir(filepath.Join(s.root, d))
		if err != nil {
			continue // removed meanwhile
		}
		for _, e := range ents {
			if stale, ok := StaleTempFile(e.Name()); ok && stale {
				if err := os.Remove(filepath.Join(s.root, d, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
					return err
				}
			}
		}
	}
	return nil
}

// TryLockName takes the lock called name if it is free; ok is false
// when another holder has it.
func (s *Store) TryLockName(name string) (lk *FileLock, ok bool, err error) {
	if name == "" || strings.ContainsAny(name, "/\x00") {
		return nil, false, fmt.Errorf("lock name %q: invalid", name)
	}
	f, err := os.OpenFile(filepath.Join(s.root, "locks", name), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, false, fmt.Errorf("lock %s: %w", name, err)
	}
	got, err := tryFlock(f)
	if err != nil || !got {
		f.Close()
		return nil, false, err
	}
	return &FileLock{f: f}, true, nil
}

// Used lists the blobs that image records use and the layers that image
// and container records use.
func (s *Store) Used() (blobs, layers map[digest.Digest]bool, err error) {
	images, err := s.Images()
	if err != nil {
		return nil, nil, err
	}
	blobs, layers = map[digest.Digest]bool{}, map[digest.Digest]bool{}
	for _, im := range images {
		for _, b := range im.Blobs() {
			blobs[b] = true
		}
		for _, l := range im.Layers {
			layers[l.ChainID] = true
		}
	}
	for _, c := range s.containerLayerRefs() {
		layers[c] = true
	}
	return blobs, layers, nil
}

// CollectGarbage removes the blobs and layers that no image record or
// container uses and no live lease holds (DeleteBlob and DeleteLayer
// spare leased ones), under the store lock.
func (s *Store) CollectGarbage() error {
	unlock, err := s.Lock()
	if err != nil {
		return err
	}
	defer unlock()
	usedBlobs, usedLayers, err := s.Used()
	if err != nil {
		return err
	}
	layers, err := s.Layers()
	if err != nil {
		return err
	}
	var errs []error
	for _, l := range layers {
		if !usedLayers[l.ChainID] {
			errs = append(errs, s.DeleteLayer(l.ChainID))
		}
	}
	blobs, _, err := s.Blobs()
	if err != nil {
		return err
	}
	for _, b := range blobs {
		if !usedBlobs[b] {
			errs = append(errs, s.DeleteBlob(b))
		}
	}
	return errors.Join(errs...)
}
