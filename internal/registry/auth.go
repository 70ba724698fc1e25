package registry

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	dockerconfig "github.com/docker/cli/cli/config"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/berth-run/berth/internal/errdefs"
)

// HubKey is the key of Docker Hub in credential files (docker's, kept for
// compatibility).
const HubKey = "https://index.docker.io/v1/"

// ServerKey turns a login server argument ("", "docker.io",
// "https://index.docker.io/v1/", "host:5000", "https://host:5000/v2/")
// into the key of credential files: HubKey for Docker Hub, host[:port]
// otherwise.
func ServerKey(server string) (string, error) {
	s := strings.TrimSpace(server)
	if s == "" {
		return HubKey, nil
	}
	host := s
	if strings.Contains(s, "://") {
		u, err := url.Parse(s)
		if err != nil || u.Host == "" {
			return "", errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid registry address %q", server))
		}
		host = u.Host
	} else {
		host, _, _ = strings.Cut(s, "/")
	}
	host = strings.ToLower(host)
	if isHub(host) {
		return HubKey, nil
	}
	if host == "" || strings.ContainsAny(host, " \t@") {
		return "", errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid registry address %q", server))
	}
	return host, nil
}

// keyHost is the registry host a credential file key names.
func keyHost(key string) string {
	k, err := ServerKey(key)
	if err != nil {
		return key
	}
	if k == HubKey {
		return "index.docker.io"
	}
	return k
}

// Keychain finds the credentials for a registry: the ones given for one
// call, then berth's credential file, then docker's config.json and the
// credential helpers it names (credsStore, credHelpers). No credentials
// means anonymous access.
type Keychain struct {
	// Explicit credentials are used for every registry of the call.
	Explicit *authn.AuthConfig
	// AuthFile is berth's credential file ("" for none).
	AuthFile string
	// DockerConfigDir holds docker's config.json; "" means $DOCKER_CONFIG,
	// else ~/.docker.
	DockerConfigDir string
}

// Resolve implements authn.Keychain.
func (k *Keychain) Resolve(res authn.Resource) (authn.Authenticator, error) {
	if k.Explicit != nil {
		return authn.FromConfig(*k.Explicit), nil
	}
	host := keyHost(res.RegistryStr())
	if k.AuthFile != "" {
		auths, err := LoadAuthFile(k.AuthFile)
		if err != nil {
			return nil, err
		}
		for key, a := range auths {
			if keyHost(key) == host {
				cfg, err := a.config()
				if err != nil {
					return nil, fmt.Errorf("credential file %s: %s: %w", k.AuthFile, key, err)
				}
				return authn.FromConfig(cfg), nil
			}
		}
	}
	return k.docker(host)
}

// docker looks host up in docker's config.json, through its credential
// helpers when it names them.
func (k *Keychain) docker(host string) (authn.Authenticator, error) {
	dir := k.DockerConfigDir
	if dir == "" {
		dir = os.Getenv("DOCKER_CONFIG")
	}
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return authn.Anonymous, nil
		}
		dir = filepath.Join(home, ".docker")
	}
	if _, err := os.Stat(filepath.Join(dir, dockerconfig.ConfigFileName)); err != nil {
		return authn.Anonymous, nil
	}
	cf, err := dockerconfig.Load(dir)
	if err != nil {
		return nil, fmt.Errorf("docker config: %w", err)
	}
	key := host
	if host == "index.docker.io" {
		key = HubKey
	}
	ac, err := cf.GetAuthConfig(key)
	if err != nil {
		return nil, fmt.Errorf("docker credentials for %s: %w", host, err)
	}
	if ac.Username == "" && ac.Password == "" && ac.Auth == "" && ac.IdentityToken == "" && ac.RegistryToken == "" {
		return authn.Anonymous, nil
	}
	return authn.FromConfig(authn.AuthConfig{Username: ac.Username, Password: ac.Password, Auth: ac.Auth,
		IdentityToken: ac.IdentityToken, RegistryToken: ac.RegistryToken}), nil
}

// AuthEntry is one registry's entry in a credential file.
type AuthEntry struct {
	Auth          string `json:"auth,omitempty"` // base64("user:password")
	IdentityToken string `json:"identitytoken,omitempty"`
}

func (a AuthEntry) config() (authn.AuthConfig, error) {
	cfg := authn.AuthConfig{IdentityToken: a.IdentityToken}
	if a.Auth != "" {
		b, err := base64.StdEncoding.DecodeString(a.Auth)
		if err != nil {
			return cfg, errdefs.Wrap(errdefs.ErrInvalid, "malformed auth", err)
		}
		user, pass, ok := strings.Cut(string(b), ":")
		if !ok {
			return cfg, errdefs.New(errdefs.ErrInvalid, "malformed auth: no user:password")
		}
		cfg.Username, cfg.Password = user, pass
	}
	return cfg, nil
}

