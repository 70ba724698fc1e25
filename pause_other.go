//go:build !linux

package berth

import (
	"context"

	"github.com/berth-run/berth/internal/errdefs"
)

func (c *Container) pause(context.Context) error   { return errdefs.ErrNotSupported }
func (c *Container) unpause(context.Context) error { return errdefs.ErrNotSupported }
