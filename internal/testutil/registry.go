package testutil

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"golang.org/x/crypto/bcrypt"
)

// Registry is a reference registry (Debian's docker-registry, the
// distribution project's registry) serving on 127.0.0.1 with its own
// configuration and scratch storage, stopped when the test ends.
type Registry struct {
	// Addr is host:port ("127.0.0.1:41234"): the registry part of
	// references that name images on it.
	Addr string
	// Port is the port it listens on.
	Port int
	// Dir is the registry's storage root.
	Dir string
	// TLS is set when it serves HTTPS; CA is then the PEM of the CA that
	// signed its certificate.
	TLS bool
	CA  []byte
}

// RegistryOptions configure StartRegistry.
type RegistryOptions struct {
	// Users, when not empty, turns on htpasswd basic authentication with
	// these user -> password pairs.
	Users map[string]string
	// TLS makes the registry serve HTTPS with a certificate from a fresh
	// test CA, valid for 127.0.0.1, localhost and Hosts.
	TLS   bool
	Hosts []string
}

// StartRegistry starts a registry on a free port of 127.0.0.1 and waits
// until it answers. Without docker-registry installed the test is skipped
// (failed when BERTH_TEST_STRICT=1).
func StartRegistry(t testing.TB, o RegistryOptions) *Registry {
	t.Helper()
	bin := RequiresCommand(t, "docker-registry")
	dir := t.TempDir()
	r := &Registry{Dir: filepath.Join(dir, "storage"), TLS: o.TLS}
	var extra strings.Builder
	if len(o.Users) > 0 {
		var ht strings.Builder
		for user, pass := range o.Users {
			h, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.MinCost)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&ht, "%s:%s\n", user, h)
		}
		p := filepath.Join(dir, "htpasswd")
		if err := os.WriteFile(p, []byte(ht.String()), 0o600); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&extra, "auth:\n  htpasswd:\n    realm: berth-test\n    path: %s\n", p)
	}
	var tlsBlock string
	if o.TLS {
		ca, err := NewTestCA()
		if err != nil {
			t.Fatal(err)
		}
		certPEM, keyPEM, err := ca.Issue(append([]string{"127.0.0.1", "localhost"}, o.Hosts...))
		if err != nil {
			t.Fatal(err)
		}
		cert, key := filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
		if err := os.WriteFile(cert, certPEM, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(key, keyPEM, 0o600); err != nil {
			t.Fatal(err)
		}
		r.CA = ca.CertPEM
		tlsBlock = fmt.Sprintf("  tls:\n    certificate: %s\n    key: %s\n", cert, key)
	}
	var lastErr string
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		r.Port, r.Addr = port, fmt.Sprintf("127.0.0.1:%d", port)
		conf := fmt.Sprintf(`version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: %s
  secret: berth-test-secret
%s%s`, r.Dir, r.Addr, tlsBlock, extra.String())
		confPath := filepath.Join(dir, "config.yml")
		if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		logPath := filepath.Join(dir, fmt.Sprintf("registry-%d.log", attempt))
		logf, err := os.Create(logPath)
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, "serve", confPath)
		cmd.Stdout, cmd.Stderr = logf, logf
		exited, err := startTied(cmd, func() { logf.Close() })
		if err != nil {
			t.Fatalf("start docker-registry: %v", err)
		}
		if r.waitReady(exited) {
			t.Cleanup(func() {
				cmd.Process.Kill()
				<-exited
			})
			return r
		}
		cmd.Process.Kill()
		<-exited
		b, _ := os.ReadFile(logPath)
		lastErr = string(b)
	}
	t.Fatalf("docker-registry did not start:\n%s", lastErr)
	return nil
}

// waitReady polls /v2/ until the registry answers (200 or 401) or its
// process exits.
func (r *Registry) waitReady(exited <-chan struct{}) bool {
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // readiness probe only
		Proxy:           nil,
	}}
	defer client.CloseIdleConnections()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return false
		default:
		}
		resp, err := client.Get(r.URL("/v2/"))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				return true
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// URL is the address of path on the registry (http:// or https://).
func (r *Registry) URL(path string) string {
	scheme := "http"
	if r.TLS {
		scheme = "https"
	}
	return scheme + "://" + r.Addr + path
}

// BlobPath is where the registry stores the content of blob d: tests
// overwrite it to simulate corruption on the registry's side.
func (r *Registry) BlobPath(d digest.Digest) string {
	hex := d.Encoded()
	return filepath.Join(r.Dir, "docker", "registry", "v2", "blobs", d.Algorithm().String(), hex[:2], hex, "data")
}

// WriteCA writes the registry's CA certificate as <dir>/<host>/ca.crt,
// the layout of docker's certs.d, and returns dir.
func (r *Registry) WriteCA(t testing.TB, dir, host string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, host), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, host, "ca.crt"), r.CA, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// freePort finds a free TCP port on 127.0.0.1.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// LoopbackDialer returns a dialer for registry clients under test that
// sends the names in hosts ("registry.test" -> "127.0.0.1") to loopback
// addresses and refuses every address that is not loopback, so that a
// test never sends traffic off the machine.
func LoopbackDialer(hosts map[string]string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		if to, ok := hosts[host]; ok {
			host = to
		}
		if host == "localhost" {
			host = "127.0.0.1"
		}
		ip := net.ParseIP(host)
		if ip == nil || !ip.IsLoopback() {
			return nil, fmt.Errorf("test dialer: refusing %s, which is not a loopback address", addr)
		}
		return d.DialContext(ctx, network, net.JoinHostPort(host, port))
	}
}
