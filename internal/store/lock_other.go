//go:build !linux

package store

import (
	"os"

	"github.com/berth-run/berth/internal/errdefs"
)

func flock(*os.File, bool) error      { return errdefs.ErrNotSupported }
func tryFlock(*os.File) (bool, error) { return false, errdefs.ErrNotSupported }
func funlock(*os.File) error          { return errdefs.ErrNotSupported }
