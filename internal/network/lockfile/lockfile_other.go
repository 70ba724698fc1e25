//go:build !unix

package lockfile

import (
	"os"

	"github.com/berth-run/berth/internal/errdefs"
)

func tryLock(*os.File) (bool, error) {
	return false, errdefs.ErrNotSupported
}
