//go:build !linux

package berth

import (
	"context"

	"github.com/berth-run/berth/internal/errdefs"
)

func (c *Container) diff(context.Context) ([]Change, error) { return nil, errdefs.ErrNotSupported }
