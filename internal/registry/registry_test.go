package registry

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-run/berth/internal/errdefs"
	"github.com/berth-run/berth/internal/testutil"
)

func TestInsecure(t *testing.T) {
	c := Config{InsecureRegistries: []string{"10.1.0.0/16", "myreg:5000", "other", "[fd00::1]:5000"}}
	for host, want := range map[string]bool{
		"127.0.0.1:5000": true, "127.9.9.9": true, "localhost:5000": true, "localhost": true, "[::1]:5000": true,
		"10.1.2.3:5000": true, "10.2.0.1:5000": false, "myreg:5000": true, "myreg:5001": false, "myreg": false,
		"other": true, "other:443": true, "docker.io": false, "192.168.1.1:5000": false, "registry.local:5000": false,
		"[fd00::1]:5000": true,
	} {
		if got := c.Insecure(host); got != want {
			t.Errorf("Insecure(%q) = %v, want %v", host, got, want)
		}
	}
	for _, bad := range []Config{
		{InsecureRegistries: []string{"http://x"}},
		{InsecureRegistries: []string{""}},
		{Mirrors: []string{"mirror.example.com"}},
		{Mirrors: []string{"https://mirror.example.com/path"}},
		{Mirrors: []string{"ftp://mirror.example.com"}},
		{MaxConcurrentDownloads: -1},
	} {
		if err := bad.Validate(); !errors.Is(err, errdefs.ErrInvalid) {
			t.Errorf("Validate(%+v) = %v, want ErrInvalid", bad, err)
		}
	}
	if err := (Config{Mirrors: []string{"https://mirror.example.com/", "http://10.0.0.1:5000"}}).Validate(); err != nil {
		t.Error(err)
	}
}

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	c, err := LoadConfig(filepath.Join(dir, "missing.json"))
	if err != nil || len(c.InsecureRegistries) != 0 || c.Downloads() != 3 || c.Uploads() != 5 {
		t.Fatalf("missing file: %+v %v", c, err)
	}
	p := filepath.Join(dir, "config.json")
	os.WriteFile(p, []byte(`{"insecure-registries":["a:1"],"registry-mirrors":["https://m"],"max-concurrent-downloads":6,"log-level":"debug"}`), 0o644)
	c, err = LoadConfig(p)
	if err != nil || c.InsecureRegistries[0] != "a:1" || c.Mirrors[0] != "https://m" || c.Downloads() != 6 {
		t.Fatalf("config: %+v %v", c, err)
	}
	os.WriteFile(p, []byte(`{"registry-mirrors":"x"}`), 0o644)
	if _, err := LoadConfig(p); !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), p) {
		t.Errorf("malformed: %v", err)
	}
	os.WriteFile(p, []byte(`{"registry-mirrors":["nope"]}`), 0o644)
	if _, err := LoadConfig(p); !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), p) {
		t.Errorf("bad mirror: %v", err)
	}
}

func TestPlatforms(t *testing.T) {
	for in, want := range map[string]string{
		"linux/amd64": "linux/amd64", "linux/x86_64": "linux/amd64", "arm64": "linux/arm64", "linux/aarch64/v8": "linux/arm64",
		"linux/arm": "linux/arm/v7", "linux/arm/v6": "linux/arm/v6", "linux/armhf": "linux/arm/v7", "Linux/AMD64": "linux/amd64",
		"windows/amd64": "windows/amd64",
	} {
		p, err := ParsePlatform(in)
		if err != nil || FormatPlatform(p) != want {
			t.Errorf("ParsePlatform(%q) = %s, %v; want %s", in, FormatPlatform(p), err, want)
		}
	}
	for _, bad := range []string{"", "linux/", "/amd64", "a/b/c/d", "linux//v7"} {
		if _, err := ParsePlatform(bad); !errors.Is(err, errdefs.ErrInvalid) {
			t.Errorf("ParsePlatform(%q): %v", bad, err)
		}
	}
	descs := []ocispec.Descriptor{
		{Digest: "sha256:1", Platform: &ocispec.Platform{OS: "linux", Architecture: "arm", Variant: "v6"}},
		{Digest: "sha256:2", Platform: &ocispec.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}},
		{Digest: "sha256:3", Platform: &ocispec.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}},
		{Digest: "sha256:4", Platform: &ocispec.Platform{OS: "linux", Architecture: "amd64"}},
		{Digest: "sha256:5", Platform: &ocispec.Platform{OS: "unknown", Architecture: "unknown"}},
	}
	for want, p := range map[string]ocispec.Platform{
		"sha256:2": {OS: "linux", Architecture: "arm"},
		"sha256:1": {OS: "linux", Architecture: "arm", Variant: "v6"},
		"sha256:3": {OS: "linux", Architecture: "arm64"},
		"sha256:4": {OS: "linux", Architecture: "amd64"},
	} {
		if d, ok := selectManifest(descs, p); !ok || string(d.Digest) != want {
			t.Errorf("select %v = %s %v, want %s", p, d.Digest, ok, want)
		}
	}
	if _, ok := selectManifest(descs, ocispec.Platform{OS: "linux", Architecture: "s390x"}); ok {
		t.Error("s390x matched")
	}
}

