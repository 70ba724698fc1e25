//go:build !linux

package archive

import (
	"context"
	"io"

	"github.com/berth-run/berth/internal/errdefs"
)

func writeTree(ctx context.Context, w io.Writer, root string, opts treeOptions) error {
	return errdefs.New(errdefs.ErrNotSupported, "archiving a tree needs linux")
}
