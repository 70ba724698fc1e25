//go:build !linux

package oci

import "github.com/berth-run/berth/internal/errdefs"

// CreateWorkdir creates the working directory dir inside rootfs; only on
// linux.
func CreateWorkdir(rootfs, dir string) error {
	return errdefs.New(errdefs.ErrNotSupported, "containers run only on linux")
}
