package berth_test

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/schema"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-run/berth"
	"github.com/berth-run/berth/internal/testutil"
)

// newRuntime opens a runtime on a fresh scratch store.
func newRuntime(t testing.TB) *berth.Runtime {
	t.Helper()
	d := t.TempDir()
	rt, err := berth.Open(context.Background(), berth.WithRoot(filepath.Join(d, "root")), berth.WithRunRoot(filepath.Join(d, "run")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	return rt
}

// importBusybox imports the busybox fixture under name.
func importBusybox(t testing.TB, rt *berth.Runtime, name string) *berth.Image {
	t.Helper()
	f, err := os.Open(testutil.BusyboxTar(t))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	im, err := rt.Import(context.Background(), f, name, berth.WithChanges(`CMD ["sh"]`))
	if err != nil {
		t.Fatal(err)
	}
	return im
}

// storeSnapshot lists every file below the store's blobs, layers and
// images directories and the tag table, to show a failed operation
// changed nothing.
func storeSnapshot(t testing.TB, rt *berth.Runtime) []string {
	t.Helper()
	var out []string
	for _, d := range []string{"blobs", "layers", "images", "l"} {
		filepath.WalkDir(filepath.Join(rt.Root(), d), func(p string, de os.DirEntry, err error) error {
			if err == nil && !de.IsDir() {
				rel, _ := filepath.Rel(rt.Root(), p)
				out = append(out, rel)
			}
			return nil
		})
	}
	refs, _ := os.ReadFile(filepath.Join(rt.Root(), "refs.json"))
	out = append(out, "refs="+string(refs))
	sort.Strings(out)
	return out
}

func assertConsistent(t testing.TB, rt *berth.Runtime) {
	t.Helper()
	probs, err := rt.Check(context.Background(), berth.WithBlobVerification(true))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range probs {
		t.Error("store problem:", p)
	}
	ents, _ := os.ReadDir(filepath.Join(rt.Root(), "tmp"))
	if len(ents) != 0 {
		t.Errorf("temp files left: %v", ents)
	}
}

func layerDigests(im *berth.Image) (blobs, diffs []digest.Digest) {
	for _, l := range im.Layers() {
		blobs = append(blobs, l.Digest())
		diffs = append(diffs, l.DiffID())
	}
	return
}

func TestImportSaveLoadRoundTrip(t *testing.T) {
	testutil.RequiresRoot(t)
	ctx := context.Background()
	for _, format := range []berth.ArchiveFormat{berth.DockerArchive, berth.OCIArchive} {
		t.Run(string(format), func(t *testing.T) {
			rt := newRuntime(t)
			im := importBusybox(t, rt, "busybox:latest")
			if err := rt.Tag(ctx, "busybox", "127.0.0.1:5000/zzyyubuntu:1.2"); err != nil {
				t.Fatal(err)
			}
			blobs, diffs := layerDigests(im)
			var buf bytes.Buffer
			if err := rt.Save(ctx, &buf, []string{"busybox:latest", "127.0.0.1:5000/zzyyubuntu:1.2"}, berth.WithFormat(format)); err != nil {
				t.Fatal(err)
			}
			validateArchive(t, buf.Bytes(), format)
			for _, n := range []string{"busybox:latest", "127.0.0.1:5000/zzyyubuntu:1.2"} {
				if _, err := rt.RemoveImage(ctx, n); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := rt.Image(ctx, im.ID()); !errors.Is(err, berth.ErrNotFound) {
				t.Fatalf("image still there after rmi: %v", err)
			}
			loaded, err := rt.Load(ctx, bytes.NewReader(buf.Bytes()))
			if err != nil {
				t.Fatal(err)
			}
			if len(loaded) != 1 || loaded[0].ID() != im.ID() {
				t.Fatalf("loaded %v, want one image %s", loaded, im.ID())
			}
			got := loaded[0].Image
			if got.ManifestDigest() != im.ManifestDigest() {
				t.Errorf("manifest digest %s, want %s", got.ManifestDigest(), im.ManifestDigest())
			}
			gb, gd := layerDigests(got)
			if !equalDigests(gb, blobs) || !equalDigests(gd, diffs) {
				t.Errorf("layers %v %v, want %v %v", gb, gd, blobs, diffs)
			}
			tags := got.Tags()
			sort.Strings(tags)
			if strings.Join(tags, ",") != "127.0.0.1:5000/zzyyubuntu:1.2,busybox:latest" {
				t.Errorf("tags %v", tags)
			}
			assertConsistent(t, rt)
		})
	}
}

func equalDigests(a, b []digest.Digest) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// validateArchive checks every manifest, index and config in an archive
// berth wrote against the OCI image-spec JSON schemas.
func validateArchive(t *testing.T, archive []byte, format berth.ArchiveFormat) {
	t.Helper()
	files := map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(archive))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		files[hdr.Name] = b
	}
	if _, ok := files["manifest.json"]; ok != (format == berth.DockerArchive) {
		t.Errorf("manifest.json present = %v for %s", ok, format)
	}
	mustValidate(t, schema.ValidatorMediaTypeLayoutHeader, files["oci-layout"])
	mustValidate(t, schema.ValidatorMediaTypeImageIndex, files["index.json"])
	var idx ocispec.Index
	json.Unmarshal(files["index.json"], &idx)
	if len(idx.Manifests) == 0 {
		t.Fatal("index lists no manifest")
	}
	for _, d := range idx.Manifests {
		mb := files["blobs/sha256/"+d.Digest.Encoded()]
		mustValidate(t, schema.ValidatorMediaTypeManifest, mb)
		var m ocispec.Manifest
		json.Unmarshal(mb, &m)
		mustValidate(t, schema.ValidatorMediaTypeImageConfig, files["blobs/sha256/"+m.Config.Digest.Encoded()])
		for _, l := range m.Layers {
			if digest.FromBytes(files["blobs/sha256/"+l.Digest.Encoded()]) != l.Digest {
				t.Errorf("layer blob %s does not match its digest", l.Digest)
			}
		}
	}
}

func mustValidate(t *testing.T, v schema.Validator, b []byte) {
	t.Helper()
	if b == nil {
		t.Errorf("%s: file missing", v)
		return
	}
	if err := v.Validate(bytes.NewReader(b)); err != nil {
		t.Errorf("%s does not validate: %v\n%s", v, err, b)
	}
}

func TestStoredBlobsValidate(t *testing.T) {
	testutil.RequiresRoot(t)
	rt := newRuntime(t)
	im := importBusybox(t, rt, "busybox")
	read := func(d digest.Digest) []byte {
		b, err := os.ReadFile(filepath.Join(rt.Root(), "blobs", "sha256", d.Encoded()))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	mustValidate(t, schema.ValidatorMediaTypeManifest, read(im.ManifestDigest()))
	mustValidate(t, schema.ValidatorMediaTypeImageConfig, read(im.Digest()))
}

func TestImportChanges(t *testing.T) {
	testutil.RequiresRoot(t)
	rt := newRuntime(t)
	ctx := context.Background()
	f, _ := os.Open(testutil.BusyboxTar(t))
	defer f.Close()
	im, err := rt.Import(ctx, f, "app:v1", berth.WithMessage("my import"), berth.WithChanges(
		`CMD ["/bin/sh", "-c", "echo hi"]`, `ENV A=1 B="two words"`, "WORKDIR /srv", "EXPOSE 8080/tcp",
		"USER nobody", `LABEL k=v`, "VOLUME /data", "ENTRYPOINT echo"))
	if err != nil {
		t.Fatal(err)
	}
	c := im.Config().Config
	if strings.Join(c.Cmd, "|") != "/bin/sh|-c|echo hi" || c.WorkingDir != "/srv" || c.User != "nobody" ||
		c.Labels["k"] != "v" || strings.Join(c.Entrypoint, "|") != "/bin/sh|-c|echo" {
		t.Errorf("config %+v", c)
	}
	if _, ok := c.ExposedPorts["8080/tcp"]; !ok {
		t.Errorf("exposed ports %v", c.ExposedPorts)
	}
	if _, ok := c.Volumes["/data"]; !ok {
		t.Errorf("volumes %v", c.Volumes)
	}
	env := strings.Join(c.Env, "|")
	if !strings.Contains(env, "A=1") || !strings.Contains(env, "B=two words") {
		t.Errorf("env %v", c.Env)
	}
	h := im.History()
	if len(h) != 1 || h[0].Comment != "my import" || h[0].ID != im.ID() {
		t.Errorf("history %+v", h)
	}
	// A bad change or a bad name changes nothing.
	before := storeSnapshot(t, rt)
	f2, _ := os.Open(testutil.BusyboxTar(t))
	defer f2.Close()
	if _, err := rt.Import(ctx, f2, "x", berth.WithChanges("ONBUILD RUN x")); !errors.Is(err, berth.ErrInvalid) {
		t.Errorf("ONBUILD change: %v", err)
	}
	if _, err := rt.Import(ctx, f2, "Bad:Name"); !errors.Is(err, berth.ErrInvalid) {
		t.Errorf("bad name: %v", err)
	}
	if after := storeSnapshot(t, rt); strings.Join(before, "\n") != strings.Join(after, "\n") {
		t.Errorf("failed import changed the store:\n%v\n%v", before, after)
	}
}

func TestImageLookup(t *testing.T) {
	testutil.RequiresRoot(t)
	rt := newRuntime(t)
	ctx := context.Background()
	im := importBusybox(t, rt, "busybox")
	hex := im.Digest().Encoded()
	for _, name := range []string{"busybox", "busybox:latest", "docker.io/library/busybox:latest", im.ID(), hex, hex[:12], hex[:4]} {
		got, err := rt.Image(ctx, name)
		if err != nil || got.ID() != im.ID() {
			t.Errorf("Image(%q) = %v, %v", name, got, err)
		}
	}
	for _, name := range []string{"nosuch", "busybox:nosuch", "ffffffffffff"} {
		if _, err := rt.Image(ctx, name); !errors.Is(err, berth.ErrNotFound) {
			t.Errorf("Image(%q): %v, want ErrNotFound", name, err)
		}
	}
	for _, name := range []string{"Busybox", "a b", "busybox@sha256:zz"} {
		if _, err := rt.Image(ctx, name); !errors.Is(err, berth.ErrInvalid) {
			t.Errorf("Image(%q): %v, want ErrInvalid", name, err)
		}
	}
	if _, err := rt.Image(ctx, "busybox:nosuch"); err == nil || !strings.Contains(err.Error(), "no such image: busybox:nosuch") {
		t.Errorf("message: %v", err)
	}
}

func TestTagAndRemove(t *testing.T) {
	testutil.RequiresRoot(t)
	rt := newRuntime(t)
	ctx := context.Background()
	im := importBusybox(t, rt, "busybox")
	if err := rt.Tag(ctx, "busybox", "mine:1"); err != nil {
		t.Fatal(err)
	}
	if err := rt.Tag(ctx, "nosuch", "x"); !errors.Is(err, berth.ErrNotFound) {
		t.Errorf("tag of unknown image: %v", err)
	}
	if err := rt.Tag(ctx, "busybox", "UPPER"); !errors.Is(err, berth.ErrInvalid) {
		t.Errorf("tag with a bad name: %v", err)
	}
	// By ID with two names: refused without force.
	if _, err := rt.RemoveImage(ctx, im.ID()); !errors.Is(err, berth.ErrConflict) {
		t.Fatalf("rmi by ID with two tags: %v", err)
	}
	// By name: only that name goes.
	reps, err := rt.RemoveImage(ctx, "mine:1")
	if err != nil || len(reps) != 1 || reps[0].Untagged != "mine:1" {
		t.Fatalf("rmi mine:1 = %+v, %v", reps, err)
	}
	// Re-importing under the same name leaves the old image dangling.
	im2 := importBusybox(t, rt, "busybox")
	if im2.ID() == im.ID() {
		t.Fatal("a second import made the same image ID")
	}
	old, err := rt.Image(ctx, im.ID())
	if err != nil || !old.Dangling() {
		t.Fatalf("old image: %v dangling=%v", err, old != nil && old.Dangling())
	}
	reps, _, err = rt.PruneImages(ctx, false)
	if err != nil || len(reps) != 1 || reps[0].Deleted != im.ID() {
		t.Fatalf("prune = %+v, %v", reps, err)
	}
	// The shared layer stays with the remaining image.
	if _, err := rt.Image(ctx, "busybox"); err != nil {
		t.Fatal(err)
	}
	assertConsistent(t, rt)
	reps, err = rt.RemoveImage(ctx, "busybox")
	if err != nil || len(reps) != 2 || reps[1].Deleted != im2.ID() {
		t.Fatalf("last rmi = %+v, %v", reps, err)
	}
	for _, d := range []string{"layers", "images", "l"} {
		if ents, _ := os.ReadDir(filepath.Join(rt.Root(), d)); len(ents) != 0 {
			t.Errorf("%s not empty after removing every image: %v", d, ents)
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(rt.Root(), "blobs", "sha256")); len(ents) != 0 {
		t.Errorf("blobs left: %v", ents)
	}
}
