package berth_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"github.com/berth-run/berth"
	"github.com/berth-run/berth/cgroup"
	"github.com/berth-run/berth/internal/testutil"
)

// deadPID returns the pid of a process that has exited.
func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

// expectProblems checks that probs has one problem per want (matched as
// substrings of Object+": "+What), each repaired as repaired says, and
// nothing else.
func expectProblems(t *testing.T, probs []berth.Problem, repaired bool, want ...string) {
	t.Helper()
	used := make([]bool, len(probs))
	for _, w := range want {
		found := false
		for i, p := range probs {
			if !used[i] && strings.Contains(p.Object+": "+p.What, w) {
				used[i], found = true, true
				if p.Repaired != repaired {
					t.Errorf("problem %q: repaired %v, want %v", p, p.Repaired, repaired)
				}
				break
			}
		}
		if !found {
			t.Errorf("no problem matching %q in %v", w, probs)
		}
	}
	for i, p := range probs {
		if !used[i] {
			t.Errorf("unexpected problem: %s", p)
		}
	}
}

// TestCheckRepairsStore damages a store in every way Check knows about
// the images part, checks that each damage is reported (and that
// reporting changes nothing), then repaired, and that the repaired store
// works.
func TestCheckRepairsStore(t *testing.T) {
	testutil.RequiresRoot(t)
	ctx := context.Background()
	rt := newRuntime(t)
	im := importBusybox(t, rt, "busybox:latest")
	root := rt.Root()
	layer := im.Layers()[0]
	chain := layer.ChainID()
	dead := deadPID(t)

	// A tag of a missing image.
	var refs map[string]string
	b, _ := os.ReadFile(filepath.Join(root, "refs.json"))
	if err := json.Unmarshal(b, &refs); err != nil {
		t.Fatal(err)
	}
	refs["docker.io/library/ghost:latest"] = "sha256:" + strings.Repeat("1", 64)
	b, _ = json.Marshal(refs)
	writeFile(t, filepath.Join(root, "refs.json"), b)
	// A blob no image uses, and a file in blobs/ that is not a blob.
	orphan := []byte("nobody uses me")
	writeFile(t, filepath.Join(root, "blobs", "sha256", digest.FromBytes(orphan).Encoded()), orphan)
	// A corrupt blob: the layer's, overwritten.
	writeFile(t, filepath.Join(root, "blobs", "sha256", layer.Digest().Encoded()), []byte("garbage"))
	// The unpacked layer is gone (its blob is corrupt, so it cannot be
	// unpacked again: that stays a problem).
	if err := os.RemoveAll(filepath.Join(root, "layers", chain.Encoded())); err != nil {
		t.Fatal(err)
	}
	// Leftovers of a dead process: a temp dir, a lease, a half-written record.
	deadID := fmt.Sprintf("%d.1", dead)
	if err := os.Mkdir(filepath.Join(root, "tmp", deadID+"-layer-1"), 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(root, "leases", deadID+"-1"), []byte(`["`+chain.String()+`"]`))
	writeFile(t, filepath.Join(root, "images", fmt.Sprintf(".x.json.tmp3-%d", dead)), []byte("{"))
	// A dangling layer link.
	if err := os.Symlink("../layers/"+strings.Repeat("2", 64)+"/diff", filepath.Join(root, "l", "222222222222")); err != nil {
		t.Fatal(err)
	}

	before := storeSnapshot(t, rt)
	probs, err := rt.Check(ctx, berth.WithBlobVerification(true))
	if err != nil {
		t.Fatal(err)
	}
	expectProblems(t, probs, false,
		"tag ghost:latest: points at missing image",
		"blob "+digest.FromBytes(orphan).String()+": is used by no image",
		"blob "+layer.Digest().String()+": blob "+layer.Digest().String()+": content does not match its digest",
		"image "+im.ID()+": layer "+chain.String()+" is not unpacked",
		"file tmp/"+deadID+"-layer-1: left by a process that died",
		"file leases/"+deadID+"-1: left by a process that died",
		"file images/.x.json.tmp3-",
		"link l/222222222222: points at",
		"link l/"+chain.Encoded()[:12]+": points at", // the removed layer's link
	)
	if after := storeSnapshot(t, rt); !equalStrings(before, after) {
		t.Errorf("Check without repair changed the store:\n%v\n%v", before, after)
	}

	probs, err = rt.Check(ctx, berth.WithBlobVerification(true), berth.WithRepair())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range probs {
		// The layer cannot be unpacked again from a corrupt blob.
		if !p.Repaired && !strings.Contains(p.What, "is not unpacked") {
			t.Errorf("not repaired: %s", p)
		}
	}
	probs, err = rt.Check(ctx, berth.WithBlobVerification(true))
	if err != nil {
		t.Fatal(err)
	}
	expectProblems(t, probs, false,
		"image "+im.ID()+": blob "+layer.Digest().String()+" is missing",
		"image "+im.ID()+": layer "+chain.String()+" is not unpacked")
	if _, err := rt.Image(ctx, "ghost"); err == nil {
		t.Error("the dangling tag is still there")
	}
}

