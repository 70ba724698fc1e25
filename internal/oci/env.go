package oci

import (
	"fmt"
	"strings"

	"github.com/berth-run/berth/internal/errdefs"
)

func envKey(e string) string {
	k, _, _ := strings.Cut(e, "=")
	return k
}

// mergeImageEnv is docker's merge of the user's and the image's Env
// (daemon/commit.go merge): the user's entries in order, then the image's
// entries whose key the user did not give. A user entry without "=" still
// hides the image's key.
func mergeImageEnv(user, image []string) []string {
	if len(user) == 0 {
		return append([]string(nil), image...)
	}
	out := append([]string(nil), user...)
	keys := make(map[string]bool, len(user))
	for _, e := range user {
		keys[envKey(e)] = true
	}
	for _, e := range image {
		if !keys[envKey(e)] {
			out = append(out, e)
		}
	}
	return out
}

// processEnv is docker's container environment
// (container.CreateDaemonEnvironment): PATH (the default), HOSTNAME (unless
// hostname is empty) and,
// with a terminal, TERM=xterm, each replaced in place by an entry of env
// with the same key; the other entries appended in order; entries without
// "=" remove the key. HOME is appended from the user's passwd entry when
// missing or empty, as runc does before exec.
func processEnv(env []string, hostname string, tty bool, home string) []string {
	out := []string{"PATH=" + DefaultPath}
	if hostname != "" {
		out = append(out, "HOSTNAME="+hostname)
	}
	if tty {
		out = append(out, "TERM=xterm")
	}
	index := make(map[string]int, len(out)+len(env))
	for i, e := range out {
		index[envKey(e)] = i
	}
	removed := map[int]bool{}
	for _, e := range env {
		k, _, hasValue := strings.Cut(e, "=")
		i, exists := index[k]
		switch {
		case !hasValue:
			if exists {
				removed[i] = true
			}
		case exists:
			out[i] = e
			delete(removed, i)
		default:
			index[k] = len(out)
			out = append(out, e)
		}
	}
	final := out[:0]
	for i, e := range out {
		if !removed[i] {
			final = append(final, e)
		}
	}
	homeSet := false
	for i, e := range final {
		if k, v, _ := strings.Cut(e, "="); k == "HOME" {
			if v == "" {
				final[i] = "HOME=" + home
			}
			homeSet = true
		}
	}
	if !homeSet {
		final = append(final, "HOME="+home)
	}
	return final
}

// validateEnv rejects entries docker's API would reject: an empty key, or
// a NUL byte (which cannot be passed to execve).
func validateEnv(env []string) error {
	for _, e := range env {
		if envKey(e) == "" {
			return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid environment variable: %q", e))
		}
		if strings.ContainsRune(e, 0) {
			return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("environment variable %q contains a NUL byte", envKey(e)))
		}
	}
	return nil
}
