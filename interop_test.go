package berth_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-run/berth"
	"github.com/berth-run/berth/internal/testutil"
)

// TestPodmanArchiveInterop: podman loads and runs what berth saves, and
// berth loads what podman saves, in both archive formats.
func TestPodmanArchiveInterop(t *testing.T) {
	testutil.RequiresRoot(t)
	pm := testutil.NewPodman(t)
	rt := newRuntime(t)
	ctx := context.Background()
	im := importBusybox(t, rt, "berth-interop:v1")
	dir := t.TempDir()

	// berth -> podman, both formats; the image runs under podman.
	for _, format := range []berth.ArchiveFormat{berth.DockerArchive, berth.OCIArchive} {
		p := filepath.Join(dir, "berth-"+string(format)+".tar")
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := rt.Save(ctx, f, []string{"berth-interop:v1"}, berth.WithFormat(format)); err != nil {
			t.Fatal(err)
		}
		f.Close()
		out := pm.Run("load", "-i", p)
		if !strings.Contains(out, "berth-interop:v1") {
			t.Errorf("podman load of %s: %q", format, out)
		}
		got := pm.Run("run", "--rm", "--network", "none", "docker.io/library/berth-interop:v1", "sh", "-c", "echo from-berth")
		if strings.TrimSpace(got) != "from-berth" {
			t.Errorf("podman run of berth's %s: %q", format, got)
		}
		id := strings.TrimSpace(pm.Run("image", "inspect", "--format", "{{.ID}}", "docker.io/library/berth-interop:v1"))
		if "sha256:"+id != im.ID() && id != im.ID() {
			t.Errorf("podman sees image ID %s, berth %s", id, im.ID())
		}
		pm.Run("rmi", "-f", "docker.io/library/berth-interop:v1")
	}

	// podman -> berth, both formats.
	pm.Run("load", "-i", filepath.Join(dir, "berth-docker-archive.tar"))
	pm.Run("tag", "docker.io/library/berth-interop:v1", "localhost/from-podman:v2")
	for _, format := range []string{"docker-archive", "oci-archive"} {
		p := filepath.Join(dir, "podman-"+format+".tar")
		pm.Run("save", "--format", format, "-o", p, "localhost/from-podman:v2")
		rt2 := newRuntime(t)
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		loaded, err := rt2.Load(ctx, f)
		f.Close()
		if err != nil {
			t.Fatalf("load podman's %s: %v", format, err)
		}
		if len(loaded) != 1 || loaded[0].ID() != im.ID() {
			t.Fatalf("podman's %s loaded %d images, first %v; want %s", format, len(loaded), loaded, im.ID())
		}
		if names := strings.Join(loaded[0].Names, ","); names != "localhost/from-podman:v2" {
			t.Errorf("podman's %s names %q", format, names)
		}
		_, diffs := layerDigests(loaded[0].Image)
		_, want := layerDigests(im)
		if !equalDigests(diffs, want) {
			t.Errorf("diffIDs %v want %v", diffs, want)
		}
		assertConsistent(t, rt2)
	}
}
