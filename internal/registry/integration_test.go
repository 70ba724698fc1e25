package registry

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sort"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-run/berth/internal/errdefs"
	"github.com/berth-run/berth/internal/reference"
	"github.com/berth-run/berth/internal/testutil"
)

func mustRef(t *testing.T, s string) reference.Ref {
	t.Helper()
	r, err := reference.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestReferenceRegistry runs the client against Debian's docker-registry:
// resolve, index platform selection, blobs, upload, mount, tags, catalog.
func TestReferenceRegistry(t *testing.T) {
	reg := testutil.StartRegistry(t, testutil.RegistryOptions{})
	ctx := context.Background()
	img := testutil.BuildImage(t, testutil.TestImage{Layers: []testutil.TestLayer{
		{Files: map[string]string{"a/": "", "a/one": "1"}},
		{Files: map[string]string{"b": "2"}, Compression: "zstd"},
		{Files: map[string]string{"c": "3"}, Compression: "none"},
	}})
	other := testutil.BuildImage(t, testutil.TestImage{Platform: ocispec.Platform{OS: "linux", Architecture: "riscv64"},
		Layers: []testutil.TestLayer{{Files: map[string]string{"riscv": "x"}}}})
	testutil.PushRaw(t, reg.Addr, "multi/img", "v1", img.Blobs(), img.Manifest, img.MediaType)
	idx, idxType := testutil.BuildIndex(t, false, other, img)
	blobs := other.Blobs()
	for d, b := range img.Blobs() {
		blobs[d] = b
	}
	testutil.PushRaw(t, reg.Addr, "multi/img", other.ManifestDigest.String(), blobs, other.Manifest, other.MediaType)
	testutil.PushRaw(t, reg.Addr, "multi/img", img.ManifestDigest.String(), nil, img.Manifest, img.MediaType)
	testutil.PushRaw(t, reg.Addr, "multi/img", "idx", nil, idx, idxType)

	c := New(Options{})
	defer c.Close()

	res, err := c.Resolve(ctx, mustRef(t, reg.Addr+"/multi/img:v1"), DefaultPlatform())
	if err != nil {
		t.Fatal(err)
	}
	if res.Digest != img.ManifestDigest || res.Index != nil || len(res.Layers) != 3 || res.Config.Digest != img.ConfigDigest {
		t.Fatalf("resolve v1: %+v", res)
	}
	res, err = c.Resolve(ctx, mustRef(t, reg.Addr+"/multi/img:idx"), DefaultPlatform())
	if err != nil {
		t.Fatal(err)
	}
	if res.Index == nil || res.Digest != digest.FromBytes(idx) || res.Manifest.Digest != img.ManifestDigest {
		t.Fatalf("resolve idx for the host: digest %s manifest %s", res.Digest, res.Manifest.Digest)
	}
	res, err = c.Resolve(ctx, mustRef(t, reg.Addr+"/multi/img:idx"), ocispec.Platform{OS: "linux", Architecture: "riscv64"})
	if err != nil || res.Manifest.Digest != other.ManifestDigest {
		t.Fatalf("resolve idx for riscv64: %v %v", res, err)
	}
	_, err = c.Resolve(ctx, mustRef(t, reg.Addr+"/multi/img:idx"), ocispec.Platform{OS: "linux", Architecture: "s390x"})
	if !errors.Is(err, errdefs.ErrNotFound) || !strings.Contains(err.Error(), "no matching manifest for linux/s390x") {
		t.Fatalf("no platform: %v", err)
	}
	// By digest, too.
	res, err = c.Resolve(ctx, mustRef(t, reg.Addr+"/multi/img@"+img.ManifestDigest.String()), DefaultPlatform())
	if err != nil || res.Manifest.Digest != img.ManifestDigest {
		t.Fatalf("resolve by digest: %v", err)
	}

	// Unknown tags and repositories are ErrNotFound in docker's words.
	_, err = c.Resolve(ctx, mustRef(t, reg.Addr+"/multi/img:nosuch"), DefaultPlatform())
	if !errors.Is(err, errdefs.ErrNotFound) || !strings.Contains(err.Error(), "manifest for "+reg.Addr+"/multi/img:nosuch not found: manifest unknown") {
		t.Fatalf("unknown tag: %v", err)
	}
	_, err = c.Resolve(ctx, mustRef(t, reg.Addr+"/nosuch/repo:v1"), DefaultPlatform())
	if !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("unknown repo: %v", err)
	}

	// Blobs stream unverified; FetchBlob verifies.
	body, _, err := res.Repo.OpenBlob(ctx, img.Layers[1].Digest)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(body)
	body.Close()
	if !bytes.Equal(got, img.Layers[1].Blob) {
		t.Fatal("blob content differs")
	}
	cfg, err := res.Repo.FetchBlob(ctx, res.Config, MaxConfigSize)
	if err != nil || !bytes.Equal(cfg, img.Config) {
		t.Fatalf("config: %v", err)
	}
	_, _, err = res.Repo.OpenBlob(ctx, digest.FromString("nothing"))
	if !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("missing blob: %v", err)
	}

	// Push: HEAD, mount from the repository that has it, upload, manifest.
	dst, err := c.OpenPush(ctx, mustRef(t, reg.Addr+"/copy/img:v2"), []string{"multi/img"})
	if err != nil {
		t.Fatal(err)
	}
	has, err := dst.HasBlob(ctx, img.Layers[0].Digest)
	if err != nil || has {
		t.Fatalf("HasBlob before push = %v, %v", has, err)
	}
	mounted, loc, err := dst.Mount(ctx, img.Layers[0].Digest, "multi/img")
	if err != nil || !mounted {
		t.Fatalf("mount = %v %q %v", mounted, loc, err)
	}
	mounted, loc, err = dst.Mount(ctx, digest.FromBytes(img.Config), "nosuch/repo")
	if err != nil || mounted {
		t.Fatalf("mount from a repo without it = %v %v", mounted, err)
	}
	if err := dst.Upload(ctx, loc, img.ConfigDigest, int64(len(img.Config)), bytes.NewReader(img.Config)); err != nil {
		t.Fatal(err)
	}
	for _, l := range img.Layers[1:] {
		if err := dst.Upload(ctx, "", l.Digest, int64(len(l.Blob)), bytes.NewReader(l.Blob)); err != nil {
			t.Fatal(err)
		}
	}
	// A wrong digest is refused by the registry.
	if err := dst.Upload(ctx, "", digest.FromString("x"), 3, strings.NewReader("abc")); err == nil {
		t.Fatal("upload with a wrong digest succeeded")
	}
	d, err := dst.PutManifest(ctx, "v2", img.MediaType, img.Manifest)
	if err != nil || d != img.ManifestDigest {
		t.Fatalf("put manifest = %s, %v", d, err)
	}

	tags, err := c.Tags(ctx, mustRef(t, reg.Addr+"/multi/img"))
	sort.Strings(tags)
	if err != nil || strings.Join(tags, ",") != "idx,v1" {
		t.Fatalf("tags = %v, %v", tags, err)
	}
	repos, err := c.Catalog(ctx, reg.Addr, 0)
	if err != nil || strings.Join(repos, ",") != "copy/img,multi/img" {
		t.Fatalf("catalog = %v, %v", repos, err)
	}
	found, err := c.Search(ctx, reg.Addr+"/MULTI", 0)
	if err != nil || len(found) != 1 || found[0].Name != reg.Addr+"/multi/img" {
		t.Fatalf("search = %+v, %v", found, err)
	}
}