// User is the user name of the entry, or "".
func (a AuthEntry) User() string {
	cfg, _ := a.config()
	return cfg.Username
}

// authFile is berth's credential file: docker's and podman's format
// ({"auths": {key: {"auth": base64}}}); other keys are kept.
type authFile struct {
	Auths map[string]AuthEntry       `json:"auths"`
	Other map[string]json.RawMessage `json:"-"`
}

func readAuthFile(path string) (*authFile, error) {
	f := &authFile{Auths: map[string]AuthEntry{}, Other: map[string]json.RawMessage{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return f, nil
	}
	if err != nil {
		return nil, fmt.Errorf("credential file: %w", err)
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		return f, nil
	}
	if err := json.Unmarshal(b, &f.Other); err != nil {
		return nil, errdefs.Wrap(errdefs.ErrInvalid, "credential file "+path, err)
	}
	if raw, ok := f.Other["auths"]; ok {
		if err := json.Unmarshal(raw, &f.Auths); err != nil {
			return nil, errdefs.Wrap(errdefs.ErrInvalid, "credential file "+path, err)
		}
		if f.Auths == nil {
			f.Auths = map[string]AuthEntry{}
		}
	}
	delete(f.Other, "auths")
	return f, nil
}

func (f *authFile) write(path string) error {
	out := map[string]any{}
	for k, v := range f.Other {
		out[k] = v
	}
	out["auths"] = f.Auths
	b, err := json.MarshalIndent(out, "", "\t")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("credential file: %w", err)
	}
	tmp := path + ".tmp" + strconv.Itoa(os.Getpid())
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("credential file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("credential file: %w", err)
	}
	return nil
}

// LoadAuthFile reads the entries of a credential file; a missing file has
// none.
func LoadAuthFile(path string) (map[string]AuthEntry, error) {
	f, err := readAuthFile(path)
	if err != nil {
		return nil, err
	}
	return f.Auths, nil
}

// SaveAuth stores user and password for the registry key (see ServerKey)
// in the credential file at path, created with mode 0600.
func SaveAuth(path, key, user, password string) error {
	f, err := readAuthFile(path)
	if err != nil {
		return err
	}
	for k := range f.Auths {
		if keyHost(k) == keyHost(key) {
			delete(f.Auths, k)
		}
	}
	f.Auths[key] = AuthEntry{Auth: base64.StdEncoding.EncodeToString([]byte(user + ":" + password))}
	return f.write(path)
}

// RemoveAuth removes the registry key's entry from the credential file
// and reports whether there was one.
func RemoveAuth(path, key string) (bool, error) {
	f, err := readAuthFile(path)
	if err != nil {
		return false, err
	}
	found := false
	for k := range f.Auths {
		if keyHost(k) == keyHost(key) {
			delete(f.Auths, k)
			found = true
		}
	}
	if !found {
		return false, nil
	}
	return true, f.write(path)
}

// Login checks user and password against the registry server (see
// ServerKey): it pings the registry, fetches a token with the credentials
// when the registry asks for bearer tokens, and GETs /v2/ with them. Wrong
// credentials are an ErrUnauthorized error. It stores nothing.
func (c *Client) Login(ctx context.Context, server, user, password string) error {
	key, err := ServerKey(server)
	if err != nil {
		return err
	}
	host := keyHost(key)
	if host == "index.docker.io" {
		host = "docker.io"
	}
	ep, err := c.endpoint(host)
	if err != nil {
		return err
	}
	auth := authn.FromConfig(authn.AuthConfig{Username: user, Password: password})
	what := "login to " + ep.host()
	rt, err := c.authTransportWith(ctx, ep, auth, nil)
	if err != nil {
		return loginErr(what, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+ep.host()+"/v2/", nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: rt, CheckRedirect: checkRedirect}).Do(req)
	if err != nil {
		return loginErr(what, c.classify(ep, what, err))
	}
	defer resp.Body.Close()
	if err := transport.CheckError(resp, http.StatusOK); err != nil {
		return loginErr(what, c.classify(ep, what, err))
	}
	return nil
}

// loginErr words a refusal of the credentials as docker does.
func loginErr(what string, err error) error {
	if !errors.Is(err, errdefs.ErrUnauthorized) {
		return err
	}
	cause := err
	var k *errdefs.Kind
	if errors.As(err, &k) && k.Cause != nil {
		cause = k.Cause
	}
	return errdefs.Wrap(errdefs.ErrUnauthorized, what+" failed: incorrect username or password", cause)
}
