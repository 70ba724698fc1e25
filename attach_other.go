//go:build !linux

package berth

import (
	"context"

	"github.com/berth-run/berth/internal/errdefs"
)

func (c *Container) attach(context.Context, AttachOptions, []byte) (*Attachment, error) {
	return nil, errdefs.ErrNotSupported
}
