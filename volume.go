package berth

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/berth-run/berth/internal/errdefs"
	"github.com/berth-run/berth/internal/opts"
	"github.com/berth-run/berth/internal/store"
)

// Volume drivers and the label docker puts on anonymous volumes.
const (
	// VolumeDriverLocal is the only volume driver: a directory in the store.
	VolumeDriverLocal = "local"
	// AnonymousVolumeLabel marks the volumes berth creates for `-v /path`
	// and the image's VOLUME instructions, as docker >= 23 does; only
	// those are pruned without PruneAllVolumes.
	AnonymousVolumeLabel = "com.docker.volume.anonymous"
)

// volumeRecord is what the store keeps about a volume
// (volumes/<name>/volume.json). It is written under the store lock, except
// Populated, which start sets under the volume's own lock (see
// populateVolume) after taking the store lock too.
type volumeRecord struct {
	Name      string            `json:"name"`
	Driver    string            `json:"driver"`
	Labels    map[string]string `json:"labels,omitempty"`
	Options   map[string]string `json:"options,omitempty"`
	CreatedAt time.Time         `json:"createdAt"`
	// Populated records that the image's content was copied in, which
	// happens at most once.
	Populated bool `json:"populated,omitempty"`
}

// Volume is a named or anonymous volume in the store: a directory that
// outlives the containers that mount it. A Volume is a handle; Inspect and
// Remove read the store again.
type Volume struct {
	rt  *Runtime
	rec volumeRecord
}

// Name is the volume's name (64 hex digits for an anonymous volume).
func (v *Volume) Name() string { return v.rec.Name }

// Driver is the volume's driver, always "local".
func (v *Volume) Driver() string { return v.rec.Driver }

// Labels are the volume's labels.
func (v *Volume) Labels() map[string]string { return maps.Clone(v.rec.Labels) }

// Options are the driver options the volume was created with.
func (v *Volume) Options() map[string]string { return maps.Clone(v.rec.Options) }

// CreatedAt is when the volume was created.
func (v *Volume) CreatedAt() time.Time { return v.rec.CreatedAt }

// Anonymous reports whether berth created the volume for a container
// (`-v /path`, an image's VOLUME) rather than by name.
func (v *Volume) Anonymous() bool { _, ok := v.rec.Labels[AnonymousVolumeLabel]; return ok }

// Mountpoint is the volume's directory on the host.
func (v *Volume) Mountpoint() string { return v.rt.volumeData(v.rec.Name) }

// VolumeInspect is a volume's description in the shape of `docker volume
// inspect`.
type VolumeInspect struct {
	CreatedAt  string
	Driver     string
	Labels     map[string]string
	Mountpoint string
	Name       string
	Options    map[string]string
	Scope      string
}

// Inspect describes the volume as `docker volume inspect` does.
func (v *Volume) Inspect() VolumeInspect {
	return VolumeInspect{
		CreatedAt:  v.rec.CreatedAt.Local().Format(time.RFC3339),
		Driver:     v.rec.Driver,
		Labels:     orEmpty(v.rec.Labels),
		Mountpoint: v.Mountpoint(),
		Name:       v.rec.Name,
		Options:    orEmpty(v.rec.Options),
		Scope:      "local",
	}
}

// VolumeOption configures CreateVolume.
type VolumeOption func(*volumeOptions)

type volumeOptions struct {
	driver  string
	labels  map[string]string
	options map[string]string
}

// WithVolumeDriver names the volume driver; only "local" exists. Default:
// "local".
func WithVolumeDriver(name string) VolumeOption { return func(o *volumeOptions) { o.driver = name } }

// WithVolumeLabels sets the volume's labels (docker volume create
// --label). Default: none.
func WithVolumeLabels(labels map[string]string) VolumeOption {
	return func(o *volumeOptions) { o.labels = labels }
}

// WithVolumeOptions sets the local driver's options (docker volume create
// -o): "type", "device" and "o" make the volume a mount of device, as
// mount(8) -t type -o o device would, done when a container first uses
// it; "device" is required with the others. Default: none, a plain
// directory.
func WithVolumeOptions(options map[string]string) VolumeOption {
	return func(o *volumeOptions) { o.options = options }
}

// localVolumeOptions are the options the local driver knows.
var localVolumeOptions = map[string]bool{"type": true, "device": true, "o": true}

func makeVolumeOptions(options []VolumeOption, name string) (volumeOptions, error) {
	o := volumeOptions{driver: VolumeDriverLocal}
	for _, opt := range options {
		opt(&o)
	}
	if o.driver == "" {
		o.driver = VolumeDriverLocal
	}
	if o.driver != VolumeDriverLocal {
		return o, errdefs.New(errdefs.ErrNotFound, fmt.Sprintf("create %s: error looking up volume plugin %s: plugin %q not found", name, o.driver, o.driver))
	}
	for k := range o.options {
		if !localVolumeOptions[k] {
			return o, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("create %s: invalid option: %q", name, k))
		}
	}
	if (o.options["type"] != "" || o.options["o"] != "") && o.options["device"] == "" {
		return o, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("create %s: missing required option: \"device\"", name))
	}
	for k := range o.labels {
		if k == "" {
			return o, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("create %s: empty label name", name))
		}
	}
	return o, nil
}

