package berth

import (
	"context"
	"fmt"

	"github.com/berth-run/berth/internal/errdefs"
	"github.com/berth-run/berth/internal/registry"
)

// Login checks user and password against the registry server
// ("host:5000"; "" or "docker.io" for Docker Hub) — basic
// authentication or the bearer-token flow, whichever the registry asks
// for — and stores them in berth's credential file (WithAuthFile), where
// Pull, Push and Search find them. Wrong credentials are an
// ErrUnauthorized error and store nothing.
func (r *Runtime) Login(ctx context.Context, server, user, password string) error {
	if user == "" || password == "" {
		return errdefs.New(errdefs.ErrInvalid, "login: a user name and a password are required")
	}
	key, err := registry.ServerKey(server)
	if err != nil {
		return err
	}
	cl, err := r.registryClient(nil)
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := cl.Login(ctx, server, user, password); err != nil {
		return err
	}
	path := r.authFilePath()
	if path == "" {
		return fmt.Errorf("login: no credential file: set one with berth.WithAuthFile or $BERTH_AUTH_FILE")
	}
	return registry.SaveAuth(path, key, user, password)
}

// Logout removes the credentials of server from berth's credential file.
// Not being logged in is an ErrNotFound error. Credentials in docker's
// config.json are left alone.
func (r *Runtime) Logout(ctx context.Context, server string) error {
	key, err := registry.ServerKey(server)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	found, err := registry.RemoveAuth(r.authFilePath(), key)
	if err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("not logged in to %s: %w", loginName(key), errdefs.ErrNotFound)
	}
	return nil
}

// LoginServer is the name docker prints for a login server argument:
// "docker.io" for Docker Hub (whatever the spelling), host[:port]
// otherwise.
func LoginServer(server string) (string, error) {
	key, err := registry.ServerKey(server)
	if err != nil {
		return "", err
	}
	return loginName(key), nil
}

func loginName(key string) string {
	if key == registry.HubKey {
		return "docker.io"
	}
	return key
}

// LoggedInUser returns the user name stored for server in berth's
// credential file, or "" (for `login`'s "Username (user):" prompt).
func (r *Runtime) LoggedInUser(server string) string {
	key, err := registry.ServerKey(server)
	if err != nil {
		return ""
	}
	auths, err := registry.LoadAuthFile(r.authFilePath())
	if err != nil {
		return ""
	}
	for k, a := range auths {
		if kk, err := registry.ServerKey(k); err == nil && kk == key {
			return a.User()
		}
	}
	return ""
}