func TestServerKeyAndAuthFile(t *testing.T) {
	for in, want := range map[string]string{
		"": HubKey, "docker.io": HubKey, "index.docker.io": HubKey, "https://index.docker.io/v1/": HubKey, "registry-1.docker.io": HubKey,
		"host:5000": "host:5000", "https://host:5000/v2/": "host:5000", "HOST:5000": "host:5000", "host/path": "host",
	} {
		if got, err := ServerKey(in); err != nil || got != want {
			t.Errorf("ServerKey(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	p := filepath.Join(t.TempDir(), "sub", "auth.json")
	if err := SaveAuth(p, "host:5000", "alice", "pw:with:colons"); err != nil {
		t.Fatal(err)
	}
	// Other keys and entries survive an update.
	b, _ := os.ReadFile(p)
	var m map[string]any
	json.Unmarshal(b, &m)
	m["credHelpers"] = map[string]string{"x": "y"}
	b, _ = json.Marshal(m)
	os.WriteFile(p, b, 0o600)
	if err := SaveAuth(p, HubKey, "bob", "hub"); err != nil {
		t.Fatal(err)
	}
	if err := SaveAuth(p, "https://host:5000", "alice", "new"); err != nil {
		t.Fatal(err)
	}
	auths, err := LoadAuthFile(p)
	if err != nil || len(auths) != 2 || auths["https://host:5000"].User() != "alice" {
		t.Fatalf("auth file %v %v", auths, err)
	}
	b, _ = os.ReadFile(p)
	if !strings.Contains(string(b), "credHelpers") {
		t.Error("other keys lost")
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode())
	}
	kc := &Keychain{AuthFile: p, DockerConfigDir: t.TempDir()}
	reg := mustRef(t, "host:5000/x").Domain()
	ep, _ := newEndpoint(reg, false, false)
	a, err := kc.Resolve(ep.reg)
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := a.Authorization()
	if cfg.Username != "alice" || cfg.Password != "new" {
		t.Errorf("resolved %+v", cfg)
	}
	hub, _ := newEndpoint("docker.io", false, false)
	a, _ = kc.Resolve(hub.reg)
	if cfg, _ := a.Authorization(); cfg.Username != "bob" {
		t.Errorf("hub resolved %+v", cfg)
	}
	// Docker's config.json comes after berth's file.
	dcfg := t.TempDir()
	auth := base64.StdEncoding.EncodeToString([]byte("carol:docker"))
	os.WriteFile(filepath.Join(dcfg, "config.json"), []byte(`{"auths":{"other:1":{"auth":"`+auth+`"},"host:5000":{"auth":"`+auth+`"}}}`), 0o600)
	kc.DockerConfigDir = dcfg
	other, _ := newEndpoint("other:1", false, false)
	a, _ = kc.Resolve(other.reg)
	if cfg, _ := a.Authorization(); cfg.Username != "carol" {
		t.Errorf("docker config resolved %+v", cfg)
	}
	a, _ = kc.Resolve(ep.reg)
	if cfg, _ := a.Authorization(); cfg.Username != "alice" {
		t.Errorf("berth's file must win: %+v", cfg)
	}
	// Explicit credentials win over both.
	kc.Explicit = &authn.AuthConfig{Username: "dave", Password: "x"}
	a, _ = kc.Resolve(ep.reg)
	if cfg, _ := a.Authorization(); cfg.Username != "dave" {
		t.Errorf("explicit: %+v", cfg)
	}
	kc.Explicit = nil
	// Unknown registries are anonymous.
	none, _ := newEndpoint("nobody:1", false, false)
	if a, _ := kc.Resolve(none.reg); a != authn.Anonymous {
		t.Errorf("unknown registry: %v", a)
	}
	if found, err := RemoveAuth(p, "host:5000"); !found || err != nil {
		t.Errorf("remove: %v %v", found, err)
	}
	if found, _ := RemoveAuth(p, "host:5000"); found {
		t.Error("removed twice")
	}
}

// fakeRegistry serves one manifest and its blobs, behind a bearer-token
// flow (realm on the same server) when users is not empty.
type fakeRegistry struct {
	srv      *httptest.Server
	users    map[string]string
	img      *testutil.BuiltImage
	requests []string
}

func newFakeRegistry(t *testing.T, img *testutil.BuiltImage, users map[string]string, tlsCfg *tls.Config) *fakeRegistry {
	f := &fakeRegistry{users: users, img: img}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.requests = append(f.requests, r.Method+" "+r.URL.Path)
		if r.URL.Path == "/token" {
			user, pass, ok := r.BasicAuth()
			if ok && f.users[user] == pass {
				json.NewEncoder(w).Encode(map[string]string{"token": "good-" + user})
				return
			}
			if !ok {
				json.NewEncoder(w).Encode(map[string]string{"token": "anonymous"})
				return
			}
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`))
			return
		}
		if len(f.users) > 0 && !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer good-") {
			scheme := "http"
			if r.TLS != nil {
				scheme = "https"
			}
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="%s://%s/token",service="fake"`, scheme, r.Host))
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`))
			return
		}
		switch {
		case r.URL.Path == "/v2/":
			w.Write([]byte("{}"))
		case strings.HasSuffix(r.URL.Path, "/manifests/v1") || strings.HasSuffix(r.URL.Path, "/manifests/"+img.ManifestDigest.String()):
			w.Header().Set("Content-Type", img.MediaType)
			w.Write(img.Manifest)
		case strings.Contains(r.URL.Path, "/blobs/"):
			for d, b := range img.Blobs() {
				if strings.HasSuffix(r.URL.Path, d.String()) {
					w.Write(b)
					return
				}
			}
			w.WriteHeader(http.StatusNotFound)
		default:
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}`))
		}
	})
	if tlsCfg != nil {
		f.srv = httptest.NewUnstartedServer(h)
		f.srv.TLS = tlsCfg
		f.srv.StartTLS()
	} else {
		f.srv = httptest.NewServer(h)
	}
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeRegistry) addr() string {
	return strings.TrimPrefix(strings.TrimPrefix(f.srv.URL, "http://"), "https://")
}

