package berth

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-run/berth/internal/errdefs"
	"github.com/berth-run/berth/internal/reference"
	"github.com/berth-run/berth/internal/store"
)

// Image is a stored image. Its methods read the store; an Image obtained
// before another process changed the image (tags, removal) shows the state
// at the time it was looked up.
type Image struct {
	rt     *Runtime
	rec    *store.Image
	config ocispec.Image
	raw    []byte // the config blob as stored
	tags   []string
}

// ID is the image ID, "sha256:<hex>": the digest of its config.
func (im *Image) ID() string { return im.rec.ID.String() }

// Digest is the image ID as a digest.
func (im *Image) Digest() digest.Digest { return im.rec.ID }

// ManifestDigest is the digest of the image's manifest.
func (im *Image) ManifestDigest() digest.Digest { return im.rec.ManifestDigest }

// Tags are the image's names in docker's short form ("busybox:latest",
// "127.0.0.1:5000/app:v1"), sorted. A dangling image has none.
func (im *Image) Tags() []string {
	out := make([]string, 0, len(im.tags))
	for _, t := range im.tags {
		out = append(out, familiar(t))
	}
	return out
}

// RepoDigests are the image's name@digest references from registries.
func (im *Image) RepoDigests() []string {
	out := make([]string, 0, len(im.rec.RepoDigests))
	for _, t := range im.rec.RepoDigests {
		out = append(out, familiar(t))
	}
	return out
}

// Config is the image's OCI configuration (the image config blob).
func (im *Image) Config() ocispec.Image { return im.config }

// RawConfig is the config blob exactly as stored; its digest is the ID.
func (im *Image) RawConfig() []byte { return append([]byte(nil), im.raw...) }

// Created is when the image was built (from its config), or when it was
// stored if the config does not say.
func (im *Image) Created() time.Time {
	if im.config.Created != nil {
		return *im.config.Created
	}
	return im.rec.Created
}

// Layers are the image's layers, bottom first.
func (im *Image) Layers() []*Layer {
	out := make([]*Layer, 0, len(im.rec.Layers))
	for _, l := range im.rec.Layers {
		var size int64
		if rec, err := im.rt.store.GetLayer(l.ChainID); err == nil {
			size = rec.Size
		}
		out = append(out, &Layer{rt: im.rt, rec: l, size: size})
	}
	return out
}

// Size is the image's size on disk: the sum of its unpacked layers, as
// docker's SIZE column.
func (im *Image) Size() int64 {
	var n int64
	for _, l := range im.Layers() {
		n += l.UncompressedSize()
	}
	return n
}

// Dangling reports whether the image has no tags.
func (im *Image) Dangling() bool { return len(im.tags) == 0 }

// HistoryEntry is one step of an image's history, newest first in
// Image.History.
type HistoryEntry struct {
	ID         string // the image ID for the newest step, "<missing>" otherwise (as docker)
	Created    time.Time
	CreatedBy  string
	Size       int64 // bytes of the layer this step made (0 for empty steps)
	Comment    string
	EmptyLayer bool
	Tags       []string // tags of the image, on the newest step
}

// History returns the image's build history, newest first.
func (im *Image) History() []HistoryEntry {
	layers := im.Layers()
	var out []HistoryEntry
	li := 0
	for _, h := range im.config.History {
		e := HistoryEntry{ID: "<missing>", CreatedBy: h.CreatedBy, Comment: h.Comment, EmptyLayer: h.EmptyLayer}
		if h.Created != nil {
			e.Created = *h.Created
		}
		if !h.EmptyLayer && li < len(layers) {
			e.Size = layers[li].UncompressedSize()
			li++
		}
		out = append(out, e)
	}
	if len(out) == 0 { // no history recorded: one step per layer
		for _, l := range layers {
			out = append(out, HistoryEntry{ID: "<missing>", Created: im.Created(), Size: l.UncompressedSize()})
		}
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	if len(out) > 0 {
		out[0].ID = im.ID()
		out[0].Tags = im.Tags()
	}
	return out
}

// Image looks up an image by name ("busybox", "busybox:1.36",
// "host:5000/app@sha256:..."), by full ID ("sha256:<hex>" or the hex
// alone) or by a unique ID prefix. An unknown image is an ErrNotFound
// error; a malformed name an ErrInvalid error.
func (r *Runtime) Image(ctx context.Context, nameOrID string) (*Image, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	refs, err := r.store.Refs()
	if err != nil {
		return nil, err
	}
	rec, err := r.resolveImage(refs, nameOrID)
	if err != nil {
		return nil, err
	}
	return r.newImage(rec, refs)
}

// resolveImage finds the image record nameOrID names, docker's way: a
// full ID, then a name, then an ID prefix.
func (r *Runtime) resolveImage(refs store.Refs, nameOrID string) (*store.Image, error) {
	if reference.IsID(nameOrID) {
		return r.store.GetImage(toDigest(nameOrID))
	}
	ref, perr := reference.Parse(nameOrID)
	if perr == nil {
		if id, ok := refs[ref.String()]; ok {
			return r.store.GetImage(id)
		}
		if d := ref.Digest(); d != "" {
			images, err := r.store.Images()
			if err != nil {
				return nil, err
			}
			want := ref.Name() + "@" + d.String()
			for _, im := range images {
				for _, rd := range im.RepoDigests {
					if rd == want {
						return im, nil
					}
				}
			}
		}
	}
	if reference.IsIDPrefix(nameOrID) {
		prefix := strings.TrimPrefix(nameOrID, "sha256:")
		images, err := r.store.Images()
		if err != nil {
			return nil, err
		}
		var found *store.Image
		for _, im := range images {
			if strings.HasPrefix(im.ID.Encoded(), prefix) {
				if found != nil {
					return nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("image ID prefix %q is ambiguous", nameOrID))
				}
				found = im
			}
		}
		if found != nil {
			return found, nil
		}
	}
	if perr != nil && !reference.IsIDPrefix(nameOrID) {
		return nil, perr
	}
	return nil, errdefs.New(errdefs.ErrNotFound, "no such image: "+displayName(nameOrID))
}

