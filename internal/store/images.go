package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berth-run/berth/internal/errdefs"
)

// Image is the record of one image. Its ID is the digest of its config
// blob, as in docker. The manifest, config and compressed layers are blobs.
type Image struct {
	ID                digest.Digest `json:"id"`
	ManifestDigest    digest.Digest `json:"manifestDigest"`
	ManifestMediaType string        `json:"manifestMediaType"`
	Layers            []ImageLayer  `json:"layers"`
	RepoDigests       []string      `json:"repoDigests,omitempty"` // name@digest of the manifest in registries
	Created           time.Time     `json:"created"`               // when this store got the image
}

// ImageLayer is one layer of an image: its blob and its unpacked chain.
type ImageLayer struct {
	Digest    digest.Digest `json:"digest"` // blob digest (compressed as stored)
	MediaType string        `json:"mediaType"`
	Size      int64         `json:"size"` // blob size
	DiffID    digest.Digest `json:"diffID"`
	ChainID   digest.Digest `json:"chainID"`
}

// Blobs lists every blob the image references.
func (im *Image) Blobs() []digest.Digest {
	out := []digest.Digest{im.ManifestDigest, im.ID}
	for _, l := range im.Layers {
		out = append(out, l.Digest)
	}
	return out
}

func (s *Store) imagePath(id digest.Digest) string {
	return filepath.Join(s.root, "images", id.Encoded()+".json")
}

// PutImage writes an image record. The caller holds the store lock.
func (s *Store) PutImage(im *Image) error {
	if err := im.ID.Validate(); err != nil {
		return errdefs.Wrap(errdefs.ErrInvalid, "image record", err)
	}
	return WriteJSON(s.imagePath(im.ID), im, true)
}

// GetImage reads the record of the image with the full ID id.
func (s *Store) GetImage(id digest.Digest) (*Image, error) {
	if id.Validate() != nil {
		return nil, fmt.Errorf("image %q: %w", id, errdefs.ErrNotFound)
	}
	var im Image
	if err := ReadJSON(s.imagePath(id), &im); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("image %s: %w", id.Encoded()[:12], errdefs.ErrNotFound)
		}
		return nil, err
	}
	return &im, nil
}

// Images lists all image records, oldest first.
func (s *Store) Images() ([]*Image, error) {
	ents, err := os.ReadDir(filepath.Join(s.root, "images"))
	if err != nil {
		return nil, err
	}
	var out []*Image
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || strings.HasPrefix(name, ".") {
			continue
		}
		im, err := s.GetImage(digest.NewDigestFromEncoded(digest.SHA256, name))
		if err != nil {
			continue // removed meanwhile
		}
		out = append(out, im)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	return out, nil
}

// DeleteImage removes an image record and then every layer and blob it
// used that no other image or container uses. The caller holds the store
// lock and has removed the image's tags.
func (s *Store) DeleteImage(id digest.Digest) error {
	im, err := s.GetImage(id)
	if err != nil {
		return err
	}
	if err := os.Remove(s.imagePath(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete image %s: %w", id, err)
	}
	return s.collect(im)
}

// collect removes the layers and blobs of a deleted image that nothing
// else references.
func (s *Store) collect(gone *Image) error {
	usedBlobs, usedLayers, err := s.Used()
	if err != nil {
		return err
	}
	var errs []error
	for _, l := range gone.Layers {
		if !usedLayers[l.ChainID] {
			errs = append(errs, s.DeleteLayer(l.ChainID))
		}
	}
	for _, b := range gone.Blobs() {
		if !usedBlobs[b] {
			errs = append(errs, s.DeleteBlob(b))
		}
	}
	return errors.Join(errs...)
}

// LayerUsers counts, for every chain ID in use, the images and containers
// using it: the layers' reference counts.
func (s *Store) LayerUsers() (map[digest.Digest]int, error) {
	images, err := s.Images()
	if err != nil {
		return nil, err
	}
	n := map[digest.Digest]int{}
	for _, im := range images {
		for _, l := range im.Layers {
			n[l.ChainID]++
		}
	}
	for _, c := range s.containerLayerRefs() {
		n[c]++
	}
	return n, nil
}

// Refs is the tag table: fully qualified name:tag -> image ID.
type Refs map[string]digest.Digest

func (s *Store) refsPath() string { return filepath.Join(s.root, "refs.json") }

// Refs reads the tag table.
func (s *Store) Refs() (Refs, error) {
	r := Refs{}
	if err := ReadJSON(s.refsPath(), &r); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	return r, nil
}

// PutRefs writes the tag table. The caller holds the store lock and read
// the table under it.
func (s *Store) PutRefs(r Refs) error { return WriteJSON(s.refsPath(), r, true) }

// TagsOf lists the names that point at id, sorted.
func (r Refs) TagsOf(id digest.Digest) []string {
	var out []string
	for name, v := range r {
		if v == id {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}
