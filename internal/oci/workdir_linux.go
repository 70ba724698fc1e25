package oci

import (
	"errors"
	"path"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"golang.org/x/sys/unix"

	"github.com/berth-run/berth/internal/errdefs"
)

// CreateWorkdir creates the working directory dir (spec.Process.Cwd) inside
// rootfs if it is missing, as docker does at container start: mode 0755,
// owned by the caller (root), symlinks resolved inside rootfs. A path
// component that is not a directory is an ErrInvalid error.
func CreateWorkdir(rootfs, dir string) error {
	if !path.IsAbs(dir) {
		return invalidf("the working directory %q is invalid, it needs to be an absolute path", dir)
	}
	err := pathrs.MkdirAll(rootfs, dir, 0o755)
	if errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.EEXIST) {
		return errdefs.Wrap(errdefs.ErrInvalid, "cannot mkdir: "+dir+" is not a directory", err)
	}
	return err
}