// TestCheckUnpacksMissingLayer: a layer whose directory vanished is
// unpacked again from its blob, and the image runs.
func TestCheckUnpacksMissingLayer(t *testing.T) {
	testutil.RequiresRoot(t)
	ctx := context.Background()
	rt := newRuntime(t)
	im := importBusybox(t, rt, "busybox:latest")
	chain := im.Layers()[0].ChainID()
	if err := os.RemoveAll(filepath.Join(rt.Root(), "layers", chain.Encoded())); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(rt.Root(), "l", chain.Encoded()[:12])); err != nil {
		t.Fatal(err)
	}
	probs, err := rt.Check(ctx, berth.WithRepair())
	if err != nil {
		t.Fatal(err)
	}
	expectProblems(t, probs, true, "layer "+chain.String()+" is not unpacked")
	assertConsistent(t, rt)
	var out bytes.Buffer
	c, err := rt.Run(ctx, berth.Spec{Image: "busybox", Cmd: []string{"echo", "ok"}, Network: "none", AutoRemove: true}, berth.WithStdout(&out))
	if err != nil {
		t.Fatal(err)
	}
	if code, err := c.Wait(ctx); err != nil || code != 0 || out.String() != "ok\n" {
		t.Fatalf("run after repair: %d %v %q", code, err, out.String())
	}
}

