package berth

import (
	"archive/tar"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path"
	goruntime "runtime"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"

	"github.com/berth-run/berth/internal/archive"
	"github.com/berth-run/berth/internal/errdefs"
	"github.com/berth-run/berth/internal/reference"
	"github.com/berth-run/berth/internal/store"
)

// LoadedImage is an image Load stored, with the names the archive gave it
// (docker's short form; none for an untagged image).
type LoadedImage struct {
	*Image
	Names []string
}

// maxArchiveMeta bounds the size of one metadata file (manifest.json,
// index.json, configs) read from an image archive.
const maxArchiveMeta = 64 << 20

// Load reads an image archive — docker save's format (old and new), or an
// OCI image layout tar (oci-archive) — and stores its images, as
// `docker load`. Blobs are checked against their digests and layers
// against the configs' diffIDs; a hostile or corrupt archive is refused
// with an ErrInvalid or ErrCorrupt error and leaves nothing behind.
func (r *Runtime) Load(ctx context.Context, rd io.Reader) ([]LoadedImage, error) {
	l := &loader{rt: r, lease: r.store.NewLease(), files: map[string][]byte{}, blobs: map[string]digest.Digest{}, links: map[string]string{}}
	defer l.lease.Release()
	out, err := l.load(ctx, rd)
	if err != nil {
		l.discard()
		return nil, fmt.Errorf("load: %w", err)
	}
	for _, im := range out {
		r.event(ctx, "image", "load", im.ID(), nil)
	}
	return out, nil
}

type loader struct {
	rt    *Runtime
	lease *store.Lease             // holds what the load stored until its images are recorded
	files map[string][]byte        // small metadata files by archive path
	blobs map[string]digest.Digest // archive path -> stored blob
	links map[string]string        // symlinks inside the archive (old docker format)
	added []digest.Digest          // blobs this load stored that were not there

	mu     sync.Mutex      // guards layers (unpacks run in parallel)
	layers []digest.Digest // layers this load created
}

// imageSpec is one image found in the archive, before its layers are
// unpacked.
type imageSpec struct {
	config    digest.Digest
	rawConfig []byte
	manifest  digest.Digest // stored manifest blob, or "" to make one
	mediaType string
	layers    []ocispec.Descriptor
	names     []reference.Ref
}

func (l *loader) load(ctx context.Context, rd io.Reader) ([]LoadedImage, error) {
	tr := tar.NewReader(rd)
	sawEntry := false
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, errdefs.Wrap(errdefs.ErrInvalid, "reading image archive", err)
		}
		sawEntry = true
		name, err := archivePath(hdr.Name)
		if err != nil {
			return nil, err
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
		case tar.TypeSymlink:
			target := hdr.Linkname
			if !path.IsAbs(target) {
				target = path.Join(path.Dir(name), target)
			}
			t, err := archivePath(target)
			if err != nil {
				return nil, err
			}
			l.links[name] = t
		case tar.TypeReg:
			if err := l.readFile(name, tr, hdr.Size); err != nil {
				return nil, err
			}
		default:
			return nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("image archive entry %q: unexpected type %q", hdr.Name, hdr.Typeflag))
		}
	}
	if !sawEntry {
		return nil, errdefs.New(errdefs.ErrInvalid, "empty image archive")
	}
	var specsList []*imageSpec
	var err error
	switch {
	case l.files["manifest.json"] != nil:
		specsList, err = l.dockerImages()
	case l.files[ocispec.ImageIndexFile] != nil:
		specsList, err = l.ociImages()
	default:
		return nil, errdefs.New(errdefs.ErrInvalid, "not an image archive: no manifest.json or index.json")
	}
	if err != nil {
		return nil, err
	}
	// Unpack all layers of all images, bounded in parallel; each layer
	// goes to its own directory, so order does not matter.
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(goruntime.NumCPU() + 1)
	recs := make([]*store.Image, len(specsList))
	for i, sp := range specsList {
		rec, err := l.record(sp)
		if err != nil {
			return nil, err
		}
		recs[i] = rec
		for j, il := range rec.Layers {
			var parent digest.Digest
			if j > 0 {
				parent = rec.Layers[j-1].ChainID
			}
			g.Go(func() error { return l.unpack(gctx, parent, il) })
		}
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	var out []LoadedImage
	for i, sp := range specsList {
		im, err := l.rt.recordImage(ctx, recs[i], sp.names...)
		if err != nil {
			return nil, err
		}
		li := LoadedImage{Image: im}
		for _, n := range sp.names {
			li.Names = append(li.Names, n.Familiar())
		}
		out = append(out, li)
	}
	return out, nil
}

