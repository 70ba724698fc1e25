package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-run/berth/internal/errdefs"
	"github.com/berth-run/berth/internal/reference"
)

// Docker's media types (OCI's are in image-spec).
const (
	MediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	MediaTypeDockerConfig       = "application/vnd.docker.container.image.v1+json"
	MediaTypeDockerLayer        = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	MediaTypeDockerForeignLayer = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"

	mediaTypeSchema1       = "application/vnd.docker.distribution.manifest.v1+json"
	mediaTypeSchema1Signed = "application/vnd.docker.distribution.manifest.v1+prettyjws"
)

// MaxManifestSize bounds a manifest or index read from a registry.
const MaxManifestSize = 8 << 20

// MaxConfigSize bounds an image config read from a registry.
const MaxConfigSize = 64 << 20

var manifestAccept = strings.Join([]string{
	ocispec.MediaTypeImageIndex, MediaTypeDockerManifestList,
	ocispec.MediaTypeImageManifest, MediaTypeDockerManifest,
	mediaTypeSchema1Signed, mediaTypeSchema1,
}, ", ")

// Manifest is a manifest or an index as the registry sent it.
type Manifest struct {
	Raw       []byte
	MediaType string
	Digest    digest.Digest
}

// IsIndex reports whether mt is an OCI index or a Docker manifest list.
func IsIndex(mt string) bool {
	return mt == ocispec.MediaTypeImageIndex || mt == MediaTypeDockerManifestList
}

// IsImageManifest reports whether mt is an OCI or Docker schema2 image
// manifest.
func IsImageManifest(mt string) bool {
	return mt == ocispec.MediaTypeImageManifest || mt == MediaTypeDockerManifest
}

// GetManifest fetches the manifest ref (a tag or a digest) names. Content
// fetched by digest is verified against it.
func (r *Repo) GetManifest(ctx context.Context, ref string) (*Manifest, error) {
	what := "manifest for " + r.display + ":" + ref
	want, derr := digest.Parse(ref)
	if derr == nil {
		what = "manifest for " + r.display + "@" + ref
	}
	resp, err := r.do(ctx, http.MethodGet, r.url("manifests", ref), http.Header{"Accept": {manifestAccept}}, nil, 0, http.StatusOK)
	if err != nil {
		return nil, r.c.classify(r.ep, what, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxManifestSize+1))
	if err != nil {
		return nil, r.c.classify(r.ep, what, err)
	}
	if len(b) > MaxManifestSize {
		return nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("%s: larger than %d bytes", what, MaxManifestSize))
	}
	m := &Manifest{Raw: b, Digest: digest.FromBytes(b), MediaType: detectMediaType(resp.Header.Get("Content-Type"), b)}
	if derr == nil && m.Digest != want {
		return nil, errdefs.New(errdefs.ErrCorrupt, fmt.Sprintf("%s: the registry sent content with digest %s", what, m.Digest))
	}
	return m, nil
}

// detectMediaType tells what a manifest is: by its own mediaType field,
// then the Content-Type header, then its shape.
func detectMediaType(header string, b []byte) string {
	var probe struct {
		SchemaVersion int             `json:"schemaVersion"`
		MediaType     string          `json:"mediaType"`
		Manifests     json.RawMessage `json:"manifests"`
		Config        json.RawMessage `json:"config"`
		FSLayers      json.RawMessage `json:"fsLayers"`
	}
	_ = json.Unmarshal(b, &probe)
	if probe.MediaType != "" {
		return probe.MediaType
	}
	mt, _, _ := mime.ParseMediaType(header)
	switch {
	case IsIndex(mt) || IsImageManifest(mt) || mt == mediaTypeSchema1 || mt == mediaTypeSchema1Signed:
		return mt
	case probe.SchemaVersion == 1 || probe.FSLayers != nil:
		return mediaTypeSchema1
	case probe.Manifests != nil:
		return ocispec.MediaTypeImageIndex
	case probe.Config != nil:
		return ocispec.MediaTypeImageManifest
	}
	return mt
}

// Resolved is the image manifest a reference names for a platform.
type Resolved struct {
	// Repo is where the manifest was found; fetch the blobs from there.
	Repo *Repo
	// Digest is what the reference resolved to: the index's digest when
	// it names an index (docker's repo digest), else the manifest's.
	Digest digest.Digest
	// Index is the index the manifest was chosen from, or nil.
	Index *Manifest
	// Manifest is the image manifest.
	Manifest *Manifest
	// Config and Layers are the manifest's descriptors.
	Config ocispec.Descriptor
	Layers []ocispec.Descriptor
}

// Resolve finds the image manifest ref names for platform, on the first
// server that has it: the mirrors of Docker Hub in order, then the
// registry. A failing mirror is skipped, as docker does.
func (c *Client) Resolve(ctx context.Context, ref reference.Ref, platform ocispec.Platform) (*Resolved, error) {
	eps, err := c.pullEndpoints(ref.Domain())
	if err != nil {
		return nil, err
	}
	var mirrorErrs []error
	for _, ep := range eps {
		res, err := c.resolveAt(ctx, ep, ref, platform)
		if err == nil {
			return res, nil
		}
		if !ep.mirror || ctx.Err() != nil {
			if len(mirrorErrs) > 0 && !errors.Is(err, errdefs.ErrNotFound) {
				err = fmt.Errorf("%w (mirrors: %w)", err, errors.Join(mirrorErrs...))
			}
			return nil, err
		}
		mirrorErrs = append(mirrorErrs, fmt.Errorf("%s: %w", ep.host(), err))
	}
	return nil, errors.Join(mirrorErrs...)
}

