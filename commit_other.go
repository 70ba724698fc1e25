//go:build !linux

package berth

import (
	"context"

	"github.com/berth-run/berth/internal/errdefs"
)

func (c *Container) commit(context.Context, string, commitOptions) (*Image, error) {
	return nil, errdefs.ErrNotSupported
}