// archivePath cleans an entry name and refuses names that leave the
// archive's root.
func archivePath(name string) (string, error) {
	clean := path.Clean("/" + name)
	if strings.Contains(name, "\x00") || hasDotDot(name) {
		return "", errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("image archive entry %q: path escapes the archive", name))
	}
	return strings.TrimPrefix(clean, "/"), nil
}

func hasDotDot(name string) bool {
	for _, p := range strings.Split(name, "/") {
		if p == ".." {
			return true
		}
	}
	return false
}

// readFile keeps a metadata file in memory or stores a blob or layer tar.
func (l *loader) readFile(name string, r io.Reader, size int64) error {
	base := path.Base(name)
	if strings.HasPrefix(name, "blobs/") {
		parts := strings.Split(name, "/")
		if len(parts) != 3 {
			return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("image archive entry %q: not a blob path", name))
		}
		d := digest.NewDigestFromEncoded(digest.Algorithm(parts[1]), parts[2])
		if err := d.Validate(); err != nil {
			return errdefs.Wrap(errdefs.ErrInvalid, fmt.Sprintf("image archive entry %q", name), err)
		}
		return l.putBlob(name, r, d, size)
	}
	if strings.HasSuffix(base, ".json") || base == "json" || base == "repositories" || base == ocispec.ImageLayoutFile || base == "VERSION" {
		if size > maxArchiveMeta {
			return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("image archive entry %q: %d bytes is too large for metadata", name, size))
		}
		b, err := io.ReadAll(io.LimitReader(r, maxArchiveMeta))
		if err != nil {
			return errdefs.Wrap(errdefs.ErrInvalid, "reading image archive", err)
		}
		l.files[name] = b
		return nil
	}
	return l.putBlob(name, r, "", size)
}

func (l *loader) putBlob(name string, r io.Reader, expected digest.Digest, size int64) error {
	w, err := l.rt.store.NewBlobWriter(l.lease)
	if err != nil {
		return err
	}
	defer w.Close()
	if _, err := io.Copy(w, r); err != nil {
		return errdefs.Wrap(errdefs.ErrInvalid, fmt.Sprintf("image archive entry %q", name), err)
	}
	d := w.Digest()
	existed := l.rt.store.HasBlob(d)
	d, err = w.Commit(expected, size)
	if err != nil {
		return fmt.Errorf("image archive entry %q: %w", name, err)
	}
	if !existed {
		l.added = append(l.added, d)
	}
	l.blobs[name] = d
	return nil
}

// file returns an archive file's content, following symlinks, from memory
// or from the blob store.
func (l *loader) file(name string) ([]byte, error) {
	name = l.resolve(name)
	if b, ok := l.files[name]; ok {
		return b, nil
	}
	if d, ok := l.blobs[name]; ok {
		return l.rt.store.ReadBlob(d)
	}
	return nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("image archive: %q is missing", name))
}

func (l *loader) resolve(name string) string {
	for i := 0; i < 16; i++ {
		t, ok := l.links[name]
		if !ok {
			break
		}
		name = t
	}
	return name
}

// dockerImages reads manifest.json (docker save's format).
func (l *loader) dockerImages() ([]*imageSpec, error) {
	var dm []struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	if err := json.Unmarshal(l.files["manifest.json"], &dm); err != nil {
		return nil, errdefs.Wrap(errdefs.ErrInvalid, "image archive: manifest.json", err)
	}
	if len(dm) == 0 {
		return nil, errdefs.New(errdefs.ErrInvalid, "image archive: manifest.json lists no image")
	}
	// Manifests of the OCI layout docker 25 writes beside manifest.json,
	// by config digest, so the original manifest is kept.
	known := map[digest.Digest]ocispec.Descriptor{}
	if l.files[ocispec.ImageIndexFile] != nil {
		if descs, err := l.indexManifests(); err == nil {
			for _, d := range descs {
				if m, err := l.manifest(d.Digest); err == nil {
					known[m.Config.Digest] = d
				}
			}
		}
	}
	var out []*imageSpec
	for _, e := range dm {
		raw, err := l.file(e.Config)
		if err != nil {
			return nil, err
		}
		sp := &imageSpec{config: digest.FromBytes(raw), rawConfig: raw}
		for _, t := range e.RepoTags {
			ref, err := reference.Parse(t)
			if err != nil {
				return nil, err
			}
			sp.names = append(sp.names, ref)
		}
		if d, ok := known[sp.config]; ok {
			m, _ := l.manifest(d.Digest)
			sp.manifest, sp.mediaType, sp.layers = d.Digest, mediaTypeOf(d, m), m.Layers
		} else {
			for _, p := range e.Layers {
				d, ok := l.blobs[l.resolve(p)]
				if !ok {
					return nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("image archive: layer %q is missing", p))
				}
				sp.layers = append(sp.layers, ocispec.Descriptor{Digest: d})
			}
		}
		out = append(out, sp)
	}
	return out, nil
}

