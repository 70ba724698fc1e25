package berth

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	goruntime "runtime"
	"time"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-run/berth/internal/archive"
	"github.com/berth-run/berth/internal/opts"
	"github.com/berth-run/berth/internal/reference"
	"github.com/berth-run/berth/internal/store"
)

// ImportOption configures Import.
type ImportOption func(*importOptions)

type importOptions struct {
	changes []string
	message string
	source  string
}

// WithChanges applies Dockerfile instructions to the imported image's
// config, as `docker import --change`: CMD, ENTRYPOINT, ENV, WORKDIR,
// EXPOSE, USER, LABEL, VOLUME, STOPSIGNAL, in JSON or shell form.
// Default: none.
func WithChanges(changes ...string) ImportOption {
	return func(o *importOptions) { o.changes = append(o.changes, changes...) }
}

// WithMessage sets the comment of the image's history entry (docker import
// -m). Default: "Imported from " and the source.
func WithMessage(msg string) ImportOption { return func(o *importOptions) { o.message = msg } }

// WithSource names where the tar came from, for the default history
// comment ("-" for standard input, a file or URL). Default: "-".
func WithSource(src string) ImportOption { return func(o *importOptions) { o.source = src } }

// Import makes a one-layer image from a root filesystem tar (plain, gzip
// or zstd), as `docker import`. ref names the image; an empty ref makes a
// dangling image. Malformed references and changes are refused before any
// input is read.
func (r *Runtime) Import(ctx context.Context, rd io.Reader, ref string, options ...ImportOption) (*Image, error) {
	o := importOptions{source: "-"}
	for _, opt := range options {
		opt(&o)
	}
	var tag reference.Ref
	if ref != "" {
		var err error
		if tag, err = reference.Parse(ref); err != nil {
			return nil, err
		}
	}
	now := time.Now().UTC()
	cfg := ocispec.Image{
		Created:  &now,
		Platform: ocispec.Platform{Architecture: goruntime.GOARCH, OS: "linux"},
		RootFS:   ocispec.RootFS{Type: "layers"},
	}
	if err := opts.ApplyChanges(&cfg.Config, o.changes); err != nil {
		return nil, err
	}
	comment := o.message
	if comment == "" {
		comment = "Imported from " + o.source
	}
	lease := r.store.NewLease()
	defer lease.Release()
	layer, err := r.storeLayer(ctx, lease, "", rd)
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	cfg.RootFS.DiffIDs = []digest.Digest{layer.DiffID}
	cfg.History = []ocispec.History{{Created: &now, Comment: comment}}
	im, err := r.newLocalImage(ctx, lease, cfg, []store.ImageLayer{layer}, tag)
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	r.event(ctx, "image", "import", im.ID(), map[string]string{"name": tag.Familiar()})
	return im, nil
}

// storeLayer stores the tar read from rd (plain or compressed) as a new
// layer on top of the chain parent: a gzip blob for push and save, and an
// unpacked directory for containers, written in one pass. Both are held by
// lease.
func (r *Runtime) storeLayer(ctx context.Context, lease *store.Lease, parent digest.Digest, rd io.Reader) (store.ImageLayer, error) {
	plain, _, err := archive.Decompress(rd)
	if err != nil {
		return store.ImageLayer{}, err
	}
	defer plain.Close()
	bw, err := r.store.NewBlobWriter(lease)
	if err != nil {
		return store.ImageLayer{}, err
	}
	defer bw.Close()
	buf := bufio.NewWriterSize(bw, 1<<20)
	gz, err := archive.Compress(buf, archive.Gzip)
	if err != nil {
		return store.ImageLayer{}, err
	}
	tee := io.TeeReader(plain, gz)
	l, err := r.store.CreateLayer(ctx, lease, parent, "", func(dir string) (digest.Digest, int64, error) {
		res, err := archive.Apply(ctx, dir, tee, archive.ApplyOptions{MaxSize: r.opts.maxLayerSize})
		return res.DiffID, res.Size, err
	})
	if err != nil {
		return store.ImageLayer{}, err
	}
	if err := gz.Close(); err != nil {
		return store.ImageLayer{}, err
	}
	if err := buf.Flush(); err != nil {
		return store.ImageLayer{}, err
	}
	d, err := bw.Commit("", -1)
	if err != nil {
		return store.ImageLayer{}, err
	}
	return store.ImageLayer{Digest: d, MediaType: ocispec.MediaTypeImageLayerGzip, Size: bw.Size(), DiffID: l.DiffID, ChainID: l.ChainID}, nil
}

// newLocalImage stores the config and an OCI manifest for layers (already
// stored) and records the image, named tag when tag is not zero. Used by
// import and commit; the new blobs are held by lease.
func (r *Runtime) newLocalImage(ctx context.Context, lease *store.Lease, cfg ocispec.Image, layers []store.ImageLayer, tag reference.Ref) (*Image, error) {
	rawCfg, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	cfgDigest, err := r.store.PutBlobBytes(lease, rawCfg)
	if err != nil {
		return nil, err
	}
	m := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: cfgDigest, Size: int64(len(rawCfg))},
	}
	for _, l := range layers {
		m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: l.MediaType, Digest: l.Digest, Size: l.Size})
	}
	rawMan, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	manDigest, err := r.store.PutBlobBytes(lease, rawMan)
	if err != nil {
		return nil, err
	}
	rec := &store.Image{ID: cfgDigest, ManifestDigest: manDigest, ManifestMediaType: m.MediaType, Layers: layers, Created: time.Now().UTC()}
	return r.recordImage(ctx, rec, tag)
}

// recordImage writes an image record and points tag (if not zero) at it,
// under the store lock. An existing record of the same ID keeps its
// registry digests.
func (r *Runtime) recordImage(ctx context.Context, rec *store.Image, tags ...reference.Ref) (*Image, error) {
	unlock, err := r.store.Lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	if old, err := r.store.GetImage(rec.ID); err == nil {
		rec.RepoDigests = mergeStrings(old.RepoDigests, rec.RepoDigests)
		rec.Created = old.Created
	}
	if err := r.store.PutImage(rec); err != nil {
		return nil, err
	}
	refs, err := r.store.Refs()
	if err != nil {
		return nil, err
	}
	changed := false
	for _, t := range tags {
		if !t.IsZero() && refs[t.String()] != rec.ID {
			refs[t.String()] = rec.ID
			changed = true
		}
	}
	if changed {
		if err := r.store.PutRefs(refs); err != nil {
			return nil, err
		}
	}
	return r.newImage(rec, refs)
}

func mergeStrings(a, b []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range append(append([]string(nil), a...), b...) {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
