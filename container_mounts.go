package berth

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/berth-run/berth/internal/errdefs"
	"github.com/berth-run/berth/internal/oci"
	"github.com/berth-run/berth/internal/store"
)

// A container's mounts are resolved once, at create, as docker does: the
// mounts of --volumes-from containers, then the spec's mounts (which
// replace those at the same destination), then an anonymous volume for
// each of the image's VOLUMEs that nothing else covers. The volumes they
// name are created then, under the store lock, with the container record
// that uses them, so `volume rm` never sees a volume half-claimed. Start
// turns the result into host paths (resolveMounts).

// mountRecord is one mount of a container as resolved at create
// (containerRecord.MountSpecs). A volume's name is in Source.
type mountRecord struct {
	Mount
	// Anonymous marks a volume created for a container rather than by
	// name: rm -v and --rm remove it once no container uses it.
	Anonymous bool `json:",omitempty"`
	// Mode is docker's mode string, as inspect shows it.
	Mode string `json:",omitempty"`
}

// mountRecords are rec's resolved mounts; a record written before they
// existed has its spec's binds and tmpfs mounts.
func (rec *containerRecord) mountRecords() []mountRecord {
	if rec.MountSpecs != nil {
		return rec.MountSpecs
	}
	var out []mountRecord
	for _, m := range rec.Spec.Mounts {
		out = append(out, mountRecord{Mount: m})
	}
	return out
}

// validateMounts checks the spec's mounts and --volumes-from values at
// create, before anything is written: docker's rules, one mount per
// destination, and a --mount bind source that exists unless CreateSource.
func validateMounts(spec *Spec) error {
	seen := map[string]bool{}
	for _, m := range spec.Mounts {
		if err := validateMount(m); err != nil {
			return err
		}
		dst := path.Clean(m.Target)
		if seen[dst] {
			return errdefs.New(errdefs.ErrInvalid, "Duplicate mount point: "+dst)
		}
		seen[dst] = true
		switch m.Propagation {
		case "", "private", "rprivate", "shared", "rshared", "slave", "rslave":
		default:
			return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid mount config for %s: invalid propagation mode: %q", dst, m.Propagation))
		}
		if m.Type != MountTypeBind && m.Propagation != "" {
			return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid mount config for %s: propagation is only for bind mounts", dst))
		}
		switch m.Type {
		case MountTypeBind:
			if _, err := os.Stat(m.Source); err != nil && !m.CreateSource {
				return errdefs.New(errdefs.ErrInvalid, "invalid mount config for type \"bind\": bind source path does not exist: "+m.Source)
			}
		case MountTypeTmpfs:
			if m.TmpfsSize < 0 {
				return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid mount config for %s: invalid tmpfs size %d", dst, m.TmpfsSize))
			}
			if _, err := oci.MergeTmpfsOptions(m.Options); err != nil {
				return err
			}
		}
	}
	for _, vf := range spec.VolumesFrom {
		if _, _, err := parseVolumesFrom(vf); err != nil {
			return err
		}
	}
	return nil
}

// parseVolumesFrom splits docker's --volumes-from value
// "CONTAINER[:ro|:rw]" (z and Z accepted); propagation and copy modes are
// refused, as docker does.
func parseVolumesFrom(s string) (string, bool, error) {
	if s == "" {
		return "", false, errdefs.New(errdefs.ErrInvalid, "volumes-from specification cannot be an empty string")
	}
	id, mode, _ := strings.Cut(s, ":")
	if id == "" {
		return "", false, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid volumes-from specification: %q", s))
	}
	ro, rw, label := 0, 0, 0
	if mode != "" {
		for o := range strings.SplitSeq(mode, ",") {
			switch o {
			case "ro":
				ro++
			case "rw":
				rw++
			case "z", "Z":
				label++
			default:
				return "", false, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid mode: %s", mode))
			}
		}
	}
	if ro+rw > 1 || label > 1 {
		return "", false, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid mode: %s", mode))
	}
	return id, ro == 1, nil
}

