// Package overlay mounts the root filesystems of containers and read-only
// views of images: overlayfs with one lower directory per layer (top
// first), an upper and a work directory.
package overlay

import "errors"

// ErrTooManyLayers is returned when the mount options do not fit in a
// page and the kernel has no fsconfig "lowerdir+" to take layers one by
// one.
var ErrTooManyLayers = errors.New("overlay: too many layers for one mount option string")
