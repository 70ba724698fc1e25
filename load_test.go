package berth_test

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-run/berth"
	"github.com/berth-run/berth/internal/testutil"
)

type tarEntry struct {
	name     string
	body     []byte
	typeflag byte
	link     string
}

func makeTar(t *testing.T, entries ...tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		tf := e.typeflag
		if tf == 0 {
			tf = tar.TypeReg
		}
		hdr := &tar.Header{Name: e.name, Typeflag: tf, Mode: 0o644, Size: int64(len(e.body)), Linkname: e.link}
		if tf != tar.TypeReg {
			hdr.Size = 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		tw.Write(e.body)
	}
	tw.Close()
	return buf.Bytes()
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

// dockerArchive builds a docker save archive of one image whose single
// layer is layerTar (the config claims diffID).
func dockerArchive(t *testing.T, layerTar []byte, diffID digest.Digest, extra ...tarEntry) []byte {
	cfg := mustJSON(ocispec.Image{Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"},
		RootFS: ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{diffID}}})
	man := mustJSON([]map[string]any{{"Config": "cfg.json", "RepoTags": []string{"hostile:latest"}, "Layers": []string{"l/layer.tar"}}})
	entries := []tarEntry{{name: "cfg.json", body: cfg}, {name: "l/layer.tar", body: layerTar}, {name: "manifest.json", body: man}}
	return makeTar(t, append(entries, extra...)...)
}

func TestLoadRejectsBadArchives(t *testing.T) {
	testutil.RequiresRoot(t)
	rt := newRuntime(t)
	ctx := context.Background()
	importBusybox(t, rt, "busybox")
	goodLayer := makeTar(t, tarEntry{name: "hello.txt", body: []byte("hi")})
	escLayer := makeTar(t, tarEntry{name: "../../escape.txt", body: []byte("x")})
	symLayer := makeTar(t, tarEntry{name: "etc", typeflag: tar.TypeSymlink, link: "/etc"}, tarEntry{name: "etc/owned", body: []byte("x")})
	cases := []struct {
		name    string
		archive []byte
		kind    error
	}{
		{"empty", nil, berth.ErrInvalid},
		{"not a tar", []byte("definitely not a tar archive, just some text padding it out a bit"), berth.ErrInvalid},
		{"no manifest", makeTar(t, tarEntry{name: "x", body: []byte("x")}), berth.ErrInvalid},
		{"bad manifest json", makeTar(t, tarEntry{name: "manifest.json", body: []byte("{")}), berth.ErrInvalid},
		{"missing config", makeTar(t, tarEntry{name: "manifest.json", body: mustJSON([]map[string]any{{"Config": "nope.json", "Layers": []string{}}})}), berth.ErrInvalid},
		{"path escape in archive", dockerArchive(t, goodLayer, digest.FromBytes(goodLayer), tarEntry{name: "../evil", body: []byte("x")}), berth.ErrInvalid},
		{"wrong diffID", dockerArchive(t, goodLayer, digest.FromString("other")), berth.ErrCorrupt},
		{"layer escapes", dockerArchive(t, escLayer, digest.FromBytes(escLayer)), berth.ErrInvalid},
		{"layer writes through symlink", dockerArchive(t, symLayer, digest.FromBytes(symLayer)), berth.ErrInvalid},
		{"blob digest mismatch", makeTar(t, tarEntry{name: "blobs/sha256/" + digest.FromString("a").Encoded(), body: []byte("b")}), berth.ErrCorrupt},
		{"layer count mismatch", makeTar(t,
			tarEntry{name: "cfg.json", body: mustJSON(ocispec.Image{RootFS: ocispec.RootFS{Type: "layers"}})},
			tarEntry{name: "l.tar", body: goodLayer},
			tarEntry{name: "manifest.json", body: mustJSON([]map[string]any{{"Config": "cfg.json", "Layers": []string{"l.tar"}}})}), berth.ErrInvalid},
		{"bad tag", makeTar(t,
			tarEntry{name: "cfg.json", body: mustJSON(ocispec.Image{RootFS: ocispec.RootFS{Type: "layers"}})},
			tarEntry{name: "manifest.json", body: mustJSON([]map[string]any{{"Config": "cfg.json", "RepoTags": []string{"BAD:tag"}}})}), berth.ErrInvalid},
		{"device entry", makeTar(t, tarEntry{name: "dev", typeflag: tar.TypeChar}), berth.ErrInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := storeSnapshot(t, rt)
			_, err := rt.Load(ctx, bytes.NewReader(tc.archive))
			if !errors.Is(err, tc.kind) {
				t.Fatalf("Load = %v, want %v", err, tc.kind)
			}
			if !strings.HasPrefix(err.Error(), "load: ") {
				t.Errorf("message %q", err)
			}
			if after := storeSnapshot(t, rt); strings.Join(before, "\n") != strings.Join(after, "\n") {
				t.Errorf("failed load changed the store:\nbefore %v\nafter  %v", before, after)
			}
		})
	}
	// The good layer loads, as a check that the cases above fail for the
	// reason they name.
	if _, err := rt.Load(ctx, bytes.NewReader(dockerArchive(t, goodLayer, digest.FromBytes(goodLayer)))); err != nil {
		t.Fatalf("good archive: %v", err)
	}
	assertConsistent(t, rt)
}
