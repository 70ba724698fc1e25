package berth

import (
	"os"
	"path/filepath"
	"sync"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-run/berth/internal/reference"
	"github.com/berth-run/berth/internal/registry"
)

// DefaultConfigFile is berth's configuration file, the equivalent of
// docker's /etc/docker/daemon.json. $BERTH_CONFIG names another.
const DefaultConfigFile = "/etc/berth/config.json"

// registryOptions are the Runtime's registry settings (insecure
// registries, mirrors, CAs, credentials).
type registryOptions struct {
	configFile string            // WithConfigFile; "" = $BERTH_CONFIG or DefaultConfigFile
	config     *RegistryConfig   // WithRegistryConfig: used instead of the file
	authFile   string            // WithAuthFile; "" = $BERTH_AUTH_FILE or ~/.config/berth/auth.json
	dial       registry.DialFunc // tests: route registry connections (registry_export_test.go)
}

// RegistryConfig is berth's registry configuration: the registry keys of
// the config file, named as in docker's daemon.json.
type RegistryConfig struct {
	// InsecureRegistries may be reached over plain HTTP, or HTTPS without
	// certificate verification: "host", "host:port", or a CIDR that
	// matches registries named by IP address. Loopback registries
	// (127.0.0.0/8, ::1, localhost) always are, as in docker.
	InsecureRegistries []string `json:"insecure-registries,omitempty"`
	// Mirrors of Docker Hub, tried in order before it:
	// "https://mirror.example.com", "http://10.0.0.2:5000".
	Mirrors []string `json:"registry-mirrors,omitempty"`
	// CertsDirs hold HOST[:PORT]/ directories with CA certificates
	// (*.crt) and client key pairs (*.cert, *.key). Default
	// /etc/berth/certs.d, then docker's /etc/docker/certs.d.
	CertsDirs []string `json:"certs-dirs,omitempty"`
	// MaxConcurrentDownloads bounds the layers a pull fetches at once.
	// Default 3.
	MaxConcurrentDownloads int `json:"max-concurrent-downloads,omitempty"`
	// MaxConcurrentUploads bounds the blobs a push uploads at once.
	// Default 5.
	MaxConcurrentUploads int `json:"max-concurrent-uploads,omitempty"`
}

// WithConfigFile reads the registry settings from path (JSON with the
// keys of RegistryConfig; other keys are ignored; a missing file means
// the defaults). The file is read by each registry operation. Default:
// $BERTH_CONFIG, or /etc/berth/config.json.
func WithConfigFile(path string) Option { return func(o *options) { o.registry.configFile = path } }

// WithRegistryConfig sets the registry settings directly; no config file
// is read. Default: the config file's (see WithConfigFile).
func WithRegistryConfig(cfg RegistryConfig) Option {
	return func(o *options) { o.registry.config = &cfg }
}

// WithAuthFile sets berth's credential file, where Login stores and
// Logout removes credentials (docker's and podman's format). Default:
// $BERTH_AUTH_FILE, or $XDG_CONFIG_HOME/berth/auth.json
// (~/.config/berth/auth.json).
func WithAuthFile(path string) Option { return func(o *options) { o.registry.authFile = path } }

// RegistryOption configures one registry operation: Pull, Push, Search,
// RemoteTags.
type RegistryOption func(*registryCall)

type registryCall struct {
	auth     *authn.AuthConfig
	platform string
	progress func(Progress)
	limit    int
	filters  []string
}

// WithAuth sends user and password to the registry for this operation,
// instead of stored credentials. Default: the credentials stored by Login
// or in docker's config.json, else anonymous.
func WithAuth(user, password string) RegistryOption {
	return func(c *registryCall) { c.auth = &authn.AuthConfig{Username: user, Password: password} }
}

// WithPlatform chooses the image of a multi-platform index to pull:
// "os/arch[/variant]" (docker's --platform), e.g. "linux/arm64". A single
// image for another platform is refused. Default: the host's platform,
// with no check of single images.
func WithPlatform(platform string) RegistryOption {
	return func(c *registryCall) { c.platform = platform }
}

// WithProgress calls fn with the progress of each layer of a pull or a
// push. fn is called from several goroutines, but never concurrently, and
// must not block for long. Default: none.
func WithProgress(fn func(Progress)) RegistryOption {
	return func(c *registryCall) { c.progress = fn }
}

// WithSearchLimit bounds the results of Search. Default 25, as docker.
func WithSearchLimit(n int) RegistryOption { return func(c *registryCall) { c.limit = n } }

// WithSearchFilter keeps the Search results that match docker's filters:
// "stars=N" (at least N stars), "is-official=true|false",
// "is-automated=true|false". Default: none.
func WithSearchFilter(filters ...string) RegistryOption {
	return func(c *registryCall) { c.filters = append(c.filters, filters...) }
}