func (f *fakeRegistry) port() string { return f.addr()[strings.LastIndex(f.addr(), ":")+1:] }

func smallImage(t *testing.T) *testutil.BuiltImage {
	return testutil.BuildImage(t, testutil.TestImage{Layers: []testutil.TestLayer{{Files: map[string]string{"f": "x"}}}})
}

func TestBearerLogin(t *testing.T) {
	f := newFakeRegistry(t, smallImage(t), map[string]string{"alice": "s3cret"}, nil)
	ctx := context.Background()
	c := New(Options{})
	if err := c.Login(ctx, f.addr(), "alice", "s3cret"); err != nil {
		t.Fatalf("login: %v", err)
	}
	err := c.Login(ctx, "http://"+f.addr()+"/", "alice", "wrong")
	if !errors.Is(err, errdefs.ErrUnauthorized) || !strings.Contains(err.Error(), "incorrect username or password") {
		t.Fatalf("wrong password: %v", err)
	}
	// Pulls get a token with the keychain's credentials.
	c2 := New(Options{Keychain: &Keychain{Explicit: &authn.AuthConfig{Username: "alice", Password: "s3cret"}}})
	res, err := c2.Resolve(ctx, mustRef(t, f.addr()+"/x:v1"), DefaultPlatform())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := res.Repo.FetchBlob(ctx, res.Config, MaxConfigSize); err != nil {
		t.Fatal(err)
	}
	// Anonymous: the registry refuses, as ErrUnauthorized.
	_, err = New(Options{}).Resolve(ctx, mustRef(t, f.addr()+"/x:v1"), DefaultPlatform())
	if !errors.Is(err, errdefs.ErrUnauthorized) {
		t.Fatalf("anonymous: %v", err)
	}
}