// displayName is how docker names an image reference in messages:
// "busybox" becomes "busybox:latest".
func displayName(s string) string {
	if ref, err := reference.Parse(s); err == nil {
		return ref.Familiar()
	}
	return s
}

func familiar(full string) string {
	if ref, err := reference.ParseName(full); err == nil {
		return ref.Familiar()
	}
	return full
}

func toDigest(id string) digest.Digest {
	if strings.HasPrefix(id, "sha256:") {
		return digest.Digest(id)
	}
	return digest.NewDigestFromEncoded(digest.SHA256, id)
}

func (r *Runtime) newImage(rec *store.Image, refs store.Refs) (*Image, error) {
	raw, err := r.store.ReadBlob(rec.ID)
	if err != nil {
		return nil, fmt.Errorf("image %s: config: %w", rec.ID.Encoded()[:12], err)
	}
	im := &Image{rt: r, rec: rec, raw: raw, tags: refs.TagsOf(rec.ID)}
	if err := json.Unmarshal(raw, &im.config); err != nil {
		return nil, fmt.Errorf("image %s: config: %v: %w", rec.ID.Encoded()[:12], err, errdefs.ErrCorrupt)
	}
	return im, nil
}

// Images lists every stored image, dangling ones included, newest first.
func (r *Runtime) Images(ctx context.Context) ([]*Image, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	refs, err := r.store.Refs()
	if err != nil {
		return nil, err
	}
	recs, err := r.store.Images()
	if err != nil {
		return nil, err
	}
	out := make([]*Image, 0, len(recs))
	for _, rec := range recs {
		im, err := r.newImage(rec, refs)
		if err != nil {
			continue // removed or damaged meanwhile; `system check` reports damage
		}
		out = append(out, im)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Created().After(out[j].Created()) })
	return out, nil
}

// Tag gives the image source (name or ID) the name target. A name that
// pointed at another image moves; that image stays, dangling if it has no
// other name.
func (r *Runtime) Tag(ctx context.Context, source, target string) error {
	ref, err := reference.Parse(target)
	if err != nil {
		return err
	}
	if ref.Digest() != "" {
		return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("refusing to create a tag with a digest reference: %s", target))
	}
	unlock, err := r.store.Lock()
	if err != nil {
		return err
	}
	defer unlock()
	refs, err := r.store.Refs()
	if err != nil {
		return err
	}
	rec, err := r.resolveImage(refs, source)
	if err != nil {
		return err
	}
	if refs[ref.String()] == rec.ID {
		return nil
	}
	refs[ref.String()] = rec.ID
	if err := r.store.PutRefs(refs); err != nil {
		return err
	}
	r.event(ctx, "image", "tag", rec.ID.String(), map[string]string{"name": ref.Familiar()})
	return nil
}

// Tag gives the image another name (see Runtime.Tag).
func (im *Image) Tag(ctx context.Context, target string) error {
	return im.rt.Tag(ctx, im.ID(), target)
}

// Untag removes the name ref; the image stays, dangling if it was its last
// name. An unknown name is an ErrNotFound error.
func (r *Runtime) Untag(ctx context.Context, name string) error {
	ref, err := reference.Parse(name)
	if err != nil {
		return err
	}
	unlock, err := r.store.Lock()
	if err != nil {
		return err
	}
	defer unlock()
	refs, err := r.store.Refs()
	if err != nil {
		return err
	}
	id, ok := refs[ref.String()]
	if !ok {
		return errdefs.New(errdefs.ErrNotFound, "no such image: "+ref.Familiar())
	}
	delete(refs, ref.String())
	if err := r.store.PutRefs(refs); err != nil {
		return err
	}
	r.event(ctx, "image", "untag", id.String(), map[string]string{"name": ref.Familiar()})
	return nil
}

