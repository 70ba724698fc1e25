//go:build !linux

package archive

import (
	"os"

	"github.com/berth-run/berth/internal/errdefs"
)

func openInRoot(root, path string, flag int, perm os.FileMode) (*os.File, error) {
	return nil, errdefs.ErrNotSupported
}

func mkdirAllInRoot(root, path string, perm os.FileMode) (*os.File, error) {
	return nil, errdefs.ErrNotSupported
}

func syncFS(path string) error { return errdefs.ErrNotSupported }
