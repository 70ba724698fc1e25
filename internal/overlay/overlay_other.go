//go:build !linux

package overlay

import "github.com/berth-run/berth/internal/errdefs"

// Mount is not supported on this platform.
func Mount(lowers []string, upper, work, target string) error { return errdefs.ErrNotSupported }

// Unmount is not supported on this platform.
func Unmount(target string) error { return errdefs.ErrNotSupported }

// Mounted is always false on this platform.
func Mounted(target string) bool { return false }
