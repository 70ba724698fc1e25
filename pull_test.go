package berth_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-run/berth"
	"github.com/berth-run/berth/internal/testutil"
)

// layerFile reads path from the unpacked layer i of im.
func layerFile(t *testing.T, rt *berth.Runtime, im *berth.Image, i int, path string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(rt.Root(), "layers", im.Layers()[i].ChainID().Encoded(), "diff", path))
	if err != nil {
		t.Fatalf("layer %d: %v", i, err)
	}
	return string(b)
}

// progressLog collects progress events by layer.
type progressLog struct {
	mu     sync.Mutex
	phases map[digest.Digest][]string
}

func (p *progressLog) option() berth.RegistryOption {
	p.phases = map[digest.Digest][]string{}
	return berth.WithProgress(func(ev berth.Progress) {
		p.mu.Lock()
		defer p.mu.Unlock()
		ph := p.phases[ev.Digest]
		if len(ph) == 0 || ph[len(ph)-1] != ev.Phase {
			p.phases[ev.Digest] = append(ph, ev.Phase)
		}
	})
}

func (p *progressLog) of(d digest.Digest) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.phases[d], ",")
}

// TestPullSkopeoPushed: an image pushed by an independent client (skopeo,
// from an OCI layout) with gzip, zstd and uncompressed layers pulls with
// the right diffIDs and contents.
func TestPullSkopeoPushed(t *testing.T) {
	testutil.RequiresRoot(t)
	skopeo := testutil.RequiresCommand(t, "skopeo")
	reg := testutil.StartRegistry(t, testutil.RegistryOptions{})
	img := testutil.BuildImage(t, testutil.TestImage{Layers: []testutil.TestLayer{
		{TarFile: testutil.BusyboxTar(t)},
		{Files: map[string]string{"etc/zstd": "zstd layer\n", "etc/os-release": "berth\n"}, Compression: "zstd"},
		{Files: map[string]string{"etc/plain": "plain layer\n", "bin/.wh.vi": ""}, Compression: "none"},
		{Files: map[string]string{"big/": ""}, RandomBytes: 300 << 10, Seed: 7},
	}, Cmd: []string{"/bin/sh"}})
	layout := t.TempDir()
	testutil.WriteOCILayout(t, layout, map[string]*testutil.BuiltImage{"v1": img})
	out, err := exec.Command(skopeo, "copy", "--dest-tls-verify=false", "oci:"+layout+":v1", "docker://"+reg.Addr+"/skopeo/img:v1").CombinedOutput()
	if err != nil {
		t.Fatalf("skopeo copy: %v\n%s", err, out)
	}
	env := newRegEnv(t)
	rt := regRuntime(t, env)
	ctx := context.Background()
	var pl progressLog
	im, err := rt.Pull(ctx, reg.Addr+"/skopeo/img:v1", pl.option())
	if err != nil {
		t.Fatal(err)
	}
	if im.ID() != img.ConfigDigest.String() {
		t.Errorf("image ID %s, want %s", im.ID(), img.ConfigDigest)
	}
	_, diffs := layerDigests(im)
	if !equalDigests(diffs, img.DiffIDs()) {
		t.Errorf("diffIDs %v, want %v", diffs, img.DiffIDs())
	}
	// skopeo compresses uncompressed layers when it pushes.
	wantTypes := []string{ocispec.MediaTypeImageLayerGzip, ocispec.MediaTypeImageLayerZstd, ocispec.MediaTypeImageLayerGzip, ocispec.MediaTypeImageLayerGzip}
	for i, l := range im.Layers() {
		if l.MediaType() != wantTypes[i] {
			t.Errorf("layer %d media type %s, want %s", i, l.MediaType(), wantTypes[i])
		}
		got := strings.Replace(pl.of(l.Digest()), "Waiting,", "", 1) // beyond the 3 download slots
		if got != "Pulling fs layer,Downloading,Verifying Checksum,Download complete,Extracting,Pull complete" {
			t.Errorf("layer %d progress: %s", i, got)
		}
	}
	if got := layerFile(t, rt, im, 1, "etc/os-release"); got != "berth\n" {
		t.Errorf("layer 1: %q", got)
	}
	if got := layerFile(t, rt, im, 1, "etc/zstd"); got != "zstd layer\n" {
		t.Errorf("layer 1: %q", got)
	}
	if got := layerFile(t, rt, im, 2, "etc/plain"); got != "plain layer\n" {
		t.Errorf("layer 2: %q", got)
	}
	if fi, err := os.Lstat(filepath.Join(rt.Root(), "layers", im.Layers()[2].ChainID().Encoded(), "diff", "bin", "vi")); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		t.Errorf("whiteout in layer 2: %v %v", fi, err)
	}
	if strings.Join(im.Config().Config.Cmd, " ") != "/bin/sh" {
		t.Errorf("config cmd %v", im.Config().Config.Cmd)
	}
	// It runs, with the layers stacked (the whiteout hides busybox's
	// /bin/vi).
	out = []byte(runIn(t, rt, reg.Addr+"/skopeo/img:v1", "cat /etc/zstd /etc/plain /etc/os-release; test -e /bin/vi || echo vi gone"))
	if string(out) != "zstd layer\nplain layer\nberth\nvi gone\n" {
		t.Errorf("run: %q", out)
	}
	// The manifest is kept as received.
	raw, err := os.ReadFile(filepath.Join(rt.Root(), "blobs", "sha256", im.ManifestDigest().Encoded()))
	if err != nil || digest.FromBytes(raw) != im.ManifestDigest() {
		t.Fatalf("stored manifest: %v", err)
	}
	assertConsistent(t, rt)
}