func makeRegistryCall(opts []RegistryOption) *registryCall {
	c := &registryCall{}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Phases of Progress, in docker's words.
const (
	PhasePullingFS        = "Pulling fs layer"
	PhaseWaiting          = "Waiting"
	PhaseDownloading      = "Downloading"
	PhaseVerifying        = "Verifying Checksum"
	PhaseDownloadComplete = "Download complete"
	PhaseExtracting       = "Extracting"
	PhasePullComplete     = "Pull complete"
	PhaseAlreadyExists    = "Already exists"
	PhasePreparing        = "Preparing"
	PhasePushing          = "Pushing"
	PhasePushed           = "Pushed"
	PhaseLayerExists      = "Layer already exists"
	PhaseMounted          = "Mounted from"
)

// Progress is an event of one layer of a pull or a push.
type Progress struct {
	// ID is the short form of the layer blob's digest (12 hex digits),
	// as docker prints it.
	ID     string
	Digest digest.Digest
	// Phase is one of the Phase constants.
	Phase string
	// Current and Total are bytes done and expected in Downloading,
	// Extracting and Pushing (Total 0 when unknown).
	Current, Total int64
	// From is the repository a blob was mounted from (PhaseMounted).
	From string
}

// progressSink serializes the calls of a user's progress function.
type progressSink struct {
	mu sync.Mutex
	fn func(Progress)
}

func (p *progressSink) emit(ev Progress) {
	if p == nil || p.fn == nil {
		return
	}
	if ev.ID == "" {
		ev.ID = shortDigest(ev.Digest)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fn(ev)
}

func shortDigest(d digest.Digest) string {
	if e := d.Encoded(); len(e) >= 12 {
		return e[:12]
	}
	return d.Encoded()
}

// configFilePath is the config file in effect.
func (r *Runtime) configFilePath() string {
	if r.opts.registry.configFile != "" {
		return r.opts.registry.configFile
	}
	if p := os.Getenv("BERTH_CONFIG"); p != "" {
		return p
	}
	return DefaultConfigFile
}

// authFilePath is berth's credential file in effect.
func (r *Runtime) authFilePath() string {
	if r.opts.registry.authFile != "" {
		return r.opts.registry.authFile
	}
	if p := os.Getenv("BERTH_AUTH_FILE"); p != "" {
		return p
	}
	dir := os.Getenv("XDG_CONFIG_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return ""
		}
		dir = filepath.Join(home, ".config")
	}
	return filepath.Join(dir, "berth", "auth.json")
}

// registryConfig is the registry configuration in effect.
func (r *Runtime) registryConfig() (registry.Config, string, error) {
	if c := r.opts.registry.config; c != nil {
		cfg := registry.Config(*c)
		return cfg, "the RegistryConfig given to berth.WithRegistryConfig", cfg.Validate()
	}
	path := r.configFilePath()
	cfg, err := registry.LoadConfig(path)
	return cfg, path, err
}

// registryClient makes the client of one registry operation: the
// configuration read now, the credentials of the call or the stores.
// Close it when done.
func (r *Runtime) registryClient(call *registryCall) (*registry.Client, error) {
	cfg, file, err := r.registryConfig()
	if err != nil {
		return nil, err
	}
	kc := &registry.Keychain{AuthFile: r.authFilePath()}
	if call != nil && call.auth != nil {
		kc.Explicit = call.auth
	}
	return registry.New(registry.Options{
		Config:     cfg,
		ConfigFile: file,
		Keychain:   kc,
		Dial:       r.opts.registry.dial,
		UserAgent:  "berth",
	}), nil
}

// platformOf parses the call's platform, or returns the host's.
func (c *registryCall) platformOf() (ocispec.Platform, bool, error) {
	if c.platform == "" {
		return registry.DefaultPlatform(), false, nil
	}
	p, err := registry.ParsePlatform(c.platform)
	return p, true, err
}

// Reference is an image reference normalized docker's way: "busybox" is
// docker.io/library/busybox:latest.
type Reference struct {
	// Domain is the registry ("docker.io", "127.0.0.1:5000").
	Domain string
	// Path is the repository within it ("library/busybox").
	Path string
	// Tag and Digest; Tag is "latest" when the input had neither.
	Tag    string
	Digest digest.Digest
	// DefaultTag reports that Tag was added.
	DefaultTag bool

	ref reference.Ref
}

// ParseReference parses an image reference ("busybox",
// "host:5000/app:v1", "app@sha256:..."). Malformed input is an
// ErrInvalid error.
func ParseReference(s string) (Reference, error) {
	bare, err := reference.ParseName(s)
	if err != nil {
		return Reference{}, err
	}
	ref, err := reference.Parse(s)
	if err != nil {
		return Reference{}, err
	}
	return Reference{Domain: ref.Domain(), Path: ref.Path(), Tag: ref.Tag(), Digest: ref.Digest(),
		DefaultTag: bare.Tag() == "" && bare.Digest() == "", ref: ref}, nil
}

// String is the full form: "docker.io/library/busybox:latest".
func (r Reference) String() string { return r.ref.String() }

// Familiar is docker's short form: "busybox:latest".
func (r Reference) Familiar() string { return r.ref.Familiar() }

// Name is the full repository name: "docker.io/library/busybox".
func (r Reference) Name() string { return r.ref.Name() }

// FamiliarName is the short repository name: "busybox".
func (r Reference) FamiliarName() string { return r.ref.FamiliarName() }
