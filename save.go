package berth

import (
	"archive/tar"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-run/berth/internal/errdefs"
	"github.com/berth-run/berth/internal/reference"
)

// ArchiveFormat is the format of an image archive (Save, Load).
type ArchiveFormat string

const (
	// DockerArchive is `docker save`'s format: manifest.json with the
	// configs, layers and tags, laid out as an OCI image layout too (as
	// docker 25 and later write it), so both docker and OCI tools read it.
	DockerArchive ArchiveFormat = "docker-archive"
	// OCIArchive is a tar of an OCI image layout (index.json, oci-layout,
	// blobs/), as `podman save --format oci-archive`.
	OCIArchive ArchiveFormat = "oci-archive"
)

// Annotations berth reads and writes on index.json entries of archives.
const (
	annotationImageName = "io.containerd.image.name" // the full name, e.g. docker.io/library/busybox:latest
	annotationRefName   = ocispec.AnnotationRefName  // the tag, e.g. latest
)

// SaveOption configures Save.
type SaveOption func(*saveOptions)

type saveOptions struct{ format ArchiveFormat }

// WithFormat chooses the archive format. Default: DockerArchive.
func WithFormat(f ArchiveFormat) SaveOption { return func(o *saveOptions) { o.format = f } }

// Save writes the images named (by name or ID) into one archive on w, as
// `docker save`. A name keeps its tag in the archive; an image given by ID
// carries all its tags. Unknown images fail before anything is written.
func (r *Runtime) Save(ctx context.Context, w io.Writer, names []string, options ...SaveOption) error {
	o := saveOptions{format: DockerArchive}
	for _, opt := range options {
		opt(&o)
	}
	if o.format != DockerArchive && o.format != OCIArchive {
		return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("unknown archive format %q (docker-archive or oci-archive)", o.format))
	}
	if len(names) == 0 {
		return errdefs.New(errdefs.ErrInvalid, "save: no image given")
	}
	type entry struct {
		im   *Image
		tags []string // full names
	}
	var entries []*entry
	byID := map[digest.Digest]*entry{}
	for _, n := range names {
		im, err := r.Image(ctx, n)
		if err != nil {
			return err
		}
		e := byID[im.rec.ID]
		if e == nil {
			e = &entry{im: im}
			byID[im.rec.ID] = e
			entries = append(entries, e)
		}
		if ref, err := reference.Parse(n); err == nil && contains(im.tags, ref.String()) {
			e.tags = appendUnique(e.tags, ref.String())
		} else {
			for _, t := range im.tags {
				e.tags = appendUnique(e.tags, t)
			}
		}
	}
	tw := tar.NewWriter(w)
	written := map[digest.Digest]bool{}
	writeBlob := func(d digest.Digest) error {
		if written[d] {
			return nil
		}
		written[d] = true
		f, err := r.store.OpenBlob(d)
		if err != nil {
			return err
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(fileHeader("blobs/sha256/"+d.Encoded(), st.Size())); err != nil {
			return err
		}
		_, err = io.Copy(tw, f)
		return err
	}
	index := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex}
	type dockerManifest struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	var dm []dockerManifest
	if err := tw.WriteHeader(dirHeader("blobs/")); err != nil {
		return err
	}
	if err := tw.WriteHeader(dirHeader("blobs/sha256/")); err != nil {
		return err
	}
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		for _, d := range e.im.rec.Blobs() {
			if err := writeBlob(d); err != nil {
				return fmt.Errorf("save %s: %w", e.im.ID(), err)
			}
		}
		man := ocispec.Descriptor{MediaType: e.im.rec.ManifestMediaType, Digest: e.im.rec.ManifestDigest}
		if st, err := r.store.OpenBlob(man.Digest); err == nil {
			if fi, err := st.Stat(); err == nil {
				man.Size = fi.Size()
			}
			st.Close()
		}
		if len(e.tags) == 0 {
			index.Manifests = append(index.Manifests, man)
		}
		var familiarTags []string
		for _, t := range e.tags {
			d := man
			ref, _ := reference.Parse(t)
			d.Annotations = map[string]string{annotationImageName: ref.String(), annotationRefName: ref.Tag()}
			index.Manifests = append(index.Manifests, d)
			familiarTags = append(familiarTags, ref.Familiar())
		}
		m := dockerManifest{Config: "blobs/sha256/" + e.im.rec.ID.Encoded(), RepoTags: familiarTags}
		for _, l := range e.im.rec.Layers {
			m.Layers = append(m.Layers, "blobs/sha256/"+l.Digest.Encoded())
		}
		dm = append(dm, m)
	}
	files := []struct {
		name string
		v    any
	}{
		{ocispec.ImageLayoutFile, ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion}},
		{ocispec.ImageIndexFile, index},
	}
	if o.format == DockerArchive {
		files = append(files, struct {
			name string
			v    any
		}{"manifest.json", dm})
	}
	for _, f := range files {
		b, err := json.Marshal(f.v)
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(fileHeader(f.name, int64(len(b)))); err != nil {
			return err
		}
		if _, err := tw.Write(b); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	for _, e := range entries {
		r.event(ctx, "image", "save", e.im.ID(), nil)
	}
	return nil
}

// Save writes the image, with all its tags, into an archive (see
// Runtime.Save).
func (im *Image) Save(ctx context.Context, w io.Writer, format ArchiveFormat) error {
	return im.rt.Save(ctx, w, []string{im.ID()}, WithFormat(format))
}

// archiveTime is the modification time of entries berth writes into image
// archives: fixed, so that saving the same images twice gives the same
// bytes.
var archiveTime = time.Unix(0, 0).UTC()

func fileHeader(name string, size int64) *tar.Header {
	return &tar.Header{Typeflag: tar.TypeReg, Name: name, Size: size, Mode: 0o444, ModTime: archiveTime, Format: tar.FormatPAX}
}

func dirHeader(name string) *tar.Header {
	return &tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755, ModTime: archiveTime, Format: tar.FormatPAX}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func appendUnique(list []string, s string) []string {
	if contains(list, s) {
		return list
	}
	return append(list, s)
}