// TestPullCompressions: gzip, zstd and uncompressed layers, as the
// manifest gives them.
func TestPullCompressions(t *testing.T) {
	testutil.RequiresRoot(t)
	reg := testutil.StartRegistry(t, testutil.RegistryOptions{})
	img := testutil.BuildImage(t, testutil.TestImage{Layers: []testutil.TestLayer{
		{Files: map[string]string{"f": "gzip"}}, {Files: map[string]string{"f": "zstd"}, Compression: "zstd"},
		{Files: map[string]string{"f": "none"}, Compression: "none"},
	}})
	testutil.PushRaw(t, reg.Addr, "comp/img", "v1", img.Blobs(), img.Manifest, img.MediaType)
	rt := regRuntime(t, newRegEnv(t))
	im, err := rt.Pull(context.Background(), reg.Addr+"/comp/img:v1")
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"gzip", "zstd", "none"} {
		if l := im.Layers()[i]; l.MediaType() != img.Layers[i].MediaType || l.Digest() != img.Layers[i].Digest {
			t.Errorf("layer %d: %s %s", i, l.MediaType(), l.Digest())
		}
		if got := layerFile(t, rt, im, i, "f"); got != want {
			t.Errorf("layer %d holds %q", i, got)
		}
	}
	assertConsistent(t, rt)
}

