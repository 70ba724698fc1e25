//go:build !linux

package berth

import (
	"context"
	"io"

	"github.com/berth-run/berth/internal/errdefs"
)

func (c *Container) statPath(context.Context, string) (PathStat, error) {
	return PathStat{}, errdefs.ErrNotSupported
}

func (c *Container) copyFrom(context.Context, string) (io.ReadCloser, PathStat, error) {
	return nil, PathStat{}, errdefs.ErrNotSupported
}

type owner struct{ uid, gid int }

func (c *Container) copyTo(context.Context, string, io.Reader, *owner) error {
	return errdefs.ErrNotSupported
}

func (c *Container) copyOut(context.Context, string, string, copyOptions) error {
	return errdefs.ErrNotSupported
}

func (c *Container) copyIn(context.Context, string, string, copyOptions) error {
	return errdefs.ErrNotSupported
}