// TestCheckRepairsContainers: containers whose records disagree with
// the host are reported and repaired.
func TestCheckRepairsContainers(t *testing.T) {
	testutil.RequiresRoot(t)
	ctx := context.Background()
	rt := newRuntime(t)
	importBusybox(t, rt, "busybox:latest")
	spec := func(name string) berth.Spec {
		return berth.Spec{Image: "busybox", Name: name, Cmd: []string{"true"}, Network: "none"}
	}
	create := func(name string) *berth.Container {
		c, err := rt.Create(ctx, spec(name))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Remove(context.Background(), berth.RemoveForce()) })
		return c
	}
	root, run := rt.Root(), rt.RunRoot()
	dead := deadPID(t)

	// "orphaned": recorded as running by a process that died.
	orphaned := create("orphaned")
	writeFile(t, filepath.Join(root, "containers", orphaned.ID(), "state.json"),
		[]byte(fmt.Sprintf(`{"status":"running","init":{"pid":%d,"start":1},"owner":{"pid":%d,"start":1}}`, dead, dead)))
	// "mounted": exited, but its rootfs is still mounted and its cgroup is left.
	mounted := create("mounted")
	rootfs := filepath.Join(root, "containers", mounted.ID(), "rootfs")
	mountTmpfs(t, rootfs)
	cg, err := cgroup.New("berth/" + mounted.ID()) // the default cgroup parent
	if err != nil {
		t.Fatal(err)
	}
	if err := cg.Create(nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cg.Delete() })
	// "broken": its layer record vanished under it (an rmi with a bug).
	broken := create("broken")
	var rec map[string]any
	recPath := filepath.Join(root, "containers", broken.ID(), "container.json")
	b, _ := os.ReadFile(recPath)
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Fatal(err)
	}
	rec["layers"] = []string{"sha256:" + strings.Repeat("3", 64)}
	b, _ = json.Marshal(rec)
	writeFile(t, recPath, b)
	// A create that crashed, with a mount below its directory.
	ghost := strings.Repeat("4", 64)
	ghostRootfs := filepath.Join(root, "containers", ghost, "rootfs")
	if err := os.MkdirAll(ghostRootfs, 0o700); err != nil {
		t.Fatal(err)
	}
	mountTmpfs(t, ghostRootfs)
	// Run-time state of a container that does not exist: a directory with
	// a mount on it, a lock file.
	ghost2 := strings.Repeat("5", 64)
	ghostRun := filepath.Join(run, "containers", ghost2)
	if err := os.MkdirAll(ghostRun, 0o700); err != nil {
		t.Fatal(err)
	}
	mountTmpfs(t, ghostRun)
	writeFile(t, filepath.Join(root, "locks", "ctr-"+ghost2), nil)

	probs, err := rt.Check(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"container orphaned: is recorded as running but the process that ran it",
		"container mounted: is created but its root filesystem is mounted",
		"container mounted: is created but its cgroup",
		"container broken: layer sha256:3333",
		"container " + ghost[:12] + ": has no record",
		"mount " + ghostRun + ": belongs to no container",
		"path " + ghostRun + ": is run-time state of no container",
		"file locks/ctr-" + ghost2 + ": is the lock of no container",
	}
	expectProblems(t, probs, false, want...)
	probs, err = rt.Check(ctx, berth.WithRepair())
	if err != nil {
		t.Fatal(err)
	}
	// The crashed create's directory goes with the mount below it. The
	// dead container stays a problem until it is removed.
	expectProblems(t, probs, true, want...)
	probs, err = rt.Check(ctx)
	if err != nil {
		t.Fatal(err)
	}
	expectProblems(t, probs, false, "container broken: layer sha256:3333")
	for name, wantStatus := range map[string]string{"orphaned": berth.StatusExited, "mounted": berth.StatusCreated, "broken": berth.StatusDead} {
		c, err := rt.Container(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if st, err := c.State(ctx); err != nil || st.Status != wantStatus {
			t.Errorf("%s: %+v %v, want %s", name, st, err, wantStatus)
		}
	}
	if cg.Exists() {
		t.Error("the stopped container's cgroup is left")
	}
	for _, p := range []string{rootfs, ghostRootfs, ghostRun} {
		if isMounted(p) {
			t.Errorf("%s is still mounted", p)
		}
	}
	// The repaired containers run (but the dead one).
	for _, name := range []string{"orphaned", "mounted"} {
		c, _ := rt.Container(ctx, name)
		if err := c.Start(ctx); err != nil {
			t.Fatalf("start %s: %v", name, err)
		}
		if code, err := c.Wait(ctx); err != nil || code != 0 {
			t.Fatalf("%s: %d %v", name, code, err)
		}
	}
	if err := broken.Start(ctx); err == nil {
		t.Error("a dead container started")
	}
}

func writeFile(t *testing.T, p string, b []byte) {
	t.Helper()
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func mountTmpfs(t *testing.T, dir string) {
	t.Helper()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })
}

func isMounted(dir string) bool {
	b, _ := os.ReadFile("/proc/self/mountinfo")
	return bytes.Contains(b, []byte(" "+dir+" "))
}

func equalStrings(a, b []string) bool {
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
