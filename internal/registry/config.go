package registry

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"strings"

	"github.com/berth-run/berth/internal/errdefs"
)

// Default locations of the registry settings.
var (
	// DefaultCertsDirs are searched for HOST[:PORT]/ directories of CA
	// certificates (*.crt) and client key pairs (*.cert + *.key): berth's
	// own, then docker's.
	DefaultCertsDirs = []string{"/etc/berth/certs.d", "/etc/docker/certs.d"}
)

// Defaults of the concurrency settings, as docker's.
const (
	DefaultMaxConcurrentDownloads = 3
	DefaultMaxConcurrentUploads   = 5
)

// Config is the registry part of berth's configuration file, with the keys
// docker's daemon.json uses for the same settings.
type Config struct {
	// InsecureRegistries are registries reached over plain HTTP or over
	// HTTPS without certificate verification: "host", "host:port" or a
	// CIDR ("10.0.0.0/8") that matches registries named by IP address.
	// Loopback registries (127.0.0.0/8, ::1, localhost) always are.
	InsecureRegistries []string `json:"insecure-registries,omitempty"`
	// Mirrors are pull-through mirrors of Docker Hub, tried in order
	// before it: "https://mirror.example.com" or "http://10.0.0.1:5000".
	Mirrors []string `json:"registry-mirrors,omitempty"`
	// CertsDirs replace DefaultCertsDirs when not empty.
	CertsDirs []string `json:"certs-dirs,omitempty"`
	// MaxConcurrentDownloads bounds the layers one pull fetches at once.
	MaxConcurrentDownloads int `json:"max-concurrent-downloads,omitempty"`
	// MaxConcurrentUploads bounds the blobs one push uploads at once.
	MaxConcurrentUploads int `json:"max-concurrent-uploads,omitempty"`
}

// LoadConfig reads the registry settings of the configuration file at
// path; other keys are ignored. A missing file is the zero Config; a file
// that does not parse or holds bad values is an ErrInvalid error naming it.
func LoadConfig(path string) (Config, error) {
	var c Config
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, fmt.Errorf("config file %s: %w", path, err)
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, errdefs.Wrap(errdefs.ErrInvalid, "config file "+path, err)
	}
	if err := c.Validate(); err != nil {
		return c, fmt.Errorf("config file %s: %w", path, err)
	}
	return c, nil
}

// Validate checks the settings: insecure registries are host[:port] or a
// CIDR, mirrors are http(s) URLs without a path.
func (c Config) Validate() error {
	for _, r := range c.InsecureRegistries {
		if _, _, err := net.ParseCIDR(r); err == nil {
			continue
		}
		if r == "" || strings.ContainsAny(r, "/ \t") {
			return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("insecure-registries: %q is neither host[:port] nor a CIDR", r))
		}
	}
	for _, m := range c.Mirrors {
		if _, err := parseMirror(m); err != nil {
			return err
		}
	}
	if c.MaxConcurrentDownloads < 0 || c.MaxConcurrentUploads < 0 {
		return errdefs.New(errdefs.ErrInvalid, "max-concurrent-downloads and max-concurrent-uploads must not be negative")
	}
	return nil
}

// Downloads is the bound on concurrent layer downloads.
func (c Config) Downloads() int {
	if c.MaxConcurrentDownloads > 0 {
		return c.MaxConcurrentDownloads
	}
	return DefaultMaxConcurrentDownloads
}

// Uploads is the bound on concurrent blob uploads.
func (c Config) Uploads() int {
	if c.MaxConcurrentUploads > 0 {
		return c.MaxConcurrentUploads
	}
	return DefaultMaxConcurrentUploads
}

func (c Config) certsDirs() []string {
	if len(c.CertsDirs) > 0 {
		return c.CertsDirs
	}
	return DefaultCertsDirs
}

// mirror is a parsed registry-mirrors entry.
type mirror struct {
	host     string
	insecure bool // given as http://
}

func parseMirror(s string) (mirror, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return mirror{}, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("registry-mirrors: %q is not an http:// or https:// URL", s))
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return mirror{}, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("registry-mirrors: %q must be scheme://host[:port] without a path", s))
	}
	return mirror{host: u.Host, insecure: u.Scheme == "http"}, nil
}

// Insecure reports whether host ("name", "name:port", "1.2.3.4:5000",
// "[::1]:5000") may be reached over plain HTTP or unverified TLS: loopback
// registries, and those InsecureRegistries lists. Names are compared as
// written (no DNS lookup); CIDRs match registries named by IP address.
func (c Config) Insecure(host string) bool {
	name := hostname(host)
	if name == "localhost" {
		return true
	}
	ip := net.ParseIP(name)
	if ip != nil && ip.IsLoopback() {
		return true
	}
	for _, r := range c.InsecureRegistries {
		if _, cidr, err := net.ParseCIDR(r); err == nil {
			if ip != nil && cidr.Contains(ip) {
				return true
			}
			continue
		}
		if hasPort(r) {
			if strings.EqualFold(r, host) {
				return true
			}
		} else if strings.EqualFold(strings.Trim(r, "[]"), name) {
			return true // no port given: any port of that host
		}
	}
	return false
}

// hostname strips the port from host[:port] and the brackets from an IPv6
// address.
func hostname(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		return h
	}
	return strings.Trim(host, "[]")
}

func hasPort(host string) bool {
	_, _, err := net.SplitHostPort(host)
	return err == nil
}
