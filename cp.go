package berth

import (
	"context"
	"io"
	"os"
	"time"
)

// PathStat describes a path in a container, as docker's archive API
// does (its X-Docker-Container-Path-Stat header).
type PathStat struct {
	Name  string      `json:"name"`
	Size  int64       `json:"size"`
	Mode  os.FileMode `json:"mode"`
	Mtime time.Time   `json:"mtime"`
	// LinkTarget is, for a symlink, the path it leads to in the
	// container, with every symlink on the way resolved inside the
	// container's root.
	LinkTarget string `json:"linkTarget"`
}

// CopyOption configures the copy methods.
type CopyOption func(*copyOptions)

type copyOptions struct {
	followLink bool
	archive    bool
}

// CopyFollowLink copies what a symlink source points to instead of the
// symlink (docker cp -L). Default: the symlink itself.
func CopyFollowLink() CopyOption { return func(o *copyOptions) { o.followLink = true } }

// CopyArchive keeps the owners of the source files (docker cp -a).
// Default: files copied into a container belong to root, files copied
// out belong to the calling user.
func CopyArchive() CopyOption { return func(o *copyOptions) { o.archive = true } }

func makeCopyOptions(opts []CopyOption) copyOptions {
	var o copyOptions
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// Every path given to these methods is a path in the container, resolved
// as the container's processes would resolve it: symlinks in it, absolute
// ones included, lead somewhere inside the container's root and never to
// the host's files. A running container is reached through its init
// process's root, so its volumes and tmpfs mounts are included; a stopped
// one through a mount of its overlay (without its volumes), during which
// it cannot be started.

// StatPath describes the file at path in the container (docker's HEAD
// archive). A trailing "/" or "/." follows a final symlink. A missing
// path is an ErrNotFound error.
func (c *Container) StatPath(ctx context.Context, path string) (PathStat, error) {
	return c.statPath(ctx, path)
}

// CopyFrom returns a tar stream of the file or directory at srcPath in
// the container, and its description (docker's GET archive). The entries
// are named after the base name of srcPath ("/etc/hosts" gives "hosts",
// "/etc" gives "etc/..."), or "." for a path that ends in "/." (the
// directory's contents). A final symlink is archived as a symlink, unless
// srcPath ends in "/". Close the stream when done: a stopped container
// stays locked until then.
func (c *Container) CopyFrom(ctx context.Context, srcPath string) (io.ReadCloser, PathStat, error) {
	return c.copyFrom(ctx, srcPath)
}

// CopyTo unpacks the tar stream r into the directory dstPath of the
// container (docker's PUT archive), which must exist; a final symlink is
// followed. Entries keep the owners, modes and times the tar gives them;
// an entry may not replace a directory with a non-directory or the
// reverse. A read-only container (Spec.ReadOnly) refuses writes outside
// its volumes.
func (c *Container) CopyTo(ctx context.Context, dstPath string, r io.Reader) error {
	return c.copyTo(ctx, dstPath, r, nil)
}

// CopyOut copies srcPath of the container to hostPath as `docker cp
// CONTAINER:SRC DEST` does: into hostPath if it is a directory, else to
// hostPath itself (a file replaces a file; a directory is created if
// hostPath does not exist; a trailing "/." on srcPath copies a
// directory's contents). The parent of hostPath must exist. Whatever the
// container holds, nothing outside hostPath (or, for a new hostPath, its
// parent) is written: symlinks in the copied tree stay symlinks and are
// never followed on the host, device nodes are left out, and without
// CopyArchive set-user-ID and set-group-ID bits are cleared (the files
// belong to the caller).
func (c *Container) CopyOut(ctx context.Context, srcPath, hostPath string, opts ...CopyOption) error {
	return c.copyOut(ctx, srcPath, hostPath, makeCopyOptions(opts))
}

// CopyIn copies hostPath to dstPath in the container as `docker cp SRC
// CONTAINER:DEST` does, with the same rules as CopyOut the other way.
func (c *Container) CopyIn(ctx context.Context, hostPath, dstPath string, opts ...CopyOption) error {
	return c.copyIn(ctx, hostPath, dstPath, makeCopyOptions(opts))
}
