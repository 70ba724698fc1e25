//go:build !linux

package berth

import (
	"context"

	"github.com/berth-run/berth/internal/errdefs"
)

func (r *Runtime) prepareVolume(context.Context, string, string, string, bool) error {
	return errdefs.ErrNotSupported
}

func unmountVolume(string) {}
