package store

import (
	"os"
	"sort"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// RemoveAll removes path like os.RemoveAll, after detaching every mount at
// or below it (left by a crashed process), so that removal never descends
// into a mounted filesystem such as a bind-mounted host directory.
func RemoveAll(path string) error {
	unmountBelow(path)
	return os.RemoveAll(path)
}

// unmountBelow lazily unmounts every mount at or below path, deepest first.
func unmountBelow(path string) {
	mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(path))
	if err != nil || len(mounts) == 0 {
		return
	}
	sort.Slice(mounts, func(i, j int) bool { return len(mounts[i].Mountpoint) > len(mounts[j].Mountpoint) })
	for _, m := range mounts {
		_ = unix.Unmount(m.Mountpoint, unix.MNT_DETACH)
	}
}
