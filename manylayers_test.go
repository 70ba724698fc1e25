package berth_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-run/berth"
	"github.com/berth-run/berth/internal/testutil"
)

// An image of 128 layers loads, mounts and runs: the overlay mount takes
// its layers one by one, so the option string's page limit does not
// bound the depth.
func TestImageWith128LayersRuns(t *testing.T) {
	testutil.RequiresRoot(t)
	rt := newRuntime(t)
	ctx := context.Background()
	base := importBusybox(t, rt, "busybox")
	// The busybox layer plus 127 layers that each add one file.
	const extra = 127
	cfg := base.Config()
	entries := []tarEntry{}
	var layerPaths []string
	baseLayer, err := base.Layers()[0].Uncompressed(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var bb bytes.Buffer
	if _, err := bb.ReadFrom(baseLayer); err != nil {
		t.Fatal(err)
	}
	baseLayer.Close()
	entries = append(entries, tarEntry{name: "layer0.tar", body: bb.Bytes()})
	layerPaths = append(layerPaths, "layer0.tar")
	for i := 1; i <= extra; i++ {
		l := makeTar(t, tarEntry{name: fmt.Sprintf("layers/f%03d", i), body: []byte(fmt.Sprintln(i))})
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, digest.FromBytes(l))
		cfg.History = append(cfg.History, ocispec.History{CreatedBy: fmt.Sprintf("layer %d", i)})
		name := fmt.Sprintf("layer%d.tar", i)
		entries = append(entries, tarEntry{name: name, body: l})
		layerPaths = append(layerPaths, name)
	}
	entries = append(entries,
		tarEntry{name: "cfg.json", body: mustJSON(cfg)},
		tarEntry{name: "manifest.json", body: mustJSON([]map[string]any{{"Config": "cfg.json", "RepoTags": []string{"deep:128"}, "Layers": layerPaths}})})
	loaded, err := rt.Load(ctx, bytes.NewReader(makeTar(t, entries...)))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(loaded[0].Layers()); n != 128 {
		t.Fatalf("%d layers, want 128", n)
	}
	var out bytes.Buffer
	c, err := rt.Run(ctx, berth.Spec{Image: "deep:128", Network: "none", AutoRemove: true,
		Cmd: []string{"sh", "-c", "ls /layers | wc -l; cat /layers/f001 /layers/f127"}}, berth.WithStdout(&out))
	if err != nil {
		t.Fatal(err)
	}
	if code, err := c.Wait(ctx); err != nil || code != 0 {
		t.Fatalf("exit %d, %v: %s", code, err, out.String())
	}
	if got := strings.Fields(out.String()); strings.Join(got, " ") != "127 1 127" {
		t.Fatalf("output %q", out.String())
	}
}