// CreateVolume creates a volume, as `docker volume create`. An empty name
// makes an anonymous-style random name of 64 hex digits; a name must match
// [a-zA-Z0-9][a-zA-Z0-9_.-]+. Creating a volume that exists returns it
// unchanged, as docker does.
func (r *Runtime) CreateVolume(ctx context.Context, name string, options ...VolumeOption) (*Volume, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if name != "" {
		if err := opts.ValidateVolumeName(name); err != nil {
			return nil, fmt.Errorf("create %s: %w", name, err)
		}
	}
	o, err := makeVolumeOptions(options, name)
	if err != nil {
		return nil, err
	}
	unlock, err := r.store.Lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	if name == "" {
		name = newID()
	}
	rec, created, err := r.createVolumeLocked(name, o)
	if err != nil {
		return nil, err
	}
	if created {
		r.event(ctx, "volume", "create", name, map[string]string{"driver": rec.Driver})
	}
	return &Volume{rt: r, rec: *rec}, nil
}

// createVolumeLocked creates volume name unless it exists, and returns its
// record and whether it was created. The caller holds the store lock and
// has validated name and o.
func (r *Runtime) createVolumeLocked(name string, o volumeOptions) (*volumeRecord, bool, error) {
	if rec, err := r.readVolume(name); err == nil {
		return rec, false, nil
	} else if !errors.Is(err, errdefs.ErrNotFound) {
		return nil, false, err
	}
	rec := &volumeRecord{Name: name, Driver: VolumeDriverLocal, Labels: maps.Clone(o.labels),
		Options: maps.Clone(o.options), CreatedAt: time.Now().UTC()}
	// Made complete in tmp/, then renamed into place: a crash leaves
	// either no volume or a whole one.
	tmp, err := r.store.TempDir("volume")
	if err != nil {
		return nil, false, fmt.Errorf("create volume %s: %w", name, err)
	}
	if err := os.Chmod(tmp, 0o701); err != nil {
		_ = os.RemoveAll(tmp)
		return nil, false, fmt.Errorf("create volume %s: %w", name, err)
	}
	if err := os.Mkdir(filepath.Join(tmp, "_data"), 0o755); err != nil {
		_ = os.RemoveAll(tmp)
		return nil, false, fmt.Errorf("create volume %s: %w", name, err)
	}
	if err := store.WriteJSON(filepath.Join(tmp, "volume.json"), rec, true); err != nil {
		_ = os.RemoveAll(tmp)
		return nil, false, err
	}
	if err := os.Rename(tmp, r.volumeDir(name)); err != nil {
		_ = os.RemoveAll(tmp)
		return nil, false, fmt.Errorf("create volume %s: %w", name, err)
	}
	return rec, true, nil
}

func (r *Runtime) volumeDir(name string) string  { return r.store.Path("volumes", name) }
func (r *Runtime) volumeData(name string) string { return r.store.Path("volumes", name, "_data") }

// readVolume reads volume name's record; ErrNotFound if there is none.
func (r *Runtime) readVolume(name string) (*volumeRecord, error) {
	var rec volumeRecord
	if name == "" || strings.ContainsAny(name, "/\x00") || name == "." || name == ".." {
		return nil, errdefs.New(errdefs.ErrNotFound, fmt.Sprintf("get %s: no such volume", name))
	}
	if err := store.ReadJSON(filepath.Join(r.volumeDir(name), "volume.json"), &rec); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, errdefs.New(errdefs.ErrNotFound, fmt.Sprintf("get %s: no such volume", name))
		}
		return nil, fmt.Errorf("volume %s: %w", name, err)
	}
	return &rec, nil
}

func (r *Runtime) writeVolume(rec *volumeRecord) error {
	return store.WriteJSON(filepath.Join(r.volumeDir(rec.Name), "volume.json"), rec, true)
}

// Volume looks up a volume by its exact name.
func (r *Runtime) Volume(ctx context.Context, name string) (*Volume, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rec, err := r.readVolume(name)
	if err != nil {
		return nil, err
	}
	return &Volume{rt: r, rec: *rec}, nil
}

