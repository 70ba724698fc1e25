// Package archive applies and produces image layer tars: path-safe
// extraction into overlay lower directories, overlay upper dirs back to
// docker-format layer tars, docker-diff change lists, plain tars of a tree
// for export and cp, and the compression that layer blobs use.
//
// # Formats
//
// Layers travel in the OCI/docker tar format: a deleted path NAME is a
// zero-length entry ".wh.NAME" in its directory, and a directory whose lower
// contents are hidden carries an entry ".wh..wh..opq". On disk berth keeps
// every layer in overlayfs format: a whiteout is a 0/0 character device named
// NAME and an opaque directory has the xattr trusted.overlay.opaque=y. Apply
// converts tar to disk, Diff converts disk to tar.
//
// # Safety
//
// Apply treats its input as hostile. Every entry name is cleaned and must
// stay inside the target directory; parents are resolved with openat2
// RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS (a walk with O_NOFOLLOW on kernels
// without openat2), so a symlink created by an earlier entry is never
// written through: such an entry rejects the layer. Hardlinks must point to
// an earlier entry of the same layer. Every rejection is an error of kind
// errdefs.ErrInvalid naming the entry; corrupt compressed data is
// errdefs.ErrCorrupt. Apply never writes outside the target directory; on
// error the caller removes the directory.
//
// Diff, Tar and Changes walk trees with file descriptors opened with
// O_NOFOLLOW, so a process that swaps a directory for a symlink while a
// running container is exported cannot make them read host files.
//
// OpenInRoot and MkdirAllInRoot resolve a path inside a root directory the
// way a process chrooted there would (openat2 RESOLVE_IN_ROOT), for callers
// that copy files into or out of a container's filesystem.
package archive
