//go:build !linux

package berth

import (
	"context"

	"github.com/berth-run/berth/internal/errdefs"
)

func (c *Container) update(context.Context, Update) error { return errdefs.ErrNotSupported }
func (c *Container) rename(context.Context, string) error { return errdefs.ErrNotSupported }
