package testutil

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Media types of Docker's schema2 (OCI's are in image-spec).
const (
	DockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	DockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	DockerConfig       = "application/vnd.docker.container.image.v1+json"
	DockerLayer        = "application/vnd.docker.image.rootfs.diff.tar.gzip"
)

// TestLayer describes a synthetic layer: files (path -> content; a path
// ending in "/" is a directory) and a compression ("gzip", "zstd" or
// "none"; default gzip).
type TestLayer struct {
	Files       map[string]string
	Compression string
	// RandomBytes adds a file "random-<n>" of that many pseudo-random
	// (incompressible) bytes, seeded by Seed.
	RandomBytes int
	Seed        int64
	// TarFile, when set, is a plain tar used as the layer as it is
	// (BusyboxTar makes a base a container can run); the fields above
	// are ignored then.
	TarFile string
}

// TestImage describes a synthetic image.
type TestImage struct {
	Layers []TestLayer
	// Platform defaults to linux on the host's architecture.
	Platform ocispec.Platform
	// Docker uses Docker schema2 media types instead of OCI's.
	Docker bool
	// Cmd is the config's Cmd.
	Cmd []string
}

// BuiltLayer is a layer of a BuiltImage.
type BuiltLayer struct {
	Digest    digest.Digest
	DiffID    digest.Digest
	MediaType string
	Blob      []byte
}

// BuiltImage is a synthetic image: its manifest, config and layer blobs.
type BuiltImage struct {
	Manifest       []byte
	ManifestDigest digest.Digest
	MediaType      string
	Config         []byte
	ConfigDigest   digest.Digest
	Layers         []BuiltLayer
	Platform       ocispec.Platform
}

// Blobs returns the image's config and layer blobs by digest.
func (b *BuiltImage) Blobs() map[digest.Digest][]byte {
	out := map[digest.Digest][]byte{b.ConfigDigest: b.Config}
	for _, l := range b.Layers {
		out[l.Digest] = l.Blob
	}
	return out
}

// DiffIDs are the image's layer diffIDs.
func (b *BuiltImage) DiffIDs() []digest.Digest {
	var out []digest.Digest
	for _, l := range b.Layers {
		out = append(out, l.DiffID)
	}
	return out
}

// Descriptor describes the image's manifest, for an index.
func (b *BuiltImage) Descriptor() ocispec.Descriptor {
	p := b.Platform
	return ocispec.Descriptor{MediaType: b.MediaType, Digest: b.ManifestDigest, Size: int64(len(b.Manifest)), Platform: &p}
}

var fixedTime = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// BuildImage makes a synthetic image in memory. Its bytes are the same on
// every call for the same description.
func BuildImage(t testing.TB, spec TestImage) *BuiltImage {
	t.Helper()
	p := spec.Platform
	if p.OS == "" {
		p = ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH}
	}
	img := &BuiltImage{Platform: p}
	cfg := ocispec.Image{Created: &fixedTime, Platform: p, RootFS: ocispec.RootFS{Type: "layers"}}
	cfg.Config.Cmd = spec.Cmd
	for i, l := range spec.Layers {
		plain := layerTar(t, l)
		var blob []byte
		mt := ocispec.MediaTypeImageLayerGzip
		switch l.Compression {
		case "", "gzip":
			var b bytes.Buffer
			zw, _ := gzip.NewWriterLevel(&b, gzip.BestSpeed)
			zw.Write(plain)
			zw.Close()
			blob = b.Bytes()
			if spec.Docker {
				mt = DockerLayer
			}
		case "zstd":
			enc, _ := zstd.NewWriter(nil)
			blob = enc.EncodeAll(plain, nil)
			enc.Close()
			mt = ocispec.MediaTypeImageLayerZstd
		case "none":
			blob = plain
			mt = ocispec.MediaTypeImageLayer
		default:
			t.Fatalf("layer %d: unknown compression %q", i, l.Compression)
		}
		bl := BuiltLayer{Digest: digest.FromBytes(blob), DiffID: digest.FromBytes(plain), MediaType: mt, Blob: blob}
		img.Layers = append(img.Layers, bl)
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, bl.DiffID)
		cfg.History = append(cfg.History, ocispec.History{Created: &fixedTime, CreatedBy: fmt.Sprintf("layer %d", i)})
	}
	var err error
	if img.Config, err = json.Marshal(cfg); err != nil {
		t.Fatal(err)
	}
	img.ConfigDigest = digest.FromBytes(img.Config)
	m := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		Config: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: img.ConfigDigest, Size: int64(len(img.Config))}}
	if spec.Docker {
		m.MediaType, m.Config.MediaType = DockerManifest, DockerConfig
	}
	for _, l := range img.Layers {
		m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: l.MediaType, Digest: l.Digest, Size: int64(len(l.Blob))})
	}
	if img.Manifest, err = json.Marshal(m); err != nil {
		t.Fatal(err)
	}
	img.ManifestDigest, img.MediaType = digest.FromBytes(img.Manifest), m.MediaType
	return img
}