// TestPullIndex: OCI indexes and Docker manifest lists pull the host's
// image, or the one WithPlatform names; the index digest is the repo
// digest.
func TestPullIndex(t *testing.T) {
	testutil.RequiresRoot(t)
	reg := testutil.StartRegistry(t, testutil.RegistryOptions{})
	ctx := context.Background()
	for _, docker := range []bool{false, true} {
		t.Run(fmt.Sprintf("docker=%v", docker), func(t *testing.T) {
			host := testutil.BuildImage(t, testutil.TestImage{Docker: docker, Layers: []testutil.TestLayer{
				{Files: map[string]string{"arch": "host"}}, {TarFile: testutil.BusyboxTar(t)}}})
			other := testutil.BuildImage(t, testutil.TestImage{Docker: docker, Platform: ocispec.Platform{OS: "linux", Architecture: "riscv64"},
				Layers: []testutil.TestLayer{{Files: map[string]string{"arch": "riscv64"}}}})
			idx, mt := testutil.BuildIndex(t, docker, other, host)
			repo := fmt.Sprintf("multi/docker-%v", docker)
			testutil.PushRaw(t, reg.Addr, repo, other.ManifestDigest.String(), other.Blobs(), other.Manifest, other.MediaType)
			testutil.PushRaw(t, reg.Addr, repo, host.ManifestDigest.String(), host.Blobs(), host.Manifest, host.MediaType)
			testutil.PushRaw(t, reg.Addr, repo, "latest", nil, idx, mt)
			env := newRegEnv(t)
			rt := regRuntime(t, env)
			im, err := rt.Pull(ctx, reg.Addr+"/"+repo)
			if err != nil {
				t.Fatal(err)
			}
			if im.ID() != host.ConfigDigest.String() || im.ManifestDigest() != host.ManifestDigest {
				t.Errorf("pulled %s (manifest %s), want the host's %s", im.ID(), im.ManifestDigest(), host.ConfigDigest)
			}
			if rd := im.RepoDigests(); len(rd) != 1 || rd[0] != reg.Addr+"/"+repo+"@"+digest.FromBytes(idx).String() {
				t.Errorf("repo digests %v, want the index's", rd)
			}
			if got := runIn(t, rt, reg.Addr+"/"+repo, "cat /arch"); got != "host" {
				t.Errorf("the host's image runs and says %q", got)
			}
			im2, err := rt.Pull(ctx, reg.Addr+"/"+repo, berth.WithPlatform("linux/riscv64"))
			if err != nil {
				t.Fatal(err)
			}
			if im2.ID() != other.ConfigDigest.String() || layerFile(t, rt, im2, 0, "arch") != "riscv64" {
				t.Errorf("riscv64 pull gave %s", im2.ID())
			}
			_, err = rt.Pull(ctx, reg.Addr+"/"+repo, berth.WithPlatform("linux/s390x"))
			if !errors.Is(err, berth.ErrNotFound) || !strings.Contains(err.Error(), "no matching manifest for linux/s390x") {
				t.Errorf("s390x: %v", err)
			}
			// The platform's manifest by digest pulls without a tag.
			byDigest, err := rt.Pull(ctx, reg.Addr+"/"+repo+"@"+host.ManifestDigest.String())
			if err != nil || byDigest.ID() != host.ConfigDigest.String() {
				t.Fatalf("pull by digest: %v", err)
			}
			if docker {
				for _, l := range byDigest.Layers() {
					if l.MediaType() != testutil.DockerLayer {
						t.Errorf("docker layer media type %s", l.MediaType())
					}
				}
			}
			assertConsistent(t, rt)
		})
	}
}

