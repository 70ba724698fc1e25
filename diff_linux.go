package berth

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/berth-run/berth/internal/archive"
	"github.com/berth-run/berth/internal/oci"
)

// mountArtifacts are the paths the runtime creates in a container's root
// filesystem to mount over (docker keeps them in its "init" layer, below
// the container's own). Created empty, they are no change of the
// container's.
var mountArtifacts = map[string]bool{
	"/proc": true, "/sys": true, "/sys/fs/cgroup": true, "/dev": true, "/dev/pts": true, "/dev/shm": true,
	"/dev/mqueue": true, "/dev/console": true, "/etc/resolv.conf": true, "/etc/hosts": true,
	"/etc/hostname": true, "/etc/mtab": true, "/.dockerenv": true, oci.InitMountPath: true,
}

func (c *Container) diff(ctx context.Context) ([]Change, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	chs, _, err := c.rt.changes(c.rec)
	if err != nil {
		return nil, err
	}
	out := make([]Change, 0, len(chs))
	for _, ch := range chs {
		kind := ChangeModify
		switch ch.Kind {
		case archive.Added:
			kind = ChangeAdd
		case archive.Deleted:
			kind = ChangeDelete
		}
		out = append(out, Change{Kind: kind, Path: ch.Path})
	}
	return out, nil
}

// upperDir is the container's overlay upper directory: its own changes.
func (r *Runtime) upperDir(rec *containerRecord) string {
	return filepath.Join(r.containerDir(rec.ID), "upper")
}

// changes lists the container's changes without the mount artifacts, and
// the set of upper-dir paths (relative, without a leading slash) that
// hold only artifacts, which a commit leaves out.
func (r *Runtime) changes(rec *containerRecord) ([]archive.Change, map[string]bool, error) {
	upper := r.upperDir(rec)
	lowers := make([]string, 0, len(rec.Layers))
	for i := len(rec.Layers) - 1; i >= 0; i-- {
		lowers = append(lowers, r.store.LayerDir(rec.Layers[i]))
	}
	all, err := archive.Changes(upper, lowers)
	if err != nil {
		return nil, nil, fmt.Errorf("changes of container %s: %w", rec.Name, err)
	}
	drop := map[string]bool{}
	parents := map[string]bool{} // directories that may exist only for artifacts
	for _, ch := range all {
		if ch.Kind == archive.Added && mountArtifacts[ch.Path] && emptyEntry(filepath.Join(upper, ch.Path)) {
			drop[ch.Path] = true
			for p := path.Dir(ch.Path); p != "/"; p = path.Dir(p) {
				parents[p] = true
			}
		}
	}
	if len(drop) == 0 {
		return all, drop, nil
	}
	// A parent stays if anything else below it changed.
	real := map[string]bool{}
	for _, ch := range all {
		if drop[ch.Path] || parents[ch.Path] {
			continue
		}
		for p := path.Dir(ch.Path); p != "/"; p = path.Dir(p) {
			real[p] = true
		}
	}
	for p := range parents {
		if !real[p] {
			drop[p] = true
		}
	}
	kept := make([]archive.Change, 0, len(all))
	for _, ch := range all {
		if !drop[ch.Path] {
			kept = append(kept, ch)
		}
	}
	rel := make(map[string]bool, len(drop))
	for p := range drop {
		rel[strings.TrimPrefix(p, "/")] = true
	}
	return kept, rel, nil
}

// emptyEntry reports whether p is an empty regular file or an empty
// directory (what the runtime creates to mount over).
func emptyEntry(p string) bool {
	fi, err := os.Lstat(p)
	if err != nil {
		return false
	}
	switch {
	case fi.Mode().IsRegular():
		return fi.Size() == 0
	case fi.IsDir():
		ents, err := os.ReadDir(p)
		return err == nil && len(ents) == 0
	}
	return false
}
