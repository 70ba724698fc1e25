//go:build !linux

package berth

import (
	"context"

	"github.com/berth-run/berth/internal/errdefs"
)

func (c *Container) stats(context.Context) (*ContainerStats, error) {
	return nil, errdefs.ErrNotSupported
}