func (c *Client) resolveAt(ctx context.Context, ep endpoint, ref reference.Ref, platform ocispec.Platform) (*Resolved, error) {
	r, err := c.openRepo(ctx, ep, ref.Path(), ref.FamiliarName(), false, nil)
	if err != nil {
		return nil, err
	}
	id := ref.Tag()
	if d := ref.Digest(); d != "" {
		id = d.String()
	}
	m, err := r.GetManifest(ctx, id)
	if err != nil {
		return nil, err
	}
	res := &Resolved{Repo: r, Digest: m.Digest}
	for depth := 0; IsIndex(m.MediaType); depth++ {
		if depth == 4 {
			return nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("%s: indexes nested too deeply", ref.Familiar()))
		}
		var idx ocispec.Index
		if err := json.Unmarshal(m.Raw, &idx); err != nil {
			return nil, errdefs.Wrap(errdefs.ErrInvalid, fmt.Sprintf("index %s of %s", m.Digest, ref.Familiar()), err)
		}
		d, ok := selectManifest(idx.Manifests, platform)
		if !ok {
			return nil, errdefs.New(errdefs.ErrNotFound, fmt.Sprintf("no matching manifest for %s in the manifest list entries of %s", FormatPlatform(platform), ref.Familiar()))
		}
		if err := d.Digest.Validate(); err != nil {
			return nil, errdefs.Wrap(errdefs.ErrInvalid, fmt.Sprintf("index %s of %s", m.Digest, ref.Familiar()), err)
		}
		if res.Index == nil {
			res.Index = m
		}
		if m, err = r.GetManifest(ctx, d.Digest.String()); err != nil {
			return nil, err
		}
	}
	if m.MediaType == mediaTypeSchema1 || m.MediaType == mediaTypeSchema1Signed {
		return nil, errdefs.New(errdefs.ErrNotSupported, fmt.Sprintf("%s is a Docker image manifest of schema 1, which berth (like docker since 20.10) does not pull: push it again with a current client", ref.Familiar()))
	}
	if !IsImageManifest(m.MediaType) {
		return nil, errdefs.New(errdefs.ErrNotSupported, fmt.Sprintf("%s: manifest media type %q is not a container image", ref.Familiar(), m.MediaType))
	}
	cfg, layers, err := ParseImageManifest(m.Raw)
	if err != nil {
		return nil, fmt.Errorf("%s: manifest %s: %w", ref.Familiar(), m.Digest, err)
	}
	res.Manifest, res.Config, res.Layers = m, cfg, layers
	return res, nil
}

// ParseImageManifest reads the config and layer descriptors of an OCI or
// Docker schema2 image manifest and checks that berth can use them.
func ParseImageManifest(raw []byte) (ocispec.Descriptor, []ocispec.Descriptor, error) {
	var m ocispec.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return m.Config, nil, errdefs.Wrap(errdefs.ErrInvalid, "malformed manifest", err)
	}
	if m.SchemaVersion != 2 {
		return m.Config, nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("manifest schema version %d, want 2", m.SchemaVersion))
	}
	if err := m.Config.Digest.Validate(); err != nil {
		return m.Config, nil, errdefs.Wrap(errdefs.ErrInvalid, "config descriptor", err)
	}
	switch m.Config.MediaType {
	case ocispec.MediaTypeImageConfig, MediaTypeDockerConfig, "":
	default:
		return m.Config, nil, errdefs.New(errdefs.ErrNotSupported, fmt.Sprintf("not a container image: the config has media type %q", m.Config.MediaType))
	}
	if m.Config.Size < 0 || m.Config.Size > MaxConfigSize {
		return m.Config, nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("config size %d is out of range", m.Config.Size))
	}
	for _, l := range m.Layers {
		if err := l.Digest.Validate(); err != nil {
			return m.Config, nil, errdefs.Wrap(errdefs.ErrInvalid, "layer descriptor", err)
		}
		if l.Size < 0 {
			return m.Config, nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("layer %s has a negative size", l.Digest))
		}
		if err := checkLayerMediaType(l); err != nil {
			return m.Config, nil, err
		}
	}
	return m.Config, m.Layers, nil
}

func checkLayerMediaType(l ocispec.Descriptor) error {
	mt := l.MediaType
	switch {
	case mt == MediaTypeDockerForeignLayer || strings.Contains(mt, "nondistributable"):
		return errdefs.New(errdefs.ErrNotSupported, fmt.Sprintf("layer %s is a foreign layer (%s), which berth does not fetch", l.Digest, mt))
	case mt == "", mt == MediaTypeDockerLayer,
		strings.HasPrefix(mt, ocispec.MediaTypeImageLayer), // tar, tar+gzip, tar+zstd
		strings.HasPrefix(mt, "application/vnd.docker.image.rootfs.diff.tar"):
		return nil
	}
	return errdefs.New(errdefs.ErrNotSupported, fmt.Sprintf("layer %s has media type %q, which is not a container image layer", l.Digest, mt))
}