// RemoveReport is one line of what RemoveImage did, as docker prints it:
// "Untagged: busybox:latest" or "Deleted: sha256:...".
type RemoveReport struct {
	Untagged string `json:",omitempty"`
	Deleted  string `json:",omitempty"`
}

// RemoveImageOption configures RemoveImage.
type RemoveImageOption func(*removeImageOptions)

type removeImageOptions struct{ force bool }

// WithForce removes an image that has several names when addressed by ID,
// or that stopped containers use (they keep their layers). Default: false.
// A running container's image is never removed.
func WithForce(force bool) RemoveImageOption {
	return func(o *removeImageOptions) { o.force = force }
}

// RemoveImage removes an image the way `docker rmi` does: by name it
// removes that name, and the image with it when it was the last one; by ID
// it removes the image and all its names (with WithForce when it has more
// than one). An image a container uses is refused with an ErrConflict
// error unless forced, and never while the container runs. Layers shared
// with other images stay until their last user goes.
func (r *Runtime) RemoveImage(ctx context.Context, nameOrID string, opts ...RemoveImageOption) ([]RemoveReport, error) {
	var o removeImageOptions
	for _, opt := range opts {
		opt(&o)
	}
	unlock, err := r.store.Lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	refs, err := r.store.Refs()
	if err != nil {
		return nil, err
	}
	rec, err := r.resolveImage(refs, nameOrID)
	if err != nil {
		return nil, err
	}
	tags := refs.TagsOf(rec.ID)
	byName := ""
	if ref, err := reference.Parse(nameOrID); err == nil && refs[ref.String()] == rec.ID {
		byName = ref.String()
	}
	short := rec.ID.Encoded()[:12]
	users := r.imageUsers(rec.ID)
	var reports []RemoveReport
	untag := func(names ...string) error {
		for _, n := range names {
			delete(refs, n)
			reports = append(reports, RemoveReport{Untagged: familiar(n)})
		}
		return r.store.PutRefs(refs)
	}
	switch {
	case byName != "" && len(tags) > 1:
		// Another name keeps the image.
		if err := untag(byName); err != nil {
			return nil, err
		}
		r.event(ctx, "image", "untag", rec.ID.String(), map[string]string{"name": familiar(byName)})
		return reports, nil
	case byName == "" && len(tags) > 1 && !o.force:
		return nil, errdefs.New(errdefs.ErrConflict, fmt.Sprintf("unable to delete %s (must be forced) - image is referenced in multiple repositories", short))
	}
	if len(users.running) > 0 {
		return nil, errdefs.New(errdefs.ErrConflict, fmt.Sprintf("unable to delete %s (cannot be forced) - image is being used by running container %s", short, users.running[0][:12]))
	}
	if len(users.stopped) > 0 && !o.force {
		what := fmt.Sprintf("unable to delete %s (must be forced)", short)
		if byName != "" {
			what = fmt.Sprintf("unable to remove repository reference %q (must force)", familiar(byName))
		}
		return nil, errdefs.New(errdefs.ErrConflict, fmt.Sprintf("%s - container %s is using its referenced image %s", what, users.stopped[0][:12], short))
	}
	if err := untag(tags...); err != nil {
		return nil, err
	}
	if err := r.store.DeleteImage(rec.ID); err != nil {
		return reports, err
	}
	reports = append(reports, RemoveReport{Deleted: rec.ID.String()})
	r.event(ctx, "image", "delete", rec.ID.String(), nil)
	return reports, nil
}

// Remove removes the image and all its names (see Runtime.RemoveImage).
func (im *Image) Remove(ctx context.Context, opts ...RemoveImageOption) ([]RemoveReport, error) {
	return im.rt.RemoveImage(ctx, im.ID(), append([]RemoveImageOption{WithForce(true)}, opts...)...)
}

// imageUsage lists the containers using an image.
type imageUsage struct{ running, stopped []string }

// imageUsers finds the containers created from image id.
func (r *Runtime) imageUsers(id digest.Digest) imageUsage {
	var u imageUsage
	ids, _ := r.store.ContainerIDs()
	for _, cid := range ids {
		var rec struct {
			Image digest.Digest `json:"image"`
		}
		if store.ReadJSON(r.store.ContainerDir(cid)+"/container.json", &rec) != nil || rec.Image != id {
			continue
		}
		if r.containerRunning(cid) {
			u.running = append(u.running, cid)
		} else {
			u.stopped = append(u.stopped, cid)
		}
	}
	return u
}

// PruneImages removes dangling images no container uses (with all, every
// image no container uses) and reports what it removed and the space
// reclaimed.
func (r *Runtime) PruneImages(ctx context.Context, all bool) ([]RemoveReport, int64, error) {
	return r.pruneImagesFiltered(ctx, all, nil) // prune.go
}