// layerTar writes the files of l as a deterministic tar.
func layerTar(t testing.TB, l TestLayer) []byte {
	if l.TarFile != "" {
		b, err := os.ReadFile(l.TarFile)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	var names []string
	for n := range l.Files {
		names = append(names, n)
	}
	sort.Strings(names)
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, n := range names {
		hdr := &tar.Header{Name: n, Mode: 0o644, ModTime: fixedTime, Typeflag: tar.TypeReg, Size: int64(len(l.Files[n])), Format: tar.FormatPAX}
		if n[len(n)-1] == '/' {
			hdr.Typeflag, hdr.Mode, hdr.Size = tar.TypeDir, 0o755, 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if hdr.Typeflag == tar.TypeReg {
			tw.Write([]byte(l.Files[n]))
		}
	}
	if l.RandomBytes > 0 {
		data := make([]byte, l.RandomBytes)
		rand.New(rand.NewSource(l.Seed)).Read(data)
		hdr := &tar.Header{Name: fmt.Sprintf("random-%d", l.Seed), Mode: 0o644, ModTime: fixedTime, Size: int64(len(data)), Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		tw.Write(data)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// BuildIndex makes an index (an OCI index, or a Docker manifest list when
// docker is set) of images, and returns its bytes and media type.
func BuildIndex(t testing.TB, docker bool, images ...*BuiltImage) ([]byte, string) {
	t.Helper()
	idx := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex}
	if docker {
		idx.MediaType = DockerManifestList
	}
	for _, im := range images {
		idx.Manifests = append(idx.Manifests, im.Descriptor())
	}
	b, err := json.Marshal(idx)
	if err != nil {
		t.Fatal(err)
	}
	return b, idx.MediaType
}

// WriteOCILayout writes images into an OCI image layout at dir, each
// under its tag in index.json (org.opencontainers.image.ref.name), as
// skopeo and umoci read it (oci:DIR:TAG).
func WriteOCILayout(t testing.TB, dir string, tags map[string]*BuiltImage) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755); err != nil {
		t.Fatal(err)
	}
	put := func(d digest.Digest, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, "blobs", "sha256", d.Encoded()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	idx := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex}
	var names []string
	for tag := range tags {
		names = append(names, tag)
	}
	sort.Strings(names)
	for _, tag := range names {
		im := tags[tag]
		for d, b := range im.Blobs() {
			put(d, b)
		}
		put(im.ManifestDigest, im.Manifest)
		desc := im.Descriptor()
		desc.Annotations = map[string]string{ocispec.AnnotationRefName: tag}
		idx.Manifests = append(idx.Manifests, desc)
	}
	b, _ := json.Marshal(idx)
	if err := os.WriteFile(filepath.Join(dir, ocispec.ImageIndexFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ocispec.ImageLayoutFile), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644); err != nil {
		t.Fatal(err)
	}
}

// OCIArchive returns an OCI layout tar (an oci-archive, as berth Load
// reads) of the images, named by full references (the
// org.opencontainers.image.ref.name annotation).
func OCIArchive(t testing.TB, names map[string]*BuiltImage) []byte {
	t.Helper()
	dir := t.TempDir()
	WriteOCILayout(t, dir, names)
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		hdr, err := tar.FileInfoHeader(fi, "")
		if err != nil {
			return err
		}
		hdr.Name = filepath.ToSlash(rel)
		if fi.IsDir() {
			hdr.Name += "/"
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if fi.Mode().IsRegular() {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			tw.Write(data)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	tw.Close()
	return b.Bytes()
}

// PushRaw uploads blobs and then manifest (with media type mt) as
// repo:ref to the plain-HTTP registry at addr, with the bare distribution
// API: a client independent of berth's, for fixtures berth's own push
// cannot make (indexes with foreign platforms, hand-made manifests).
func PushRaw(t testing.TB, addr, repo, ref string, blobs map[digest.Digest][]byte, manifest []byte, mt string) {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{Proxy: nil}}
	defer client.CloseIdleConnections()
	base := "http://" + addr + "/v2/" + repo
	for d, b := range blobs {
		resp, err := client.Post(base+"/blobs/uploads/", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("start upload of %s: %s", d, resp.Status)
		}
		loc, err := resp.Location()
		if err != nil {
			t.Fatal(err)
		}
		q := loc.Query()
		q.Set("digest", d.String())
		loc.RawQuery = q.Encode()
		putOK(t, client, loc.String(), "application/octet-stream", b)
	}
	putOK(t, client, base+"/manifests/"+url.PathEscape(ref), mt, manifest)
}

func putOK(t testing.TB, client *http.Client, u, ct string, body []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, u, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", ct)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT %s: %s: %s", u, resp.Status, msg)
	}
}
