package registry

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/berth-run/berth/internal/errdefs"
)

// DialFunc opens a network connection (net.Dialer.DialContext's shape).
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// Options configure a Client.
type Options struct {
	// Config holds the registry settings.
	Config Config
	// ConfigFile names where Config came from, for messages that tell
	// the user which setting to change.
	ConfigFile string
	// Keychain finds credentials; nil means anonymous access.
	Keychain authn.Keychain
	// Dial replaces the network dialer (tests map names to loopback
	// addresses with it). Nil: a net.Dialer, and the proxy from the
	// environment.
	Dial DialFunc
	// UserAgent is sent with every request. Default "berth".
	UserAgent string
	// HubSearchURL is Docker Hub's search service. Default
	// https://index.docker.io.
	HubSearchURL string
}

// Client talks to registries. It is safe for concurrent use; Close
// releases its idle connections.
type Client struct {
	o Options

	mu    sync.Mutex                 // guards bases
	bases map[string]*guardTransport // per registry host
}

// New returns a Client for the options.
func New(o Options) *Client {
	if o.Keychain == nil {
		o.Keychain = authn.NewMultiKeychain()
	}
	if o.UserAgent == "" {
		o.UserAgent = "berth"
	}
	if o.HubSearchURL == "" {
		o.HubSearchURL = "https://index.docker.io"
	}
	if o.ConfigFile == "" {
		o.ConfigFile = "berth's config file"
	}
	return &Client{o: o, bases: map[string]*guardTransport{}}
}

// Config is the client's registry configuration.
func (c *Client) Config() Config { return c.o.Config }

// Close closes the client's idle connections.
func (c *Client) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, b := range c.bases {
		b.inner.CloseIdleConnections()
	}
}

// endpoint is one registry server: the registry a reference names, or one
// of its mirrors.
type endpoint struct {
	reg      name.Registry
	insecure bool
	mirror   bool
}

// host is the registry's address as requests use it ("index.docker.io"
// for Docker Hub).
func (e endpoint) host() string { return e.reg.RegistryStr() }

// endpoint returns the registry server of domain (a reference's domain).
func (c *Client) endpoint(domain string) (endpoint, error) {
	insecure := c.o.Config.Insecure(domain)
	return newEndpoint(domain, insecure, false)
}

func newEndpoint(host string, insecure, mirror bool) (endpoint, error) {
	var opts []name.Option
	if insecure {
		opts = append(opts, name.Insecure)
	}
	reg, err := name.NewRegistry(host, opts...)
	if err != nil {
		return endpoint{}, errdefs.Wrap(errdefs.ErrInvalid, fmt.Sprintf("registry %q", host), err)
	}
	return endpoint{reg: reg, insecure: insecure, mirror: mirror}, nil
}

// pullEndpoints lists the servers a pull from domain tries, in order:
// the mirrors first for Docker Hub, then the registry itself.
func (c *Client) pullEndpoints(domain string) ([]endpoint, error) {
	var out []endpoint
	if isHub(domain) {
		for _, m := range c.o.Config.Mirrors {
			mi, err := parseMirror(m)
			if err != nil {
				return nil, err
			}
			ep, err := newEndpoint(mi.host, mi.insecure || c.o.Config.Insecure(mi.host), true)
			if err != nil {
				return nil, err
			}
			out = append(out, ep)
		}
	}
	ep, err := c.endpoint(domain)
	if err != nil {
		return nil, err
	}
	return append(out, ep), nil
}

// isHub reports whether domain is Docker Hub.
func isHub(domain string) bool {
	switch domain {
	case "docker.io", "index.docker.io", "registry-1.docker.io":
		return true
	}
	return false
}

// base returns the HTTP transport for the endpoint's host: its TLS
// settings (CAs and client certificates from the certs directories,
// verification off for insecure registries), the dialer, and the guard
// that keeps plain HTTP away from registries that are not insecure.
func (c *Client) base(ep endpoint) (*guardTransport, error) {
	host := ep.host()
	c.mu.Lock()
	defer c.mu.Unlock()
	if b, ok := c.bases[host]; ok {
		return b, nil
	}
	tlsCfg, err := c.tlsConfig(host, ep.insecure)
	if err != nil {
		return nil, err
	}
	dial := c.o.Dial
	if dial == nil {
		dial = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	}
	tr := &http.Transport{
		DialContext:           dial,
		TLSClientConfig:       tlsCfg,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   32,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   15 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	if c.o.Dial == nil {
		tr.Proxy = http.ProxyFromEnvironment
	}
	b := &guardTransport{inner: tr, host: host, insecure: ep.insecure}
	c.bases[host] = b
	return b, nil
}

// tlsConfig builds the TLS settings for host: the system's roots plus the
// *.crt files of <certs dir>/<host>/, and the client key pairs
// (*.cert + *.key) there, as docker's certs.d.
func (c *Client) tlsConfig(host string, insecure bool) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: insecure} //nolint:gosec // insecure registries are the user's choice
	for _, dir := range c.o.Config.certsDirs() {
		d := filepath.Join(dir, host)
		ents, err := os.ReadDir(d)
		if err != nil {
			continue
		}
		for _, e := range ents {
			p := filepath.Join(d, e.Name())
			switch {
			case strings.HasSuffix(e.Name(), ".crt"):
				pem, err := os.ReadFile(p)
				if err != nil {
					return nil, fmt.Errorf("registry %s: CA certificate: %w", host, err)
				}
				if cfg.RootCAs == nil {
					if cfg.RootCAs, err = x509.SystemCertPool(); err != nil || cfg.RootCAs == nil {
						cfg.RootCAs = x509.NewCertPool()
					}
				}
				if !cfg.RootCAs.AppendCertsFromPEM(pem) {
					return nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("registry %s: %s holds no PEM certificate", host, p))
				}
			case strings.HasSuffix(e.Name(), ".cert"):
				key := strings.TrimSuffix(p, ".cert") + ".key"
				pair, err := tls.LoadX509KeyPair(p, key)
				if err != nil {
					return nil, errdefs.Wrap(errdefs.ErrInvalid, fmt.Sprintf("registry %s: client certificate %s (key %s)", host, p, key), err)
				}
				cfg.Certificates = append(cfg.Certificates, pair)
			case strings.HasSuffix(e.Name(), ".key"):
				if _, err := os.Stat(strings.TrimSuffix(p, ".key") + ".cert"); err != nil {
					return nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("registry %s: key %s has no matching .cert file", host, p))
				}
			}
		}
	}
	return cfg, nil
}