// ociImages reads index.json (an OCI image layout).
func (l *loader) ociImages() ([]*imageSpec, error) {
	descs, err := l.indexManifests()
	if err != nil {
		return nil, err
	}
	byManifest := map[digest.Digest]*imageSpec{}
	var out []*imageSpec
	for _, d := range descs {
		sp := byManifest[d.Digest]
		if sp == nil {
			m, err := l.manifest(d.Digest)
			if err != nil {
				return nil, err
			}
			raw, err := l.file("blobs/sha256/" + m.Config.Digest.Encoded())
			if err != nil {
				return nil, err
			}
			sp = &imageSpec{config: digest.FromBytes(raw), rawConfig: raw, manifest: d.Digest, mediaType: mediaTypeOf(d, m), layers: m.Layers}
			byManifest[d.Digest] = sp
			out = append(out, sp)
		}
		if n := annotatedName(d.Annotations); !n.IsZero() {
			sp.names = append(sp.names, n)
		}
	}
	return out, nil
}

// annotatedName is the image name an index entry carries: containerd's
// full-name annotation, or an org.opencontainers.image.ref.name that is a
// whole reference (skopeo and podman write those). A bare tag names no
// repository and is ignored.
func annotatedName(a map[string]string) reference.Ref {
	for _, s := range []string{a[annotationImageName], a[annotationRefName]} {
		if s == "" {
			continue
		}
		if s == a[annotationRefName] && !strings.ContainsAny(s, "/:@") {
			continue
		}
		if ref, err := reference.Parse(s); err == nil {
			return ref
		}
	}
	return reference.Ref{}
}

// indexManifests lists the image manifests of index.json, descending into
// nested indexes for the host's platform.
func (l *loader) indexManifests() ([]ocispec.Descriptor, error) {
	var idx ocispec.Index
	if err := json.Unmarshal(l.files[ocispec.ImageIndexFile], &idx); err != nil {
		return nil, errdefs.Wrap(errdefs.ErrInvalid, "image archive: index.json", err)
	}
	var out []ocispec.Descriptor
	var walk func(descs []ocispec.Descriptor, depth int) error
	walk = func(descs []ocispec.Descriptor, depth int) error {
		if depth > 4 {
			return errdefs.New(errdefs.ErrInvalid, "image archive: indexes nested too deeply")
		}
		for _, d := range descs {
			switch d.MediaType {
			case ocispec.MediaTypeImageIndex, mediaTypeDockerManifestList:
				raw, err := l.file("blobs/sha256/" + d.Digest.Encoded())
				if err != nil {
					return err
				}
				var sub ocispec.Index
				if err := json.Unmarshal(raw, &sub); err != nil {
					return errdefs.Wrap(errdefs.ErrInvalid, "image archive: nested index", err)
				}
				var match []ocispec.Descriptor
				for _, m := range sub.Manifests {
					if m.Platform == nil || platformMatches(*m.Platform) {
						if m.Annotations == nil {
							m.Annotations = d.Annotations
						}
						match = append(match, m)
						break
					}
				}
				if err := walk(match, depth+1); err != nil {
					return err
				}
			default:
				out = append(out, d)
			}
		}
		return nil
	}
	if err := walk(idx.Manifests, 0); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, errdefs.New(errdefs.ErrInvalid, "image archive: index.json lists no image for this platform")
	}
	return out, nil
}

func (l *loader) manifest(d digest.Digest) (ocispec.Manifest, error) {
	var m ocispec.Manifest
	raw, err := l.file("blobs/sha256/" + d.Encoded())
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return m, errdefs.Wrap(errdefs.ErrInvalid, fmt.Sprintf("image archive: manifest %s", d), err)
	}
	if m.Config.Digest == "" {
		return m, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("image archive: manifest %s has no config", d))
	}
	return m, nil
}

func mediaTypeOf(d ocispec.Descriptor, m ocispec.Manifest) string {
	if m.MediaType != "" {
		return m.MediaType
	}
	if d.MediaType != "" {
		return d.MediaType
	}
	return ocispec.MediaTypeImageManifest
}

