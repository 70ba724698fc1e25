//go:build !linux

package berth

import (
	"context"
	"errors"

	"github.com/berth-run/berth/internal/errdefs"
)

func (r *Runtime) defaultNetwork(context.Context) (*networkRecord, error) {
	rec, err := r.readNetwork(DefaultNetwork)
	if errors.Is(err, errdefs.ErrNotFound) {
		return nil, errdefs.ErrNotSupported
	}
	return rec, err
}

func (r *Runtime) createNetwork(context.Context, networkConfig) (*networkRecord, error) {
	return nil, errdefs.ErrNotSupported
}

func (r *Runtime) removeNetwork(context.Context, *networkRecord) error {
	return errdefs.ErrNotSupported
}

func (c *Container) connect(context.Context, string, connectOptions) error {
	return errdefs.ErrNotSupported
}

func (c *Container) disconnect(context.Context, string, bool) error {
	return errdefs.ErrNotSupported
}