// TestPullCorruptBlob: a blob corrupted on the registry's side fails the
// pull with a digest error and leaves the store as it was; the same pull
// works once the blob is fixed.
func TestPullCorruptBlob(t *testing.T) {
	testutil.RequiresRoot(t)
	reg := testutil.StartRegistry(t, testutil.RegistryOptions{})
	img := testutil.BuildImage(t, testutil.TestImage{Layers: []testutil.TestLayer{
		{Files: map[string]string{"a": "first"}},
		{RandomBytes: 256 << 10, Seed: 3},
		{Files: map[string]string{"c": "third"}, Compression: "none"},
	}})
	testutil.PushRaw(t, reg.Addr, "corrupt/img", "v1", img.Blobs(), img.Manifest, img.MediaType)
	env := newRegEnv(t)
	rt := regRuntime(t, env)
	ctx := context.Background()
	importBusybox(t, rt, "keep:me")
	for _, victim := range []digest.Digest{img.Layers[1].Digest, img.Layers[2].Digest, img.ConfigDigest} {
		path := reg.BlobPath(victim)
		orig, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		bad := bytes.Clone(orig)
		bad[len(bad)/2] ^= 0xff
		if err := os.WriteFile(path, bad, 0o644); err != nil {
			t.Fatal(err)
		}
		before := storeSnapshot(t, rt)
		_, err = rt.Pull(ctx, reg.Addr+"/corrupt/img:v1")
		if !errors.Is(err, berth.ErrCorrupt) || !strings.Contains(err.Error(), "digest") || !strings.Contains(err.Error(), victim.String()) {
			t.Errorf("pull with blob %s corrupt: %v", victim, err)
		}
		if after := storeSnapshot(t, rt); strings.Join(before, "\n") != strings.Join(after, "\n") {
			t.Errorf("a failed pull changed the store:\n%v\n%v", before, after)
		}
		assertConsistent(t, rt)
		if err := os.WriteFile(path, orig, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	im, err := rt.Pull(ctx, reg.Addr+"/corrupt/img:v1")
	if err != nil {
		t.Fatal(err)
	}
	if im.ID() != img.ConfigDigest.String() {
		t.Errorf("pulled %s", im.ID())
	}
	assertConsistent(t, rt)
}

// TestPullSkipsWhatIsStored: a second pull fetches no blob; an image
// sharing layers fetches only its own.
func TestPullSkipsWhatIsStored(t *testing.T) {
	testutil.RequiresRoot(t)
	reg := testutil.StartRegistry(t, testutil.RegistryOptions{})
	proxy := testutil.StartProxy(t, reg.Addr)
	base := []testutil.TestLayer{{Files: map[string]string{"base": "1"}}, {RandomBytes: 64 << 10, Seed: 1}}
	a := testutil.BuildImage(t, testutil.TestImage{Layers: append(base, testutil.TestLayer{Files: map[string]string{"a": "a"}})})
	b := testutil.BuildImage(t, testutil.TestImage{Layers: append(base, testutil.TestLayer{Files: map[string]string{"b": "b"}})})
	testutil.PushRaw(t, reg.Addr, "shared/a", "v1", a.Blobs(), a.Manifest, a.MediaType)
	testutil.PushRaw(t, reg.Addr, "shared/b", "v1", b.Blobs(), b.Manifest, b.MediaType)
	env := newRegEnv(t)
	rt := regRuntime(t, env)
	ctx := context.Background()
	if _, err := rt.Pull(ctx, proxy.Addr+"/shared/a:v1"); err != nil {
		t.Fatal(err)
	}
	for d, n := range proxy.BlobGets() {
		if n != 1 {
			t.Errorf("blob %s fetched %d times", d, n)
		}
	}
	proxy.ResetCounts()
	var pl progressLog
	im, err := rt.Pull(ctx, proxy.Addr+"/shared/a:v1", pl.option())
	if err != nil {
		t.Fatal(err)
	}
	if n := len(proxy.BlobGets()); n != 0 {
		t.Errorf("second pull fetched %d blobs", n)
	}
	for i, l := range im.Layers() {
		if got := pl.of(l.Digest()); got != berth.PhaseAlreadyExists {
			t.Errorf("layer %d of the second pull: %s", i, got)
		}
	}
	proxy.ResetCounts()
	imb, err := rt.Pull(ctx, proxy.Addr+"/shared/b:v1", pl.option())
	if err != nil {
		t.Fatal(err)
	}
	gets := proxy.BlobGets()
	if len(gets) != 2 || gets[b.Layers[2].Digest.String()] != 1 || gets[b.ConfigDigest.String()] != 1 {
		t.Errorf("pull of b fetched %v, want its config and last layer", gets)
	}
	if pl.of(b.Layers[0].Digest) != berth.PhaseAlreadyExists || pl.of(b.Layers[2].Digest) == berth.PhaseAlreadyExists {
		t.Errorf("progress of b: %v", pl.phases)
	}
	if imb.Layers()[1].ChainID() != im.Layers()[1].ChainID() {
		t.Error("shared layers have different chains")
	}
	// Removing a leaves b's layers (shared) in place.
	if _, err := rt.RemoveImage(ctx, proxy.Addr+"/shared/a:v1"); err != nil {
		t.Fatal(err)
	}
	assertConsistent(t, rt)
	// pull -a: every tag of a repository.
	testutil.PushRaw(t, reg.Addr, "shared/b", "v2", nil, b.Manifest, b.MediaType)
	tags, err := rt.RemoteTags(ctx, proxy.Addr+"/shared/b")
	if err != nil || strings.Join(tags, ",") != "v1,v2" {
		t.Errorf("remote tags %v %v", tags, err)
	}
	if _, err := rt.RemoteTags(ctx, proxy.Addr+"/shared/b:v1"); !errors.Is(err, berth.ErrInvalid) {
		t.Errorf("remote tags of a tag: %v", err)
	}
}

// startPuller runs a worker process (concurrency_test.go) that pulls ref
// into rt's store.
func startPuller(t *testing.T, rt *berth.Runtime, env *regEnv, ref string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "BERTH_TEST_WORKER=pull", "BERTH_TEST_ROOT="+rt.Root(), "BERTH_TEST_RUNROOT="+rt.RunRoot(),
		"BERTH_TEST_REF="+ref, "BERTH_CONFIG="+env.configFile, "BERTH_AUTH_FILE="+env.authFile)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, &out
}

// TestPullConcurrentProcesses: two processes pulling one image at once
// both succeed and fetch each blob once between them.
func TestPullConcurrentProcesses(t *testing.T) {
	testutil.RequiresRoot(t)
	reg := testutil.StartRegistry(t, testutil.RegistryOptions{})
	proxy := testutil.StartProxy(t, reg.Addr)
	img := testutil.BuildImage(t, testutil.TestImage{Layers: []testutil.TestLayer{
		{RandomBytes: 512 << 10, Seed: 1}, {RandomBytes: 512 << 10, Seed: 2}, {Files: map[string]string{"x": "y"}}, {RandomBytes: 256 << 10, Seed: 4},
	}})
	testutil.PushRaw(t, reg.Addr, "race/img", "v1", img.Blobs(), img.Manifest, img.MediaType)
	proxy.SetRate(2 << 20) // slow enough that the pulls overlap
	env := newRegEnv(t)
	rt := regRuntime(t, env)
	ref := proxy.Addr + "/race/img:v1"
	var cmds []*exec.Cmd
	var outs []*bytes.Buffer
	for i := 0; i < 2; i++ {
		c, out := startPuller(t, rt, env, ref)
		cmds, outs = append(cmds, c), append(outs, out)
	}
	for i, c := range cmds {
		if err := c.Wait(); err != nil {
			t.Errorf("worker %d: %v\n%s", i, err, outs[i])
		}
	}
	gets := proxy.BlobGets()
	for d := range img.Blobs() {
		if gets[d.String()] != 1 {
			t.Errorf("blob %s fetched %d times", d, gets[d.String()])
		}
	}
	im, err := rt.Image(context.Background(), ref)
	if err != nil || im.ID() != img.ConfigDigest.String() {
		t.Fatalf("image after the pulls: %v", err)
	}
	assertConsistent(t, rt)
}

// TestPullKilledMidDownload: a pull killed with SIGKILL in the middle of
// a download leaves nothing that breaks the next one.
func TestPullKilledMidDownload(t *testing.T) {
	testutil.RequiresRoot(t)
	reg := testutil.StartRegistry(t, testutil.RegistryOptions{})
	proxy := testutil.StartProxy(t, reg.Addr)
	img := testutil.BuildImage(t, testutil.TestImage{Layers: []testutil.TestLayer{
		{TarFile: testutil.BusyboxTar(t)}, {RandomBytes: 4 << 20, Seed: 9}, {RandomBytes: 1 << 20, Seed: 10},
	}})
	testutil.PushRaw(t, reg.Addr, "killed/img", "v1", img.Blobs(), img.Manifest, img.MediaType)
	proxy.SetRate(512 << 10)
	env := newRegEnv(t)
	rt := regRuntime(t, env)
	ref := proxy.Addr + "/killed/img:v1"
	cmd, out := startPuller(t, rt, env, ref)
	deadline := time.Now().Add(60 * time.Second)
	for proxy.BlobBytes() < 1<<20 {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("the worker did not get going:\n%s", out)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	if ents, _ := os.ReadDir(filepath.Join(rt.Root(), "tmp")); len(ents) == 0 {
		t.Error("the killed pull left no temp files: was it killed mid-download?")
	}
	proxy.SetRate(0)
	// The next process opens the store (removing the dead one's temp
	// files) and pulls the same image.
	rt2, err := berth.Open(context.Background(), berth.WithRoot(rt.Root()), berth.WithRunRoot(rt.RunRoot()),
		berth.WithConfigFile(env.configFile), berth.WithAuthFile(env.authFile))
	if err != nil {
		t.Fatal(err)
	}
	defer rt2.Close()
	im, err := rt2.Pull(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	if im.ID() != img.ConfigDigest.String() {
		t.Errorf("pulled %s", im.ID())
	}
	assertConsistent(t, rt2)
	if out := runIn(t, rt2, ref, "ls /random-9 /random-10"); out != "/random-10\n/random-9\n" {
		t.Errorf("run: %q", out)
	}
}
