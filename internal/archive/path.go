package archive

import (
	"os"
)

// OpenInRoot opens path as if root were the file system root: ".." stops at
// root and symlinks, absolute ones included, resolve inside root, the way a
// process chrooted into root would see them. flag and perm are those of
// os.OpenFile; O_NOFOLLOW leaves a final symlink unresolved (with O_PATH it
// opens the symlink itself). Use it to reach files inside a container's
// root file system without ever leaving it, even if the container swaps
// path components for symlinks meanwhile.
//
// It uses openat2(RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS) and, on kernels
// without openat2, a component-by-component walk with the same semantics.
func OpenInRoot(root, path string, flag int, perm os.FileMode) (*os.File, error) {
	return openInRoot(root, path, flag, perm)
}

// MkdirAllInRoot creates path and its missing parents inside root with
// mode perm (less the umask), resolving existing components as OpenInRoot
// does, and returns the directory opened read-only. It never creates
// anything outside root: a symlink resolves inside root, and one whose
// target does not exist there is an error (ENOENT), as is a component that
// is not a directory (ENOTDIR).
func MkdirAllInRoot(root, path string, perm os.FileMode) (*os.File, error) {
	return mkdirAllInRoot(root, path, perm)
}

// SyncFS flushes the file system that holds path to disk (syncfs(2)): one
// call after Apply instead of an fsync per file.
func SyncFS(path string) error {
	return syncFS(path)
}