// Volumes lists the store's volumes sorted by name, keeping those that
// match every filter, as `docker volume ls --filter`: "name=SUBSTRING",
// "label=KEY" or "label=KEY=VALUE", "driver=local", "dangling=true|false"
// (used by no container). Filters of one key match if any of them does.
// An unknown filter is ErrInvalid.
func (r *Runtime) Volumes(ctx context.Context, filters ...string) ([]*Volume, error) {
	f, err := parseVolumeFilters(filters, "dangling", "name", "label", "driver")
	if err != nil {
		return nil, err
	}
	all, err := r.allVolumes(ctx)
	if err != nil {
		return nil, err
	}
	var users map[string][]string
	if len(f["dangling"]) > 0 {
		if users, err = r.volumeUsers(); err != nil {
			return nil, err
		}
	}
	var out []*Volume
	for _, v := range all {
		ok, err := f.match(v, users)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, v)
		}
	}
	return out, nil
}

// allVolumes reads every complete volume, sorted by name.
func (r *Runtime) allVolumes(ctx context.Context) ([]*Volume, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(r.store.Path("volumes"))
	if err != nil {
		return nil, err
	}
	var out []*Volume
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		rec, err := r.readVolume(e.Name())
		if err != nil {
			continue // removed meanwhile
		}
		out = append(out, &Volume{rt: r, rec: *rec})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].rec.Name < out[j].rec.Name })
	return out, nil
}

// volumeUsers maps each volume name to the IDs of the containers that
// mount it, running or not.
func (r *Runtime) volumeUsers() (map[string][]string, error) {
	ids, err := r.store.ContainerIDs()
	if err != nil {
		return nil, err
	}
	users := map[string][]string{}
	for _, id := range ids {
		rec, err := r.readRecord(id)
		if err != nil {
			continue // being created or removed
		}
		for _, m := range rec.Mounts {
			if m.Type == MountTypeVolume && m.Name != "" && !slices.Contains(users[m.Name], id) {
				users[m.Name] = append(users[m.Name], id)
			}
		}
	}
	return users, nil
}

// Remove removes the volume and its data, as `docker volume rm`. A volume
// that a container uses, running or not, is refused with ErrConflict
// naming the containers. With RemoveForce a volume that is already gone is
// not an error (a volume in use is still refused, as in docker).
func (v *Volume) Remove(ctx context.Context, options ...RemoveOption) error {
	var o removeOptions
	for _, opt := range options {
		opt(&o)
	}
	r := v.rt
	if err := ctx.Err(); err != nil {
		return err
	}
	unlock, err := r.store.Lock()
	if err != nil {
		return err
	}
	gone, err := r.removeVolumeLocked(v.rec.Name)
	unlock()
	if err != nil {
		if o.force && errors.Is(err, errdefs.ErrNotFound) {
			return nil
		}
		return err
	}
	if err := store.RemoveAll(gone); err != nil {
		return fmt.Errorf("remove %s: %w", v.rec.Name, err)
	}
	r.event(ctx, "volume", "destroy", v.rec.Name, map[string]string{"driver": v.rec.Driver})
	return nil
}

// removeVolumeLocked takes volume name out of the store (unless a
// container uses it) by renaming its directory into tmp/, and returns that
// path for the caller to delete. The caller holds the store lock.
func (r *Runtime) removeVolumeLocked(name string) (string, error) {
	if _, err := r.readVolume(name); err != nil {
		return "", err
	}
	users, err := r.volumeUsers()
	if err != nil {
		return "", err
	}
	if u := users[name]; len(u) > 0 {
		sort.Strings(u)
		return "", errdefs.New(errdefs.ErrConflict, fmt.Sprintf("remove %s: volume is in use - [%s]", name, strings.Join(u, ", ")))
	}
	unmountVolume(r.volumeData(name))
	gone := r.store.TempName("rmvolume")
	if err := os.Rename(r.volumeDir(name), gone); err != nil {
		return "", fmt.Errorf("remove %s: %w", name, err)
	}
	return gone, nil
}

// VolumePruneOption configures PruneVolumes.
type VolumePruneOption func(*volumePruneOptions)

type volumePruneOptions struct {
	all     bool
	filters []string
}

// PruneAllVolumes prunes named volumes too (docker volume prune -a).
// Default: only anonymous volumes, as docker >= 23.
func PruneAllVolumes() VolumePruneOption { return func(o *volumePruneOptions) { o.all = true } }

// PruneVolumeFilters keeps only volumes matching docker's prune filters:
// "label=KEY[=VALUE]", "label!=KEY[=VALUE]", "all=true|false". Default:
// none.
func PruneVolumeFilters(filters ...string) VolumePruneOption {
	return func(o *volumePruneOptions) { o.filters = append(o.filters, filters...) }
}

