package berth_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/berth-run/berth"
	"github.com/berth-run/berth/internal/testutil"
)

// TestPushBlobsOnce: a push sends only what the registry lacks: a second
// push finds every layer, a push to another repository of the same
// registry mounts them.
func TestPushBlobsOnce(t *testing.T) {
	testutil.RequiresRoot(t)
	reg := testutil.StartRegistry(t, testutil.RegistryOptions{})
	env := newRegEnv(t)
	rt := regRuntime(t, env)
	ctx := context.Background()
	im := importBusybox(t, rt, reg.Addr+"/one/busybox:v1")
	layer := im.Layers()[0].Digest()
	var pl progressLog
	if _, err := rt.Push(ctx, reg.Addr+"/one/busybox:v1", "", pl.option()); err != nil {
		t.Fatal(err)
	}
	if got := pl.of(layer); !strings.HasPrefix(got, "Preparing,Pushing") || !strings.HasSuffix(got, "Pushed") {
		t.Errorf("first push: %s", got)
	}
	if _, err := rt.Push(ctx, reg.Addr+"/one/busybox:v1", "", pl.option()); err != nil {
		t.Fatal(err)
	}
	if got := pl.of(layer); got != "Preparing,Layer already exists" {
		t.Errorf("second push: %s", got)
	}
	var from string
	opt := berth.WithProgress(func(p berth.Progress) {
		if p.Phase == berth.PhaseMounted {
			from = p.From
		}
	})
	res, err := rt.Push(ctx, reg.Addr+"/one/busybox:v1", reg.Addr+"/two/copy:v2", opt)
	if err != nil {
		t.Fatal(err)
	}
	if from != "one/busybox" {
		t.Errorf("push to another repository mounted from %q", from)
	}
	if res.Digest != im.ManifestDigest() || res.Ref != reg.Addr+"/two/copy:v2" || res.Size == 0 {
		t.Errorf("result %+v", res)
	}
	got, _ := rt.Image(ctx, im.ID())
	if rd := got.RepoDigests(); len(rd) != 2 {
		t.Errorf("repo digests after two pushes: %v", rd)
	}
	// The pushed copy pulls into another store as the same image.
	rt2 := regRuntime(t, env)
	pulled, err := rt2.Pull(ctx, reg.Addr+"/two/copy:v2")
	if err != nil || pulled.ID() != im.ID() {
		t.Fatalf("pull of the mounted copy: %v", err)
	}
}

// TestPushLoadedAndPulled: loaded and pulled images push their stored
// manifest unchanged, so the digest stays the same.
func TestPushLoadedAndPulled(t *testing.T) {
	testutil.RequiresRoot(t)
	reg := testutil.StartRegistry(t, testutil.RegistryOptions{})
	env := newRegEnv(t)
	rt := regRuntime(t, env)
	ctx := context.Background()
	img := testutil.BuildImage(t, testutil.TestImage{Docker: true, Layers: []testutil.TestLayer{
		{Files: map[string]string{"one": "1"}}, {Files: map[string]string{"two": "2"}}, {RandomBytes: 128 << 10, Seed: 5},
	}})
	loaded, err := rt.Load(ctx, bytes.NewReader(testutil.OCIArchive(t, map[string]*testutil.BuiltImage{"loaded/img:v1": img})))
	if err != nil {
		t.Fatal(err)
	}
	if len(loaded) != 1 || loaded[0].ManifestDigest() != img.ManifestDigest {
		t.Fatalf("loaded %v", loaded)
	}
	res, err := rt.Push(ctx, "loaded/img:v1", reg.Addr+"/loaded/img:v1")
	if err != nil {
		t.Fatal(err)
	}
	if res.Digest != img.ManifestDigest {
		t.Errorf("loaded image pushed as %s, want its manifest %s", res.Digest, img.ManifestDigest)
	}
	rt2 := regRuntime(t, env)
	pulled, err := rt2.Pull(ctx, reg.Addr+"/loaded/img:v1")
	if err != nil {
		t.Fatal(err)
	}
	res2, err := pulled.Push(ctx, reg.Addr+"/again/img:v2")
	if err != nil {
		t.Fatal(err)
	}
	if res2.Digest != img.ManifestDigest || pulled.ID() != img.ConfigDigest.String() {
		t.Errorf("pulled image pushed as %s", res2.Digest)
	}
	assertConsistent(t, rt2)
}

