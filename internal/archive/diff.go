package archive

import (
	"context"
	"io"
)

// DiffOptions tune Diff. There are none yet; the struct keeps the
// signature stable.
type DiffOptions struct{}

// Diff writes the overlay upper directory upper to w as a layer tar in
// docker's format: a 0/0 character device NAME becomes an empty ".wh.NAME"
// entry, a directory with trusted.overlay.opaque=y is written followed by
// its ".wh..wh..opq" entry, and everything else as it is: files,
// directories (copied-up parents included), symlinks, hardlinks within
// upper (as tar hardlink entries), devices, fifos, xattrs (but no
// trusted.overlay.* ones). Sockets are left out.
//
// The output is deterministic: entries in depth-first order with each
// directory's names sorted bytewise (so a parent comes before its
// children), PAX headers without atime, ctime or user and group names,
// modification times in whole seconds. The same upper gives the same bytes.
//
// Diff does not write the end-of-archive blocks until it has walked the
// whole tree; cancelling ctx stops it with ctx's error.
func Diff(ctx context.Context, w io.Writer, upper string, opts DiffOptions) error {
	return writeTree(ctx, w, upper, treeOptions{diff: true})
}

// TarOptions tune Tar.
type TarOptions struct {
	// Source is the path inside root to archive, resolved as OpenInRoot
	// does (symlinks among its parents resolve inside root); a final
	// symlink is archived as the symlink itself. Default "" (the whole
	// tree).
	Source string
	// Name is the archive name of Source: `cp CTR:/etc/hosts .` archives
	// "/etc/hosts" as "hosts", `cp CTR:/etc out` as "out/...". Default: the
	// base name of Source; for the whole tree, entries have no prefix and
	// the root itself no entry.
	Name string
	// SkipWhiteouts leaves out 0/0 character devices (overlay whiteouts).
	// Default false.
	SkipWhiteouts bool
}

// Tar writes the tree root (or opts.Source inside it) to w as a plain tar,
// for export and cp. Symlinks are never followed; entries come in the same
// deterministic order and format as Diff's, with hardlinks detected by
// inode, xattrs except trusted.overlay.*, and no sockets. A file that
// changes size while it is read is cut or padded with zeros to the size
// its header gave, as GNU tar does. A Source that does not exist is an
// errdefs.ErrNotFound error.
func Tar(ctx context.Context, w io.Writer, root string, opts TarOptions) error {
	return writeTree(ctx, w, root, treeOptions{source: opts.Source, name: opts.Name, skipWhiteouts: opts.SkipWhiteouts})
}

// treeOptions are the options of the tree writer Diff and Tar share.
type treeOptions struct {
	diff          bool
	source        string
	name          string
	skipWhiteouts bool
}
