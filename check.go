package berth

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/opencontainers/go-digest"

	"github.com/berth-run/berth/internal/store"
)

// CheckOption configures Check.
type CheckOption func(*checkOptions)

type checkOptions struct{ verifyBlobs bool }

// WithBlobVerification re-hashes every blob against its digest (slow on
// large stores). Default: false (blobs are only checked to exist).
func WithBlobVerification(v bool) CheckOption { return func(o *checkOptions) { o.verifyBlobs = v } }

// Problem is one inconsistency Check found.
type Problem struct {
	Object string // "image sha256:...", "tag busybox:latest", "layer sha256:..."
	What   string
}

func (p Problem) String() string { return p.Object + ": " + p.What }

// Check verifies the store: every tag names an image, every image's
// manifest, config and layer blobs exist (and match their digests with
// WithBlobVerification), every image layer is unpacked with the right
// chain, and every layer record matches its directory. It reports what it
// finds and changes nothing.
func (r *Runtime) Check(ctx context.Context, opts ...CheckOption) ([]Problem, error) {
	var o checkOptions
	for _, opt := range opts {
		opt(&o)
	}
	var probs []Problem
	add := func(obj, format string, a ...any) {
		probs = append(probs, Problem{Object: obj, What: fmt.Sprintf(format, a...)})
	}
	refs, err := r.store.Refs()
	if err != nil {
		return nil, err
	}
	for name, id := range refs {
		if _, err := r.store.GetImage(id); err != nil {
			add("tag "+familiar(name), "points at missing image %s", id)
		}
	}
	images, err := r.store.Images()
	if err != nil {
		return nil, err
	}
	for _, im := range images {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		obj := "image " + im.ID.String()
		for _, b := range im.Blobs() {
			if !r.store.HasBlob(b) {
				add(obj, "blob %s is missing", b)
			} else if o.verifyBlobs {
				if err := verifyBlob(r.store, b); err != nil {
					add(obj, "%v", err)
				}
			}
		}
		var diffIDs []digest.Digest
		for _, l := range im.Layers {
			diffIDs = append(diffIDs, l.DiffID)
		}
		chains := store.ChainIDs(diffIDs)
		for i, l := range im.Layers {
			if l.ChainID != chains[i] {
				add(obj, "layer %d has chain ID %s, want %s", i, l.ChainID, chains[i])
			}
			if rec, err := r.store.GetLayer(l.ChainID); err != nil {
				add(obj, "layer %s is not unpacked", l.ChainID)
			} else if rec.DiffID != l.DiffID {
				add(obj, "layer %s has diffID %s, want %s", l.ChainID, rec.DiffID, l.DiffID)
			}
		}
	}
	layers, err := r.store.Layers()
	if err != nil {
		return nil, err
	}
	for _, l := range layers {
		if store.ChainID(l.Parent, l.DiffID) != l.ChainID {
			add("layer "+l.ChainID.String(), "chain ID does not match parent and diffID")
		}
		if fi, err := os.Stat(r.store.LayerDir(l.ChainID)); err != nil || !fi.IsDir() {
			add("layer "+l.ChainID.String(), "directory is missing")
		}
	}
	return probs, nil
}

func verifyBlob(s *store.Store, d digest.Digest) error {
	f, err := s.OpenBlob(d)
	if err != nil {
		return err
	}
	defer f.Close()
	v := d.Verifier()
	if _, err := io.Copy(v, f); err != nil {
		return fmt.Errorf("blob %s: %w", d, err)
	}
	if !v.Verified() {
		return fmt.Errorf("blob %s: content does not match its digest", d)
	}
	return nil
}