// guardTransport refuses plain-HTTP requests to a registry that is not
// insecure, so that go-containerregistry's own heuristics (which also try
// HTTP for private addresses) never decide for the user.
type guardTransport struct {
	inner    *http.Transport
	host     string
	insecure bool
}

func (g *guardTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme == "http" && !g.insecure && strings.EqualFold(req.URL.Host, g.host) {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, &plainHTTPError{host: g.host}
	}
	return g.inner.RoundTrip(req)
}

// plainHTTPError is the guard's refusal.
type plainHTTPError struct{ host string }

func (e *plainHTTPError) Error() string {
	return "refusing plain HTTP to " + e.host + ", which is not an insecure registry"
}

// Repo is an authenticated connection to one repository on one registry
// server. It is safe for concurrent use.
type Repo struct {
	c      *Client
	ep     endpoint
	repo   name.Repository
	client *http.Client
	// display is the repository as messages name it: docker's short form
	// of the name the caller asked for (a mirror serves under the same).
	display string
}

// Host is the registry server the repository is on.
func (r *Repo) Host() string { return r.ep.host() }

// Path is the repository's path on its registry ("library/busybox").
func (r *Repo) Path() string { return r.repo.RepositoryStr() }

// IsMirror reports whether the repository is on a mirror.
func (r *Repo) IsMirror() bool { return r.ep.mirror }

// openRepo authenticates to path on ep for pulling, or for pushing (with
// pull access to the repositories in mountFrom, for cross-repository
// mounts).
func (c *Client) openRepo(ctx context.Context, ep endpoint, path, display string, push bool, mountFrom []string) (*Repo, error) {
	repo := ep.reg.Repo(path) // path comes from a parsed reference
	scopes := []string{repo.Scope(transport.PullScope)}
	if push {
		scopes = []string{repo.Scope(transport.PushScope)}
		for _, from := range mountFrom {
			scopes = append(scopes, ep.reg.Repo(from).Scope(transport.PullScope))
		}
	}
	rt, err := c.authTransport(ctx, ep, repo, scopes)
	if err != nil {
		return nil, err
	}
	return &Repo{c: c, ep: ep, repo: repo, client: &http.Client{Transport: rt, CheckRedirect: checkRedirect}, display: display}, nil
}

// authTransport pings ep and returns a transport that authenticates as
// the keychain says for res, for the given scopes.
func (c *Client) authTransport(ctx context.Context, ep endpoint, res authn.Resource, scopes []string) (http.RoundTripper, error) {
	auth, err := authn.Resolve(ctx, c.o.Keychain, res)
	if err != nil {
		return nil, fmt.Errorf("credentials for %s: %w", ep.host(), err)
	}
	return c.authTransportWith(ctx, ep, auth, scopes)
}

func (c *Client) authTransportWith(ctx context.Context, ep endpoint, auth authn.Authenticator, scopes []string) (http.RoundTripper, error) {
	base, err := c.base(ep)
	if err != nil {
		return nil, err
	}
	rt, err := transport.NewWithContext(ctx, ep.reg, auth, transport.NewUserAgent(base, c.o.UserAgent), scopes)
	if err != nil {
		return nil, c.classify(ep, "registry "+ep.host(), err)
	}
	return rt, nil
}

// checkRedirect follows up to 10 redirects (blob downloads are often
// redirected to storage) but never from a named host to a private,
// loopback or link-local address, so a hostile registry cannot aim the
// client at services of the local network.
func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return fmt.Errorf("stopped after 10 redirects")
	}
	from := via[0].URL.Hostname()
	to := req.URL.Hostname()
	if from == to {
		return nil
	}
	fromIP := net.ParseIP(from)
	if ip := net.ParseIP(to); ip != nil && (ip.IsPrivate() || ip.IsLoopback() || ip.IsLinkLocalUnicast() || ip.IsUnspecified()) &&
		(fromIP == nil || !(fromIP.IsPrivate() || fromIP.IsLoopback())) {
		return fmt.Errorf("refusing redirect from %s to the local address %s", from, to)
	}
	return nil
}

// url is the address of a resource of the repository: kind "manifests"
// or "blobs", ref a tag or digest. The scheme is settled by the transport
// (go-containerregistry rewrites it to what the ping found).
func (r *Repo) url(kind, ref string) string {
	return fmt.Sprintf("https://%s/v2/%s/%s/%s", r.ep.host(), r.repo.RepositoryStr(), kind, ref)
}

// do sends a request and checks its status against want; errors are
// returned raw (a *transport.Error for a registry's refusal) for the
// caller to classify with what it was about.
func (r *Repo) do(ctx context.Context, method, u string, hdr http.Header, body io.Reader, size int64, want ...int) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	if body != nil {
		req.ContentLength = size
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, err
	}
	if err := transport.CheckError(resp, want...); err != nil {
		resp.Body.Close()
		return nil, err
	}
	return resp, nil
}
