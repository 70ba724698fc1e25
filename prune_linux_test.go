package berth_test

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/berth-run/berth"
	"github.com/berth-run/berth/internal/testutil"
)

func TestPrune(t *testing.T) {
	testutil.RequiresRoot(t)
	ctx := context.Background()
	rt := newRuntime(t)
	importBusybox(t, rt, "busybox:latest")
	f, err := os.Open(testutil.BusyboxTar(t))
	if err != nil {
		t.Fatal(err)
	}
	dangling, err := rt.Import(ctx, f, "", berth.WithChanges(`CMD ["true"]`, `LABEL x=y`))
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	run := func(name string, labels map[string]string, cmd ...string) *berth.Container {
		c, err := rt.Run(ctx, berth.Spec{Image: "busybox", Name: name, Cmd: cmd, Network: "none", Labels: labels})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Remove(context.Background(), berth.RemoveForce()) })
		return c
	}
	stopped := run("stopped", nil, "true")
	if _, err := stopped.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	keep := run("keep", map[string]string{"keep": "1"}, "true")
	if _, err := keep.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	created, err := rt.Create(ctx, berth.Spec{Image: "busybox", Name: "created", Cmd: []string{"true"}, Network: "none"})
	if err != nil {
		t.Fatal(err)
	}
	running := run("running", nil, "sleep", "1000")
	if _, err := rt.CreateVolume(ctx, "", berth.WithVolumeLabels(map[string]string{berth.AnonymousVolumeLabel: ""})); err != nil {
		t.Fatal(err)
	}
	if _, err := rt.CreateVolume(ctx, "named"); err != nil {
		t.Fatal(err)
	}
	if _, err := rt.CreateNetwork(ctx, "pnet"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = berth.RemoveStoreNetworks(context.Background(), rt) })

	// Bad filters remove nothing.
	for _, bad := range []string{"until=yesterday", "nolabel=x", "label"} {
		if _, _, err := rt.PruneContainers(ctx, bad); !errors.Is(err, berth.ErrInvalid) {
			t.Errorf("filter %q: %v, want ErrInvalid", bad, err)
		}
		if _, err := rt.Prune(ctx, berth.SystemPruneOptions{Filters: []string{bad}}); !errors.Is(err, berth.ErrInvalid) {
			t.Errorf("system prune filter %q: %v, want ErrInvalid", bad, err)
		}
	}
	if _, err := rt.Prune(ctx, berth.SystemPruneOptions{Volumes: true, Filters: []string{"until=1h"}}); !errors.Is(err, berth.ErrInvalid) {
		t.Errorf("system prune --volumes with until: %v, want ErrInvalid", err)
	}
	// until=1h keeps everything made just now.
	if ids, _, err := rt.PruneContainers(ctx, "until=1h"); err != nil || len(ids) != 0 {
		t.Fatalf("prune until=1h: %v %v", ids, err)
	}
	ids, _, err := rt.PruneContainers(ctx, "label!=keep")
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(ids)
	want := []string{stopped.ID(), created.ID()}
	slices.Sort(want)
	if !slices.Equal(ids, want) {
		t.Fatalf("pruned %v, want %v (stopped, created)", ids, want)
	}

	rep, err := rt.Prune(ctx, berth.SystemPruneOptions{Volumes: true})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rep.Containers, []string{keep.ID()}) || len(rep.Volumes) != 1 || len(rep.Volumes[0]) != 64 || !slices.Equal(rep.Networks, []string{"pnet"}) {
		t.Errorf("system prune: %+v", rep)
	}
	if len(rep.Images) != 1 || rep.Images[0].Deleted != dangling.ID() || rep.SpaceReclaimed <= 0 {
		t.Errorf("system prune images: %+v, reclaimed %d", rep.Images, rep.SpaceReclaimed)
	}
	// busybox is used by the running container, even with All.
	rep, err = rt.Prune(ctx, berth.SystemPruneOptions{All: true, Volumes: true})
	if err != nil || len(rep.Containers)+len(rep.Images)+len(rep.Volumes) != 0 {
		t.Fatalf("second prune: %+v %v", rep, err)
	}
	if err := running.Kill(ctx, 9); err != nil {
		t.Fatal(err)
	}
	if _, err := running.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	rep, err = rt.Prune(ctx, berth.SystemPruneOptions{All: true})
	if err != nil {
		t.Fatal(err)
	}
	var deleted []string
	for _, r := range rep.Images {
		if r.Deleted != "" {
			deleted = append(deleted, r.Deleted)
		}
	}
	if !slices.Equal(rep.Containers, []string{running.ID()}) || len(deleted) != 1 || !strings.Contains(rep.Images[0].Untagged, "busybox") {
		t.Errorf("prune -a: %+v", rep)
	}
	if _, err := rt.Volume(ctx, "named"); err != nil {
		t.Errorf("a named volume was pruned without -a: %v", err)
	}
	if images, _ := rt.Images(ctx); len(images) != 0 {
		t.Errorf("images left: %v", images)
	}
	assertConsistent(t, rt)
}