// PruneVolumes removes the volumes no container uses, as `docker volume
// prune`: only anonymous ones unless PruneAllVolumes. It returns the names
// removed and the space reclaimed.
func (r *Runtime) PruneVolumes(ctx context.Context, options ...VolumePruneOption) ([]string, int64, error) {
	var o volumePruneOptions
	for _, opt := range options {
		opt(&o)
	}
	f, err := parseVolumeFilters(o.filters, "label", "label!", "all")
	if err != nil {
		return nil, 0, err
	}
	all := o.all
	for _, v := range f["all"] {
		switch v {
		case "1", "true":
			all = true
		case "0", "false":
		default:
			return nil, 0, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid filter 'all=%s'", v))
		}
	}
	delete(f, "all")
	vols, err := r.allVolumes(ctx)
	if err != nil {
		return nil, 0, err
	}
	var names []string
	var reclaimed int64
	var errs []error
	for _, v := range vols {
		if err := ctx.Err(); err != nil {
			return names, reclaimed, err
		}
		if !all && !v.Anonymous() {
			continue
		}
		if ok, err := f.match(v, nil); err != nil || !ok {
			continue
		}
		unlock, err := r.store.Lock()
		if err != nil {
			return names, reclaimed, err
		}
		size := dirSize(v.Mountpoint())
		gone, err := r.removeVolumeLocked(v.rec.Name)
		unlock()
		if err != nil {
			if !errors.Is(err, errdefs.ErrConflict) && !errors.Is(err, errdefs.ErrNotFound) {
				errs = append(errs, err)
			}
			continue
		}
		if err := store.RemoveAll(gone); err != nil {
			errs = append(errs, fmt.Errorf("remove %s: %w", v.rec.Name, err))
		}
		r.event(ctx, "volume", "destroy", v.rec.Name, map[string]string{"driver": v.rec.Driver})
		names = append(names, v.rec.Name)
		reclaimed += size
	}
	r.event(ctx, "volume", "prune", "", map[string]string{"reclaimed": fmt.Sprint(reclaimed)})
	return names, reclaimed, errors.Join(errs...)
}

// volumeUsage fills the volume row of DiskUsage: every volume, those a
// container uses, and their sizes.
func (r *Runtime) volumeUsage(ctx context.Context, u *UsageSummary) error {
	vols, err := r.allVolumes(ctx)
	if err != nil {
		return err
	}
	users, err := r.volumeUsers()
	if err != nil {
		return err
	}
	for _, v := range vols {
		n := dirSize(v.Mountpoint())
		u.Total++
		u.Size += n
		if len(users[v.rec.Name]) > 0 {
			u.Active++
		} else {
			u.Reclaimable += n
		}
	}
	return nil
}

// volumeFilters are parsed docker filters: key -> values.
type volumeFilters map[string][]string

func parseVolumeFilters(filters []string, accepted ...string) (volumeFilters, error) {
	f := volumeFilters{}
	for _, s := range filters {
		k, v, ok := strings.Cut(s, "=")
		if !ok {
			return nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("bad format of filter (expected name=value): %s", s))
		}
		k = strings.ToLower(strings.TrimSpace(k))
		if !slices.Contains(accepted, k) {
			return nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid filter '%s'", k))
		}
		if k == "dangling" {
			switch v {
			case "true", "1", "false", "0":
			default:
				return nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid filter 'dangling=%s'", v))
			}
		}
		f[k] = append(f[k], v)
	}
	return f, nil
}

// match reports whether v passes the filters; users is needed for
// "dangling".
func (f volumeFilters) match(v *Volume, users map[string][]string) (bool, error) {
	if vals := f["name"]; len(vals) > 0 && !anyMatch(vals, func(s string) bool { return nameMatches(s, v.rec.Name) }) {
		return false, nil
	}
	if vals := f["driver"]; len(vals) > 0 && !anyMatch(vals, func(s string) bool { return s == v.rec.Driver }) {
		return false, nil
	}
	for _, l := range f["label"] {
		if !hasLabel(v.rec.Labels, l) {
			return false, nil
		}
	}
	for _, l := range f["label!"] {
		if hasLabel(v.rec.Labels, l) {
			return false, nil
		}
	}
	for _, d := range f["dangling"] {
		dangling := d == "true" || d == "1"
		if (len(users[v.rec.Name]) == 0) != dangling {
			return false, nil
		}
	}
	return true, nil
}

// nameMatches is docker's name filter: a regular expression found in the
// name (a plain string is a substring).
func nameMatches(pattern, name string) bool {
	if ok, err := regexp.MatchString(pattern, name); err == nil {
		return ok
	}
	return strings.Contains(name, pattern)
}

// hasLabel matches "KEY" (present) or "KEY=VALUE".
func hasLabel(labels map[string]string, filter string) bool {
	k, want, withValue := strings.Cut(filter, "=")
	got, ok := labels[k]
	return ok && (!withValue || got == want)
}

func anyMatch(vals []string, fn func(string) bool) bool {
	for _, v := range vals {
		if fn(v) {
			return true
		}
	}
	return false
}

func orEmpty(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return maps.Clone(m)
}
