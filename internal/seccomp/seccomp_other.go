//go:build !linux

package seccomp

import "github.com/berth-run/berth/internal/errdefs"

// Install is not supported on this platform.
func Install(prog []byte, flags uint) error {
	return errdefs.New(errdefs.ErrNotSupported, "seccomp is only supported on linux")
}