func TestPlainHTTPAndTLS(t *testing.T) {
	ctx := context.Background()
	img := smallImage(t)
	plain := newFakeRegistry(t, img, nil, nil)
	dial := DialFunc(testutil.LoopbackDialer(map[string]string{"registry.test": "127.0.0.1"}))
	ref := mustRef(t, "registry.test:"+plain.port()+"/x:v1")
	c := New(Options{Dial: dial, ConfigFile: "/etc/berth/config.json"})
	_, err := c.Resolve(ctx, ref, DefaultPlatform())
	if err == nil || !strings.Contains(err.Error(), `add "registry.test:`+plain.port()+`" to "insecure-registries" in /etc/berth/config.json`) {
		t.Fatalf("plain HTTP, not insecure: %v", err)
	}
	// A private address that go-containerregistry would try over HTTP
	// by itself is refused the same way.
	c = New(Options{Dial: DialFunc(testutil.LoopbackDialer(map[string]string{"10.0.0.7": "127.0.0.1"})), ConfigFile: "F"})
	if _, err := c.Resolve(ctx, mustRef(t, "10.0.0.7:"+plain.port()+"/x:v1"), DefaultPlatform()); err == nil || !strings.Contains(err.Error(), "insecure-registries") {
		t.Fatalf("private address: %v", err)
	}
	c = New(Options{Dial: dial, Config: Config{InsecureRegistries: []string{"registry.test"}}})
	if _, err := c.Resolve(ctx, ref, DefaultPlatform()); err != nil {
		t.Fatalf("insecure: %v", err)
	}

	// TLS with a private CA: refused with advice, then trusted through a
	// certs directory.
	ca, err := testutil.NewTestCA()
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, _ := ca.Issue([]string{"registry.test"})
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	secure := newFakeRegistry(t, img, nil, &tls.Config{Certificates: []tls.Certificate{pair}})
	host := "registry.test:" + secure.port()
	ref = mustRef(t, host+"/x:v1")
	certs := t.TempDir()
	c = New(Options{Dial: dial, Config: Config{CertsDirs: []string{certs}}, ConfigFile: "F"})
	_, err = c.Resolve(ctx, ref, DefaultPlatform())
	if err == nil || !strings.Contains(err.Error(), "x509") || !strings.Contains(err.Error(), "/etc/berth/certs.d/"+host+"/ca.crt") {
		t.Fatalf("unknown CA: %v", err)
	}
	os.MkdirAll(filepath.Join(certs, host), 0o755)
	os.WriteFile(filepath.Join(certs, host, "ca.crt"), ca.CertPEM, 0o644)
	c = New(Options{Dial: dial, Config: Config{CertsDirs: []string{certs}}})
	if _, err := c.Resolve(ctx, ref, DefaultPlatform()); err != nil {
		t.Fatalf("with the CA: %v", err)
	}
	// Insecure skips verification.
	c = New(Options{Dial: dial, Config: Config{InsecureRegistries: []string{host}}})
	if _, err := c.Resolve(ctx, ref, DefaultPlatform()); err != nil {
		t.Fatalf("insecure TLS: %v", err)
	}
	// A bad certs directory is an error naming the file.
	os.WriteFile(filepath.Join(certs, host, "bad.crt"), []byte("not pem"), 0o644)
	c = New(Options{Dial: dial, Config: Config{CertsDirs: []string{certs}}})
	if _, err := c.Resolve(ctx, ref, DefaultPlatform()); !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), "bad.crt") {
		t.Fatalf("bad CA file: %v", err)
	}
}

