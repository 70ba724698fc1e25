package berth_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/berth-run/berth"
	"github.com/berth-run/berth/internal/testutil"
)

// regEnv isolates a test's registry settings and credentials from the
// machine's: its own config file, credential file and docker config dir.
type regEnv struct {
	dir        string
	configFile string
	authFile   string
}

func newRegEnv(t *testing.T) *regEnv {
	t.Helper()
	d := t.TempDir()
	// An empty docker config (podman, too, reads $DOCKER_CONFIG).
	if err := os.MkdirAll(filepath.Join(d, "docker"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d, "docker", "config.json"), []byte(`{"auths":{}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DOCKER_CONFIG", filepath.Join(d, "docker"))
	t.Setenv("BERTH_CONFIG", filepath.Join(d, "config.json"))
	t.Setenv("BERTH_AUTH_FILE", filepath.Join(d, "auth.json"))
	return &regEnv{dir: d, configFile: filepath.Join(d, "config.json"), authFile: filepath.Join(d, "auth.json")}
}

// writeConfig writes the berth config file of the environment.
func (e *regEnv) writeConfig(t *testing.T, cfg berth.RegistryConfig) {
	t.Helper()
	b, _ := json.Marshal(cfg)
	if err := os.WriteFile(e.configFile, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// regRuntime opens a runtime on a fresh store in env, whose registry
// connections go to loopback only.
func regRuntime(t *testing.T, env *regEnv, opts ...berth.Option) *berth.Runtime {
	t.Helper()
	d := t.TempDir()
	all := append([]berth.Option{berth.WithRoot(filepath.Join(d, "root")), berth.WithRunRoot(filepath.Join(d, "run")),
		berth.WithConfigFile(env.configFile), berth.WithAuthFile(env.authFile),
		berth.WithRegistryDialer(testutil.LoopbackDialer(nil))}, opts...)
	rt, err := berth.Open(context.Background(), all...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	return rt
}

func catalog(t *testing.T, reg *testutil.Registry) []string {
	t.Helper()
	resp, err := (&http.Client{Transport: &http.Transport{Proxy: nil}}).Get(reg.URL("/v2/_catalog"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var c struct{ Repositories []string }
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil {
		t.Fatal(err)
	}
	sort.Strings(c.Repositories)
	return c.Repositories
}

// TestSeedCourseFlow is the course's registry exercise: tag an image for
// a private registry, push it, see it in the catalog, remove it locally
// and pull it back.
func TestSeedCourseFlow(t *testing.T) {
	testutil.RequiresRoot(t)
	reg := testutil.StartRegistry(t, testutil.RegistryOptions{})
	env := newRegEnv(t)
	rt := regRuntime(t, env)
	ctx := context.Background()
	im := importBusybox(t, rt, "busybox:latest")
	name := reg.Addr + "/zzyyubuntu:1.2"
	if err := rt.Tag(ctx, "busybox", name); err != nil {
		t.Fatal(err)
	}
	var events []berth.Progress
	res, err := rt.Push(ctx, name, "", berth.WithProgress(func(p berth.Progress) { events = append(events, p) }))
	if err != nil {
		t.Fatal(err)
	}
	if res.Digest != im.ManifestDigest() || res.Tag != "1.2" || res.Ref != name {
		t.Errorf("push result %+v, want digest %s", res, im.ManifestDigest())
	}
	if !hasPhase(events, berth.PhasePushed) {
		t.Errorf("push progress has no %q: %+v", berth.PhasePushed, events)
	}
	if got := catalog(t, reg); strings.Join(got, ",") != "zzyyubuntu" {
		t.Errorf("catalog = %v", got)
	}
	pushed, _ := rt.Image(ctx, name)
	if rd := pushed.RepoDigests(); len(rd) != 1 || rd[0] != reg.Addr+"/zzyyubuntu@"+im.ManifestDigest().String() {
		t.Errorf("repo digests after push = %v", rd)
	}
	for _, n := range []string{name, "busybox:latest"} {
		if _, err := rt.RemoveImage(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := rt.Image(ctx, im.ID()); !errors.Is(err, berth.ErrNotFound) {
		t.Fatalf("image still there: %v", err)
	}
	got, err := rt.Pull(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID() != im.ID() || got.ManifestDigest() != im.ManifestDigest() {
		t.Errorf("pulled %s (manifest %s), pushed %s (manifest %s)", got.ID(), got.ManifestDigest(), im.ID(), im.ManifestDigest())
	}
	if tags := got.Tags(); len(tags) != 1 || tags[0] != name {
		t.Errorf("tags %v", tags)
	}
	if rd := got.RepoDigests(); len(rd) != 1 || rd[0] != reg.Addr+"/zzyyubuntu@"+im.ManifestDigest().String() {
		t.Errorf("repo digests = %v", rd)
	}
	// By its repo digest, too.
	if byDigest, err := rt.Image(ctx, reg.Addr+"/zzyyubuntu@"+im.ManifestDigest().String()); err != nil || byDigest.ID() != im.ID() {
		t.Errorf("lookup by digest: %v", err)
	}
	if out := runIn(t, rt, name, "echo hello from zzyyubuntu"); out != "hello from zzyyubuntu\n" {
		t.Errorf("run of the pulled image: %q", out)
	}
	assertConsistent(t, rt)
}

// runIn runs `sh -c script` in image (no network) and returns its output.
func runIn(t *testing.T, rt *berth.Runtime, image, script string) string {
	t.Helper()
	ctx := context.Background()
	var out bytes.Buffer
	c, err := rt.Run(ctx, berth.Spec{Image: image, Network: "none", Cmd: []string{"sh", "-c", script}}, berth.WithStdout(&out), berth.WithStderr(&out))
	if err != nil {
		t.Fatalf("run %s: %v", image, err)
	}
	defer c.Remove(ctx, berth.RemoveForce())
	if code, err := c.Wait(ctx); err != nil || code != 0 {
		t.Fatalf("run %s: exit %d, %v\n%s", image, code, err, out.String())
	}
	return out.String()
}

func hasPhase(events []berth.Progress, phase string) bool {
	for _, e := range events {
		if e.Phase == phase {
			return true
		}
	}
	return false
}

// TestLoginTLSBasicAuth: a registry with htpasswd over TLS signed by a
// test CA, reached by a name that is not loopback (so TLS is verified).
func TestLoginTLSBasicAuth(t *testing.T) {
	testutil.RequiresRoot(t)
	reg := testutil.StartRegistry(t, testutil.RegistryOptions{TLS: true, Hosts: []string{"registry.test"}, Users: map[string]string{"alice": "s3cret"}})
	env := newRegEnv(t)
	host := "registry.test:" + strings.Split(reg.Addr, ":")[1]
	certs := filepath.Join(env.dir, "certs.d")
	dial := berth.WithRegistryDialer(testutil.LoopbackDialer(map[string]string{"registry.test": "127.0.0.1"}))
	ctx := context.Background()

	// Without the CA, TLS verification fails with advice.
	env.writeConfig(t, berth.RegistryConfig{CertsDirs: []string{certs}})
	rt := regRuntime(t, env, dial)
	err := rt.Login(ctx, host, "alice", "s3cret")
	if err == nil || !strings.Contains(err.Error(), "certs.d/"+host+"/ca.crt") || !strings.Contains(err.Error(), "x509") {
		t.Fatalf("login without the CA: %v", err)
	}
	reg.WriteCA(t, certs, host)

	// A wrong password: a clear ErrUnauthorized, nothing stored.
	err = rt.Login(ctx, host, "alice", "wrong")
	if !errors.Is(err, berth.ErrUnauthorized) || !strings.Contains(err.Error(), "incorrect username or password") {
		t.Fatalf("wrong password: %v", err)
	}
	if _, err := os.Stat(env.authFile); !os.IsNotExist(err) {
		t.Fatalf("a failed login wrote the credential file: %v", err)
	}
	// Anonymous push is refused.
	im := importBusybox(t, rt, host+"/private/busybox:v1")
	if _, err := rt.Push(ctx, host+"/private/busybox:v1", ""); !errors.Is(err, berth.ErrUnauthorized) {
		t.Fatalf("anonymous push: %v", err)
	}
	// Per-call credentials work without a login.
	if _, err := rt.Push(ctx, host+"/private/busybox:v1", "", berth.WithAuth("alice", "s3cret")); err != nil {
		t.Fatal(err)
	}
	// Login stores the credentials (mode 0600); pulls use them.
	if err := rt.Login(ctx, host, "alice", "s3cret"); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(env.authFile)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("credential file: %v %v", fi, err)
	}
	if rt.LoggedInUser(host) != "alice" {
		t.Errorf("logged in user %q", rt.LoggedInUser(host))
	}
	rt2 := regRuntime(t, env, dial)
	got, err := rt2.Pull(ctx, host+"/private/busybox:v1")
	if err != nil {
		t.Fatal(err)
	}
	if got.ID() != im.ID() {
		t.Errorf("pulled %s, want %s", got.ID(), im.ID())
	}
	// Logout forgets them; a second logout is ErrNotFound.
	if err := rt.Logout(ctx, host); err != nil {
		t.Fatal(err)
	}
	if err := rt.Logout(ctx, host); !errors.Is(err, berth.ErrNotFound) {
		t.Errorf("second logout: %v", err)
	}
	rt3 := regRuntime(t, env, dial)
	if _, err := rt3.Pull(ctx, host+"/private/busybox:v1"); !errors.Is(err, berth.ErrUnauthorized) {
		t.Errorf("pull after logout: %v", err)
	}
	// Credentials in docker's config.json are found too.
	auth := base64.StdEncoding.EncodeToString([]byte("alice:s3cret"))
	os.WriteFile(filepath.Join(env.dir, "docker", "config.json"), []byte(`{"auths":{"`+host+`":{"auth":"`+auth+`"}}}`), 0o600)
	if _, err := rt3.Pull(ctx, host+"/private/busybox:v1"); err != nil {
		t.Errorf("pull with docker's config.json: %v", err)
	}
	// ... and through a credential helper named by credHelpers.
	bin := filepath.Join(env.dir, "bin")
	os.MkdirAll(bin, 0o755)
	helper := "#!/bin/sh\nread server\necho '{\"ServerURL\":\"'$server'\",\"Username\":\"alice\",\"Secret\":\"s3cret\"}'\n"
	os.WriteFile(filepath.Join(bin, "docker-credential-berthtest"), []byte(helper), 0o755)
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
	os.WriteFile(filepath.Join(env.dir, "docker", "config.json"), []byte(`{"credHelpers":{"`+host+`":"berthtest"}}`), 0o600)
	rt4 := regRuntime(t, env, dial)
	if _, err := rt4.Pull(ctx, host+"/private/busybox:v1"); err != nil {
		t.Errorf("pull with a credential helper: %v", err)
	}
	// The loopback address is insecure by default: no CA needed there.
	env.writeConfig(t, berth.RegistryConfig{CertsDirs: []string{filepath.Join(env.dir, "none")}})
	rt5 := regRuntime(t, env)
	if _, err := rt5.Pull(ctx, reg.Addr+"/private/busybox:v1", berth.WithAuth("alice", "s3cret")); err != nil {
		t.Errorf("pull over loopback TLS without the CA: %v", err)
	}
	assertConsistent(t, rt2)
}

// TestInsecureRegistryConfig: plain HTTP to a registry named by a name
// that is not loopback is refused with advice, and works once the config
// file lists it in insecure-registries.
func TestInsecureRegistryConfig(t *testing.T) {
	testutil.RequiresRoot(t)
	reg := testutil.StartRegistry(t, testutil.RegistryOptions{})
	env := newRegEnv(t)
	host := "registry.test:" + strings.Split(reg.Addr, ":")[1]
	dial := berth.WithRegistryDialer(testutil.LoopbackDialer(map[string]string{"registry.test": "127.0.0.1"}))
	ctx := context.Background()
	rt := regRuntime(t, env, dial)
	importBusybox(t, rt, host+"/plain:v1")
	before := storeSnapshot(t, rt)
	_, err := rt.Push(ctx, host+"/plain:v1", "")
	if err == nil || !strings.Contains(err.Error(), `"insecure-registries"`) || !strings.Contains(err.Error(), env.configFile) || !strings.Contains(err.Error(), host) {
		t.Fatalf("push over plain HTTP without configuration: %v", err)
	}
	_, err = rt.Pull(ctx, host+"/plain:v1")
	if err == nil || !strings.Contains(err.Error(), `"insecure-registries"`) {
		t.Fatalf("pull over plain HTTP without configuration: %v", err)
	}
	if after := storeSnapshot(t, rt); strings.Join(before, "\n") != strings.Join(after, "\n") {
		t.Errorf("a refused pull changed the store")
	}
	env.writeConfig(t, berth.RegistryConfig{InsecureRegistries: []string{"registry.test"}})
	if _, err := rt.Push(ctx, host+"/plain:v1", ""); err != nil {
		t.Fatalf("push once configured: %v", err)
	}
	rt2 := regRuntime(t, env, dial)
	if _, err := rt2.Pull(ctx, host+"/plain:v1"); err != nil {
		t.Fatalf("pull once configured: %v", err)
	}
	// A malformed config file is reported with its name.
	os.WriteFile(env.configFile, []byte(`{"insecure-registries": "not a list"}`), 0o644)
	if _, err := rt2.Pull(ctx, host+"/plain:v1"); !errors.Is(err, berth.ErrInvalid) || !strings.Contains(err.Error(), env.configFile) {
		t.Errorf("malformed config: %v", err)
	}
}

// TestMirror: pulls from Docker Hub go to the configured mirror first,
// and the image keeps Docker Hub's names.
func TestMirror(t *testing.T) {
	testutil.RequiresRoot(t)
	reg := testutil.StartRegistry(t, testutil.RegistryOptions{})
	env := newRegEnv(t)
	ctx := context.Background()
	src := regRuntime(t, env)
	im := importBusybox(t, src, reg.Addr+"/library/mirrored:1")
	if _, err := src.Push(ctx, reg.Addr+"/library/mirrored:1", ""); err != nil {
		t.Fatal(err)
	}
	env.writeConfig(t, berth.RegistryConfig{Mirrors: []string{"http://" + reg.Addr}})
	rt := regRuntime(t, env) // the loopback dialer refuses Docker Hub itself
	got, err := rt.Pull(ctx, "mirrored:1")
	if err != nil {
		t.Fatal(err)
	}
	if got.ID() != im.ID() || strings.Join(got.Tags(), ",") != "mirrored:1" || len(got.RepoDigests()) != 1 || !strings.HasPrefix(got.RepoDigests()[0], "mirrored@sha256:") {
		t.Errorf("pulled through the mirror: id %s tags %v digests %v", got.ID(), got.Tags(), got.RepoDigests())
	}
	tags, err := rt.RemoteTags(ctx, "mirrored")
	if err != nil || strings.Join(tags, ",") != "1" {
		t.Errorf("tags through the mirror: %v %v", tags, err)
	}
	// Not on the mirror: falls through to Docker Hub, which the test's
	// dialer refuses.
	if _, err := rt.Pull(ctx, "notmirrored:1"); err == nil || !strings.Contains(err.Error(), "index.docker.io") {
		t.Errorf("pull of an image the mirror lacks: %v", err)
	}
}

// TestRegistryBadInput: malformed references, unknown tags and
// repositories, unreachable registries and bad options give clear errors
// and store nothing.
func TestRegistryBadInput(t *testing.T) {
	testutil.RequiresRoot(t)
	reg := testutil.StartRegistry(t, testutil.RegistryOptions{})
	env := newRegEnv(t)
	rt := regRuntime(t, env)
	ctx := context.Background()
	importBusybox(t, rt, reg.Addr+"/known:v1")
	if _, err := rt.Push(ctx, reg.Addr+"/known:v1", ""); err != nil {
		t.Fatal(err)
	}
	before := storeSnapshot(t, rt)
	for _, ref := range []string{"", "Busybox", "a b", "busybox@sha256:zz", "host:5000/x:bad tag", "-leading"} {
		if _, err := rt.Pull(ctx, ref); !errors.Is(err, berth.ErrInvalid) {
			t.Errorf("Pull(%q): %v, want ErrInvalid", ref, err)
		}
	}
	_, err := rt.Pull(ctx, reg.Addr+"/known:nosuch")
	if !errors.Is(err, berth.ErrNotFound) || !strings.Contains(err.Error(), "manifest for "+reg.Addr+"/known:nosuch not found: manifest unknown") {
		t.Errorf("unknown tag: %v", err)
	}
	if _, err := rt.Pull(ctx, reg.Addr+"/unknown/repo"); !errors.Is(err, berth.ErrNotFound) {
		t.Errorf("unknown repository: %v", err)
	}
	_, err = rt.Pull(ctx, "127.0.0.1:1/x:v1")
	if err == nil || !errors.Is(err, syscall.ECONNREFUSED) || !strings.Contains(err.Error(), "cannot reach registry 127.0.0.1:1") {
		t.Errorf("unreachable registry: %v", err)
	}
	if _, err := rt.Pull(ctx, reg.Addr+"/known:v1", berth.WithPlatform("linux//x")); !errors.Is(err, berth.ErrInvalid) {
		t.Errorf("bad platform: %v", err)
	}
	_, err = rt.Pull(ctx, reg.Addr+"/known:v1", berth.WithPlatform("linux/s390x"))
	if !errors.Is(err, berth.ErrNotFound) || !strings.Contains(err.Error(), "does not match the specified platform") {
		t.Errorf("single image of another platform: %v", err)
	}
	if _, err := rt.Push(ctx, reg.Addr+"/known:v1", reg.Addr+"/known@sha256:"+strings.Repeat("a", 64)); !errors.Is(err, berth.ErrInvalid) {
		t.Errorf("push to a digest: %v", err)
	}
	if _, err := rt.Push(ctx, "nosuch:v1", ""); !errors.Is(err, berth.ErrNotFound) {
		t.Errorf("push of an unknown image: %v", err)
	}
	if after := storeSnapshot(t, rt); strings.Join(before, "\n") != strings.Join(after, "\n") {
		t.Errorf("failed pulls changed the store:\n%v\n%v", before, after)
	}
	if _, err := rt.Search(ctx, reg.Addr+"/x", berth.WithSearchFilter("stars")); !errors.Is(err, berth.ErrInvalid) {
		t.Errorf("bad search filter: %v", err)
	}
	if err := rt.Login(ctx, reg.Addr, "", ""); !errors.Is(err, berth.ErrInvalid) {
		t.Errorf("login without credentials: %v", err)
	}
	assertConsistent(t, rt)
}

// TestSearchCatalog: search against a private registry's catalog.
func TestSearchCatalog(t *testing.T) {
	testutil.RequiresRoot(t)
	reg := testutil.StartRegistry(t, testutil.RegistryOptions{})
	for i, repo := range []string{"team/redis-cache", "redis", "nginx", "tools/REDISH"} {
		img := testutil.BuildImage(t, testutil.TestImage{Layers: []testutil.TestLayer{{Files: map[string]string{"f": repo}, Seed: int64(i)}}})
		testutil.PushRaw(t, reg.Addr, strings.ToLower(repo), "v1", img.Blobs(), img.Manifest, img.MediaType)
	}
	env := newRegEnv(t)
	rt := regRuntime(t, env)
	ctx := context.Background()
	got, err := rt.Search(ctx, reg.Addr+"/redis")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range got {
		names = append(names, r.Name)
	}
	want := []string{reg.Addr + "/redis", reg.Addr + "/team/redis-cache", reg.Addr + "/tools/redish"}
	if strings.Join(names, ",") != strings.Join(want, ",") {
		t.Errorf("search = %v, want %v", names, want)
	}
	if got, _ := rt.Search(ctx, reg.Addr+"/REDIS"); len(got) != 3 {
		t.Errorf("search is case-sensitive: %v", got)
	}
	if got, _ := rt.Search(ctx, reg.Addr+"/redis", berth.WithSearchLimit(1)); len(got) != 1 {
		t.Errorf("limit 1 gave %d", len(got))
	}
	if got, _ := rt.Search(ctx, reg.Addr+"/redis", berth.WithSearchFilter("is-official=true")); len(got) != 0 {
		t.Errorf("is-official=true gave %v", got)
	}
	if got, _ := rt.Search(ctx, reg.Addr+"/redis", berth.WithSearchFilter("stars=0", "is-official=false")); len(got) != 3 {
		t.Errorf("stars=0 gave %v", got)
	}
}
