//go:build !linux

package archive

import (
	"archive/tar"
	"context"
	"io"

	"github.com/berth-run/berth/internal/errdefs"
)

type applier struct{}

func newApplier(dir string, opts ApplyOptions) (*applier, error) {
	return nil, errdefs.New(errdefs.ErrNotSupported, "applying layers needs linux")
}

func (a *applier) close() {}

func (a *applier) entry(ctx context.Context, hdr *tar.Header, name string, r io.Reader) (bool, error) {
	return false, errdefs.ErrNotSupported
}

func (a *applier) finish() error { return errdefs.ErrNotSupported }