// planMounts resolves the mounts of the container being created (see the
// top of this file) into rec.MountSpecs and rec.Mounts, creating the
// volumes they need. It returns the volumes it created, for the caller to
// drop (dropVolumesLocked) if the container is not created after all. The
// caller holds the store lock.
func (r *Runtime) planMounts(ctx context.Context, rec *containerRecord, im *Image) ([]string, error) {
	byDst := map[string]mountRecord{}
	var order []string
	put := func(m mountRecord) {
		if _, ok := byDst[m.Target]; !ok {
			order = append(order, m.Target)
		}
		byDst[m.Target] = m
	}
	for _, vf := range rec.Spec.VolumesFrom {
		ref, ro, err := parseVolumesFrom(vf)
		if err != nil {
			return nil, err
		}
		id, err := r.resolveContainer(ref)
		if err != nil {
			return nil, err
		}
		from, err := r.readRecord(id)
		if err != nil {
			return nil, err
		}
		for _, m := range from.mountRecords() {
			if m.Type != MountTypeBind && m.Type != MountTypeVolume {
				continue
			}
			// docker: the donor's mode, read-only if either says so; a
			// volume is never filled from this container's image.
			m.ReadOnly = m.ReadOnly || ro
			m.NoCopy = true
			m.Mode = ""
			put(m)
		}
	}
	for _, m := range rec.Spec.Mounts {
		mr := mountRecord{Mount: m}
		mr.Target = path.Clean(m.Target)
		switch m.Type {
		case MountTypeBind:
			mr.Source = path.Clean(m.Source)
			if m.ReadOnly {
				mr.Mode = "ro"
			}
		case MountTypeVolume:
			mr.Anonymous = m.Source == ""
			switch {
			case m.ReadOnly:
				mr.Mode = "ro"
			case !mr.Anonymous:
				mr.Mode = "z" // docker's default for local volumes
			}
		}
		put(mr)
	}
	if im != nil {
		for _, dst := range slices.Sorted(maps.Keys(im.config.Config.Volumes)) {
			dst = path.Clean(dst)
			if _, ok := byDst[dst]; ok || !path.IsAbs(dst) || dst == "/" {
				continue
			}
			put(mountRecord{Mount: Mount{Type: MountTypeVolume, Target: dst}, Anonymous: true})
		}
	}

	var created []string
	rec.MountSpecs, rec.Mounts = []mountRecord{}, nil
	for _, dst := range order {
		m := byDst[dst]
		if m.Type == MountTypeVolume {
			var o volumeOptions
			if m.Source == "" {
				m.Source = newID()
				o.labels = map[string]string{AnonymousVolumeLabel: ""}
			}
			vrec, made, err := r.createVolumeLocked(m.Source, o)
			if err != nil {
				r.dropVolumesLocked(ctx, created)
				return nil, err
			}
			if made {
				created = append(created, m.Source)
				r.event(ctx, "volume", "create", m.Source, map[string]string{"driver": vrec.Driver})
			}
		}
		rec.MountSpecs = append(rec.MountSpecs, m)
		if mp, ok := r.mountPoint(m); ok {
			rec.Mounts = append(rec.Mounts, mp)
		}
	}
	slices.SortFunc(rec.Mounts, func(a, b MountPoint) int { return strings.Compare(a.Destination, b.Destination) })
	return created, nil
}

// mountPoint is m as docker's inspect shows it; tmpfs mounts made with
// --tmpfs (no tmpfs-size or tmpfs-mode) are shown in HostConfig.Tmpfs
// instead, as docker does.
func (r *Runtime) mountPoint(m mountRecord) (MountPoint, bool) {
	mp := MountPoint{Type: m.Type, Destination: m.Target, Mode: m.Mode, RW: !m.ReadOnly, Propagation: m.Propagation}
	switch m.Type {
	case MountTypeBind:
		mp.Source = m.Source
		if mp.Propagation == "" {
			mp.Propagation = "rprivate"
		}
	case MountTypeVolume:
		mp.Name, mp.Source, mp.Driver = m.Source, r.volumeData(m.Source), VolumeDriverLocal
	case MountTypeTmpfs:
		if isTmpfsFlag(m.Mount) {
			return mp, false
		}
	}
	return mp, true
}

// isTmpfsFlag tells a --tmpfs mount from a --mount type=tmpfs one.
func isTmpfsFlag(m Mount) bool { return m.TmpfsSize == 0 && m.TmpfsMode == 0 }

// dropVolumesLocked removes volumes planMounts created for a container
// that was not created. The caller holds the store lock.
func (r *Runtime) dropVolumesLocked(ctx context.Context, names []string) {
	for _, n := range names {
		if gone, err := r.removeVolumeLocked(n); err == nil {
			_ = store.RemoveAll(gone)
			r.event(ctx, "volume", "destroy", n, map[string]string{"driver": VolumeDriverLocal})
		}
	}
}

