//go:build !linux

package berth

import (
	"context"

	"github.com/berth-run/berth/internal/errdefs"
)

func (c *Container) top(context.Context, []string) (*TopResult, error) {
	return nil, errdefs.ErrNotSupported
}
