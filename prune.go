package berth

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/berth-run/berth/internal/errdefs"
)

// PruneContainers removes every container that is not running (created,
// exited or dead), as `docker container prune`, keeping only those that
// match every filter: "until=TIMESTAMP" (created before it: a Go
// duration such as "24h" back from now, Unix seconds, or an RFC 3339
// date), "label=KEY[=VALUE]", "label!=KEY[=VALUE]". It returns the IDs
// removed and the space their writable layers took. A malformed filter
// is an ErrInvalid error and removes nothing; a container that starts
// meanwhile is kept.
func (r *Runtime) PruneContainers(ctx context.Context, filters ...string) ([]string, int64, error) {
	f, err := parseVolumeFilters(filters, "until", "label", "label!")
	if err != nil {
		return nil, 0, err
	}
	var until time.Time
	for _, v := range f["until"] {
		t, err := parseUntil(v, time.Now())
		if err != nil {
			return nil, 0, err
		}
		if until.IsZero() || t.Before(until) {
			until = t
		}
	}
	all, err := r.Containers(ctx)
	if err != nil {
		return nil, 0, err
	}
	var ids []string
	var reclaimed int64
	var errs []error
	for _, c := range all {
		if err := ctx.Err(); err != nil {
			return ids, reclaimed, err
		}
		if !until.IsZero() && !c.rec.Created.Before(until) {
			continue
		}
		if !labelsMatch(c.labels(), f["label"], f["label!"]) {
			continue
		}
		st, err := r.reconcile(ctx, c.rec.ID)
		if err != nil || isLive(st.Status) {
			continue
		}
		size := dirSize(filepath.Join(r.containerDir(c.rec.ID), "upper"))
		if err := c.Remove(ctx); err != nil {
			if !errors.Is(err, errdefs.ErrConflict) && !errors.Is(err, errdefs.ErrNotFound) {
				errs = append(errs, err)
			}
			continue
		}
		ids = append(ids, c.rec.ID)
		reclaimed += size
	}
	r.event(ctx, "container", "prune", "", map[string]string{"reclaimed": fmt.Sprint(reclaimed)})
	return ids, reclaimed, errors.Join(errs...)
}

// labelsMatch applies docker's label and label! filters.
func labelsMatch(labels map[string]string, with, without []string) bool {
	for _, l := range with {
		if !hasLabel(labels, l) {
			return false
		}
	}
	for _, l := range without {
		if hasLabel(labels, l) {
			return false
		}
	}
	return true
}

// parseUntil reads docker's until filter: a duration back from now,
// Unix seconds (with a fraction), or an RFC 3339 date or date-time.
func parseUntil(v string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(v); err == nil {
		return now.Add(-d), nil
	}
	if secs, err := strconv.ParseFloat(v, 64); err == nil && secs >= 0 && secs < 1<<40 {
		return time.Unix(0, int64(secs*1e9)), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, v, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid filter 'until=%s': not a duration, Unix time or date", v))
}

// SystemPruneOptions selects what Prune removes besides stopped
// containers, unused networks and dangling images.
type SystemPruneOptions struct {
	// All removes every image no container uses, not only dangling ones
	// (docker system prune -a).
	All bool
	// Volumes removes the anonymous volumes no container uses (docker
	// system prune --volumes).
	Volumes bool
	// Filters are "until=..." and "label=..." / "label!=..." filters,
	// applied to containers, networks, images, and volumes (label only:
	// until with Volumes is ErrInvalid, as in docker).
	Filters []string
}

// SystemPruneReport is what Prune removed.
type SystemPruneReport struct {
	Containers []string       // IDs
	Networks   []string       // names
	Volumes    []string       // names
	Images     []RemoveReport // untagged and deleted, as docker prints them
	// SpaceReclaimed is the bytes freed: writable layers, volume data and
	// image layers.
	SpaceReclaimed int64
}

// Prune removes what nothing uses, as `docker system prune`: containers
// that are not running, then user-defined networks no running container
// is attached to, then (with
// Volumes) anonymous volumes no container uses, then dangling images
// (with All every image no container uses). It goes on after an error and
// returns them all with what it did remove. A malformed filter is an
// ErrInvalid error and removes nothing.
func (r *Runtime) Prune(ctx context.Context, o SystemPruneOptions) (*SystemPruneReport, error) {
	f, err := parseVolumeFilters(o.Filters, "until", "label", "label!")
	if err != nil {
		return nil, err
	}
	for _, v := range f["until"] {
		if _, err := parseUntil(v, time.Now()); err != nil {
			return nil, err
		}
	}
	if o.Volumes && len(f["until"]) > 0 {
		return nil, errdefs.New(errdefs.ErrInvalid, `the "until" filter is not supported with "--volumes"`)
	}
	rep := &SystemPruneReport{}
	var errs []error
	ids, n, err := r.PruneContainers(ctx, o.Filters...)
	rep.Containers, rep.SpaceReclaimed = ids, rep.SpaceReclaimed+n
	errs = append(errs, err)

	// PruneNetworks makes the default network when it is missing: only
	// called when there is a user-defined network to remove.
	if recs, err := r.networkRecords(); err == nil && slices.ContainsFunc(recs, func(n *networkRecord) bool { return !isPredefinedNetwork(n.Name) }) {
		names, err := r.PruneNetworks(ctx, o.Filters...)
		rep.Networks = names
		errs = append(errs, err)
	}

	if o.Volumes {
		var vf []string
		for _, k := range []string{"label", "label!"} {
			for _, v := range f[k] {
				vf = append(vf, k+"="+v)
			}
		}
		names, n, err := r.PruneVolumes(ctx, PruneVolumeFilters(vf...))
		rep.Volumes, rep.SpaceReclaimed = names, rep.SpaceReclaimed+n
		errs = append(errs, err)
	}

	reps, n, err := r.pruneImagesFiltered(ctx, o.All, f)
	rep.Images, rep.SpaceReclaimed = reps, rep.SpaceReclaimed+n
	errs = append(errs, err)
	return rep, errors.Join(errs...)
}

// pruneImagesFiltered removes the dangling images (every image with all)
// that no container uses and that the until and label filters (nil:
// none) select.
func (r *Runtime) pruneImagesFiltered(ctx context.Context, all bool, f volumeFilters) ([]RemoveReport, int64, error) {
	var until time.Time
	for _, v := range f["until"] {
		t, _ := parseUntil(v, time.Now())
		if until.IsZero() || t.Before(until) {
			until = t
		}
	}
	images, err := r.Images(ctx)
	if err != nil {
		return nil, 0, err
	}
	var reports []RemoveReport
	var reclaimed int64
	var errs []error
	for _, im := range images {
		if !all && !im.Dangling() {
			continue
		}
		if !until.IsZero() && !im.Created().Before(until) {
			continue
		}
		if !labelsMatch(im.config.Config.Labels, f["label"], f["label!"]) {
			continue
		}
		if u := r.imageUsers(im.rec.ID); len(u.running)+len(u.stopped) > 0 {
			continue
		}
		size := im.Size()
		rep, err := r.RemoveImage(ctx, im.ID(), WithForce(true))
		if err != nil {
			if !errors.Is(err, errdefs.ErrNotFound) && !errors.Is(err, errdefs.ErrConflict) {
				errs = append(errs, err)
			}
			continue
		}
		reports = append(reports, rep...)
		reclaimed += size
	}
	return reports, reclaimed, errors.Join(errs...)
}