// resolveMounts turns the container's mounts into host paths for the spec
// generator, as start needs them: bind sources are created when missing
// (as docker's -v does), volumes are mounted (device options) and, the
// first time, filled with the image's content at their destination from
// the container's root file system, which the caller has mounted.
func (r *Runtime) resolveMounts(ctx context.Context, c *Container) ([]oci.Mount, error) {
	rootfs := filepath.Join(r.containerDir(c.rec.ID), "rootfs")
	var out []oci.Mount
	for _, m := range c.rec.mountRecords() {
		om := oci.Mount{Destination: m.Target, ReadOnly: m.ReadOnly, Propagation: m.Propagation}
		switch m.Type {
		case MountTypeBind:
			if _, err := os.Stat(m.Source); err != nil {
				if !os.IsNotExist(err) || !m.CreateSource {
					return nil, errdefs.New(errdefs.ErrInvalid, "invalid mount config for type \"bind\": bind source path does not exist: "+m.Source)
				}
				if err := os.MkdirAll(m.Source, 0o755); err != nil {
					return nil, fmt.Errorf("create bind source %s: %w", m.Source, err)
				}
			}
			om.Type, om.Source = oci.MountBind, m.Source
		case MountTypeTmpfs:
			om.Type, om.TmpfsSize, om.TmpfsMode, om.Options = oci.MountTmpfs, m.TmpfsSize, os.FileMode(m.TmpfsMode), m.Options
		case MountTypeVolume:
			if err := r.prepareVolume(ctx, m.Source, rootfs, m.Target, !m.NoCopy); err != nil {
				return nil, err
			}
			om.Type, om.Source = oci.MountVolume, r.volumeData(m.Source)
		default:
			return nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("unknown mount type %q", m.Type))
		}
		out = append(out, om)
	}
	return out, nil
}

// removeAnonymousVolumes removes the anonymous volumes of a removed
// container (docker rm -v) that no other container uses.
func (r *Runtime) removeAnonymousVolumes(ctx context.Context, rec *containerRecord) {
	unlock, err := r.store.Lock()
	if err != nil {
		return
	}
	gone := r.removeAnonymousVolumesLocked(ctx, rec)
	unlock()
	for _, g := range gone {
		_ = store.RemoveAll(g)
	}
}

// autoRemoveVolumesLocked removes the anonymous volumes of a container
// removed by its own --rm, as docker does. The caller holds the store
// lock and has removed the container's record.
func (r *Runtime) autoRemoveVolumesLocked(ctx context.Context, rec *containerRecord) {
	if !rec.Spec.AutoRemove {
		return
	}
	for _, g := range r.removeAnonymousVolumesLocked(ctx, rec) {
		_ = store.RemoveAll(g)
	}
}

// removeAnonymousVolumesLocked takes rec's unused anonymous volumes out of
// the store and returns their directories to delete. The caller holds the
// store lock.
func (r *Runtime) removeAnonymousVolumesLocked(ctx context.Context, rec *containerRecord) []string {
	var gone []string
	for _, m := range rec.mountRecords() {
		if m.Type != MountTypeVolume || !m.Anonymous {
			continue
		}
		g, err := r.removeVolumeLocked(m.Source)
		if err != nil {
			continue // in use by another container, or gone
		}
		gone = append(gone, g)
		r.event(ctx, "volume", "destroy", m.Source, map[string]string{"driver": VolumeDriverLocal})
	}
	return gone
}

// inspectBinds is docker's HostConfig.Binds: the spec's binds and named
// volumes as -v values.
func inspectBinds(mounts []Mount) []string {
	var out []string
	for _, m := range mounts {
		if m.Type == MountTypeBind || m.Type == MountTypeVolume && m.Source != "" {
			b := m.Source + ":" + m.Target
			if m.ReadOnly {
				b += ":ro"
			}
			out = append(out, b)
		}
	}
	return out
}

// inspectVolumes is docker's Config.Volumes: the image's volumes and the
// spec's anonymous ones.
func inspectVolumes(image map[string]struct{}, mounts []Mount) map[string]struct{} {
	out := maps.Clone(image)
	for _, m := range mounts {
		if m.Type == MountTypeVolume && m.Source == "" {
			if out == nil {
				out = map[string]struct{}{}
			}
			out[m.Target] = struct{}{}
		}
	}
	return out
}

// inspectTmpfs is docker's HostConfig.Tmpfs: --tmpfs destinations and
// their options.
func inspectTmpfs(mounts []Mount) map[string]string {
	var out map[string]string
	for _, m := range mounts {
		if m.Type == MountTypeTmpfs && isTmpfsFlag(m) {
			if out == nil {
				out = map[string]string{}
			}
			out[m.Target] = strings.Join(m.Options, ",")
		}
	}
	return out
}
