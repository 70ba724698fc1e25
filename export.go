package berth

import (
	"context"
	"io"
)

// Export writes the container's filesystem to w as a tar stream (docker
// export): the image's files with the container's changes, without its
// volumes and other mounts. A running container is read as it runs; a
// stopped one through a read-only mount of its layers, during which it
// cannot be started.
func (c *Container) Export(ctx context.Context, w io.Writer) error { return c.export(ctx, w) }
