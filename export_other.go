//go:build !linux

package berth

import (
	"context"
	"io"

	"github.com/berth-run/berth/internal/errdefs"
)

func (c *Container) export(context.Context, io.Writer) error { return errdefs.ErrNotSupported }