func TestMirrors(t *testing.T) {
	ctx := context.Background()
	img := smallImage(t)
	empty := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v2/" {
			return
		}
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte(`{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}`))
	}))
	defer empty.Close()
	full := newFakeRegistry(t, img, nil, nil)
	dial := DialFunc(testutil.LoopbackDialer(nil)) // Docker Hub itself is refused
	c := New(Options{Dial: dial, Config: Config{Mirrors: []string{empty.URL, full.srv.URL}}})
	res, err := c.Resolve(ctx, mustRef(t, "busybox:v1"), DefaultPlatform())
	if err != nil {
		t.Fatal(err)
	}
	if !res.Repo.IsMirror() || res.Repo.Host() != full.addr() || res.Repo.Path() != "library/busybox" {
		t.Errorf("resolved on %s/%s", res.Repo.Host(), res.Repo.Path())
	}
	// Mirrors are for Docker Hub only.
	c = New(Options{Dial: dial, Config: Config{Mirrors: []string{full.srv.URL}}})
	if _, err := c.Resolve(ctx, mustRef(t, "quay.io/x/y"), DefaultPlatform()); err == nil || !strings.Contains(err.Error(), "quay.io") {
		t.Errorf("non-hub image: %v", err)
	}
	// All mirrors failing: Docker Hub's error, with the mirrors'.
	c = New(Options{Dial: dial, Config: Config{Mirrors: []string{empty.URL}}})
	_, err = c.Resolve(ctx, mustRef(t, "busybox"), DefaultPlatform())
	if err == nil || !strings.Contains(err.Error(), "index.docker.io") || !strings.Contains(err.Error(), "mirrors") {
		t.Errorf("all mirrors failing: %v", err)
	}
}

func TestHubSearch(t *testing.T) {
	var query string
	hub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/search" {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		query = r.URL.RawQuery
		w.Write([]byte(`{"num_results":3,"query":"redis","results":[
			{"name":"redis","description":"Redis is an open source key-value store","star_count":12000,"is_official":true,"is_automated":false},
			{"name":"bitnami/redis","description":"Bitnami Redis","star_count":300,"is_official":false,"is_automated":true},
			{"name":"someone/redis","description":"","star_count":1}]}`))
	}))
	defer hub.Close()
	c := New(Options{HubSearchURL: hub.URL})
	got, err := c.Search(context.Background(), "redis", 2)
	if err != nil {
		t.Fatal(err)
	}
	if query != "n=2&q=redis" {
		t.Errorf("query %q", query)
	}
	if len(got) != 2 || got[0].Name != "redis" || !got[0].IsOfficial || got[0].StarCount != 12000 || !got[1].IsAutomated {
		t.Errorf("results %+v", got)
	}
	for in, want := range map[string][2]string{
		"redis": {"docker.io", "redis"}, "bitnami/redis": {"docker.io", "bitnami/redis"},
		"localhost/x": {"localhost", "x"}, "host:5000/a/b": {"host:5000", "a/b"}, "quay.io/x": {"quay.io", "x"},
	} {
		if i, term := SplitSearchTerm(in); i != want[0] || term != want[1] {
			t.Errorf("SplitSearchTerm(%q) = %q %q", in, i, term)
		}
	}
	if _, err := c.Search(context.Background(), "host:5000/", 2); !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("empty term: %v", err)
	}
}

func TestParseImageManifest(t *testing.T) {
	for name, raw := range map[string]string{
		"schema":       `{"schemaVersion":1}`,
		"config type":  `{"schemaVersion":2,"config":{"mediaType":"application/vnd.cncf.helm.config.v1+json","digest":"sha256:` + strings.Repeat("a", 64) + `","size":1}}`,
		"foreign":      `{"schemaVersion":2,"config":{"digest":"sha256:` + strings.Repeat("a", 64) + `","size":1},"layers":[{"mediaType":"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip","digest":"sha256:` + strings.Repeat("b", 64) + `","size":1}]}`,
		"bad digest":   `{"schemaVersion":2,"config":{"digest":"sha256:zz","size":1}}`,
		"negative":     `{"schemaVersion":2,"config":{"digest":"sha256:` + strings.Repeat("a", 64) + `","size":1},"layers":[{"digest":"sha256:` + strings.Repeat("b", 64) + `","size":-1}]}`,
		"not json":     `nope`,
		"unknown type": `{"schemaVersion":2,"config":{"digest":"sha256:` + strings.Repeat("a", 64) + `","size":1},"layers":[{"mediaType":"text/plain","digest":"sha256:` + strings.Repeat("b", 64) + `","size":1}]}`,
	} {
		if _, _, err := ParseImageManifest([]byte(raw)); !errors.Is(err, errdefs.ErrInvalid) && !errors.Is(err, errdefs.ErrNotSupported) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