// record builds the image record of sp, storing the config and (when the
// archive had none) a manifest.
func (l *loader) record(sp *imageSpec) (*store.Image, error) {
	var cfg ocispec.Image
	if err := json.Unmarshal(sp.rawConfig, &cfg); err != nil {
		return nil, errdefs.Wrap(errdefs.ErrInvalid, "image archive: config", err)
	}
	if len(cfg.RootFS.DiffIDs) != len(sp.layers) {
		return nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("image archive: config lists %d layers, manifest %d", len(cfg.RootFS.DiffIDs), len(sp.layers)))
	}
	cfgDigest, err := l.putBytes(sp.rawConfig)
	if err != nil {
		return nil, err
	}
	rec := &store.Image{ID: cfgDigest, Created: time.Now().UTC()}
	chains := store.ChainIDs(cfg.RootFS.DiffIDs)
	for i, d := range sp.layers {
		if !l.rt.store.HasBlob(d.Digest) {
			return nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("image archive: layer blob %s is missing", d.Digest))
		}
		mt := d.MediaType
		if mt == "" {
			mt, d.Size, err = l.layerMediaType(d.Digest)
			if err != nil {
				return nil, err
			}
		}
		rec.Layers = append(rec.Layers, store.ImageLayer{Digest: d.Digest, MediaType: mt, Size: d.Size, DiffID: cfg.RootFS.DiffIDs[i], ChainID: chains[i]})
	}
	if sp.manifest == "" {
		m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest,
			Config: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: cfgDigest, Size: int64(len(sp.rawConfig))}}
		m.SchemaVersion = 2
		for _, il := range rec.Layers {
			m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: il.MediaType, Digest: il.Digest, Size: il.Size})
		}
		raw, err := json.Marshal(m)
		if err != nil {
			return nil, err
		}
		if sp.manifest, err = l.putBytes(raw); err != nil {
			return nil, err
		}
		sp.mediaType = m.MediaType
	}
	rec.ManifestDigest, rec.ManifestMediaType = sp.manifest, sp.mediaType
	return rec, nil
}

// putBytes stores a small blob, remembering it for discard if it is new.
func (l *loader) putBytes(b []byte) (digest.Digest, error) {
	d := digest.FromBytes(b)
	existed := l.rt.store.HasBlob(d)
	if _, err := l.rt.store.PutBlobBytes(l.lease, b); err != nil {
		return "", err
	}
	if !existed {
		l.added = append(l.added, d)
	}
	return d, nil
}

// layerMediaType tells a stored layer blob's OCI media type from its
// compression, and its size.
func (l *loader) layerMediaType(d digest.Digest) (string, int64, error) {
	f, err := l.rt.store.OpenBlob(d)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	head := make([]byte, 8)
	n, _ := io.ReadFull(f, head)
	st, err := f.Stat()
	if err != nil {
		return "", 0, err
	}
	switch archive.DetectCompression(head[:n]) {
	case archive.Gzip:
		return ocispec.MediaTypeImageLayerGzip, st.Size(), nil
	case archive.Zstd:
		return ocispec.MediaTypeImageLayerZstd, st.Size(), nil
	case archive.Uncompressed:
		return ocispec.MediaTypeImageLayer, st.Size(), nil
	}
	return "", 0, errdefs.New(errdefs.ErrNotSupported, fmt.Sprintf("layer %s: unsupported compression", d))
}

// unpack makes the layer il (on top of the chain parent) from its blob.
func (l *loader) unpack(ctx context.Context, parent digest.Digest, il store.ImageLayer) error {
	created := false
	_, err := l.rt.store.CreateLayer(ctx, l.lease, parent, il.DiffID, func(dir string) (digest.Digest, int64, error) {
		created = true
		f, err := l.rt.store.OpenBlob(il.Digest)
		if err != nil {
			return "", 0, err
		}
		defer f.Close()
		res, err := archive.Apply(ctx, dir, f, archive.ApplyOptions{MaxSize: l.rt.opts.maxLayerSize})
		return res.DiffID, res.Size, err
	})
	if err != nil {
		return fmt.Errorf("layer %s: %w", il.Digest, err)
	}
	if created {
		l.mu.Lock()
		l.layers = append(l.layers, il.ChainID)
		l.mu.Unlock()
	}
	return nil
}

// discard removes the blobs and layers a failed load stored, unless an
// image (of another process) uses them by now.
func (l *loader) discard() {
	l.lease.Release()
	unlock, err := l.rt.store.Lock()
	if err != nil {
		return
	}
	defer unlock()
	used, _ := l.rt.store.LayerUsers()
	for _, c := range l.layers {
		if used[c] == 0 {
			_ = l.rt.store.DeleteLayer(c)
		}
	}
	images, _ := l.rt.store.Images()
	usedBlobs := map[digest.Digest]bool{}
	for _, im := range images {
		for _, b := range im.Blobs() {
			usedBlobs[b] = true
		}
	}
	for _, b := range l.added {
		if !usedBlobs[b] {
			_ = l.rt.store.DeleteBlob(b)
		}
	}
}

const mediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"

// platformMatches reports whether p suits this host (linux and its
// architecture).
func platformMatches(p ocispec.Platform) bool {
	return (p.OS == "" || p.OS == "linux") && (p.Architecture == "" || p.Architecture == goruntime.GOARCH)
}