// TestPushInterop: skopeo reads what berth pushes, and podman pulls and
// runs it.
func TestPushInterop(t *testing.T) {
	testutil.RequiresRoot(t)
	skopeo := testutil.RequiresCommand(t, "skopeo")
	pm := testutil.NewPodman(t)
	reg := testutil.StartRegistry(t, testutil.RegistryOptions{})
	env := newRegEnv(t)
	rt := regRuntime(t, env)
	ctx := context.Background()
	name := reg.Addr + "/berth/busybox:v1"
	im := importBusybox(t, rt, name)
	if _, err := rt.Push(ctx, name, ""); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(skopeo, "inspect", "--tls-verify=false", "docker://"+name).Output()
	if err != nil {
		t.Fatalf("skopeo inspect: %v", err)
	}
	var info struct {
		Digest digest.Digest
		Layers []digest.Digest
	}
	if err := json.Unmarshal(out, &info); err != nil {
		t.Fatal(err)
	}
	if info.Digest != im.ManifestDigest() || len(info.Layers) != 1 || info.Layers[0] != im.Layers()[0].Digest() {
		t.Errorf("skopeo sees %+v", info)
	}
	raw, err := exec.Command(skopeo, "inspect", "--raw", "--tls-verify=false", "docker://"+name).Output()
	if err != nil {
		t.Fatal(err)
	}
	stored, _ := os.ReadFile(filepath.Join(rt.Root(), "blobs", "sha256", im.ManifestDigest().Encoded()))
	if !bytes.Equal(raw, stored) {
		t.Errorf("the registry holds another manifest than the stored one:\n%s\n%s", raw, stored)
	}
	pm.Run("pull", "--tls-verify=false", "-q", name)
	if id := strings.TrimSpace(pm.Run("image", "inspect", "--format", "{{.ID}}", name)); "sha256:"+id != im.ID() {
		t.Errorf("podman sees image %s, berth %s", id, im.ID())
	}
	if got := pm.Run("run", "--rm", "--network", "none", name, "sh", "-c", "echo pushed-by-berth"); strings.TrimSpace(got) != "pushed-by-berth" {
		t.Errorf("podman run: %q", got)
	}
}

// TestPushCommitted: a committed image pushes (its base layer mounted
// from the repository its base was pushed to) and runs where it is
// pulled.
func TestPushCommitted(t *testing.T) {
	testutil.RequiresRoot(t)
	reg := testutil.StartRegistry(t, testutil.RegistryOptions{})
	env := newRegEnv(t)
	rt := regRuntime(t, env)
	ctx := context.Background()
	base := importBusybox(t, rt, reg.Addr+"/base/busybox:v1")
	if _, err := rt.Push(ctx, reg.Addr+"/base/busybox:v1", ""); err != nil {
		t.Fatal(err)
	}
	c, err := rt.Run(ctx, berth.Spec{Image: base.ID(), Network: "none", Cmd: []string{"sh", "-c", "echo committed > /data.txt"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Remove(ctx, berth.RemoveForce())
	if code, err := c.Wait(ctx); err != nil || code != 0 {
		t.Fatalf("container: %d %v", code, err)
	}
	name := reg.Addr + "/base/committed:v1"
	im, err := c.Commit(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	var pl progressLog
	res, err := rt.Push(ctx, name, "", pl.option())
	if err != nil {
		t.Fatal(err)
	}
	if res.Digest != im.ManifestDigest() {
		t.Errorf("pushed %s, the image's manifest is %s", res.Digest, im.ManifestDigest())
	}
	// The base layer is in base/busybox (the base image's repo digest).
	if got := pl.of(base.Layers()[0].Digest()); got != "Preparing,Mounted from" {
		t.Errorf("the base layer: %s", got)
	}
	rt2 := regRuntime(t, env)
	if _, err := rt2.Pull(ctx, name); err != nil {
		t.Fatal(err)
	}
	if out := runIn(t, rt2, name, "cat /data.txt"); out != "committed\n" {
		t.Errorf("run of the pulled commit: %q", out)
	}
}
