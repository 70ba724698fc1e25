package berth

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-run/berth/internal/archive"
	"github.com/berth-run/berth/internal/errdefs"
	"github.com/berth-run/berth/internal/opts"
	"github.com/berth-run/berth/internal/proc"
	"github.com/berth-run/berth/internal/reference"
	"github.com/berth-run/berth/internal/store"
)

func (c *Container) commit(ctx context.Context, ref string, o commitOptions) (*Image, error) {
	r := c.rt
	var tag reference.Ref
	if ref != "" {
		var err error
		if tag, err = reference.Parse(ref); err != nil {
			return nil, err
		}
		if tag.Digest() != "" {
			return nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("refusing to create a tag with a digest reference: %s", ref))
		}
	}
	rec, err := r.readRecord(c.rec.ID)
	if err != nil {
		return nil, err
	}
	base, err := r.imageOfRecord(rec)
	if err != nil {
		return nil, err
	}
	cc := &Container{rt: r, rec: rec}
	cfg := cc.commitConfig(base)
	if err := opts.ApplyChanges(&cfg, o.changes); err != nil {
		return nil, err
	}

	// Keep the changes still while they are read: pause a running
	// container, hold a stopped one's lock so that it cannot start.
	lk, st, _, err := r.lockedState(ctx, rec.ID)
	if err != nil {
		return nil, err
	}
	locked := true
	defer func() {
		if locked {
			lk.Unlock()
		}
	}()
	var resumeNow func()
	switch st.Status {
	case StatusRemoving, StatusDead:
		return nil, errdefs.New(errdefs.ErrConflict, fmt.Sprintf("you cannot commit container %s which is %s", rec.Name, st.Status))
	case StatusRunning, StatusRestarting:
		if !o.noPause && st.Status == StatusRunning {
			st.PausedBy = proc.Self() // Open thaws it if this process dies before it does
			if err := cc.setPausedLocked(ctx, rec, st, true); err != nil {
				return nil, err
			}
			// Unpaused once the changes are read (or on an early return);
			// the container may have been killed meanwhile.
			resumed := false
			resume := func() {
				if !resumed {
					resumed = true
					_ = cc.unpause(context.WithoutCancel(ctx))
				}
			}
			defer resume()
			resumeNow = resume
		}
		lk.Unlock()
		locked = false
	}

	lease := r.store.NewLease()
	defer lease.Release()
	layer, empty, err := r.commitLayer(ctx, lease, rec)
	if resumeNow != nil {
		resumeNow()
	}
	if err != nil {
		return nil, fmt.Errorf("commit container %s: %w", rec.Name, err)
	}
	if locked {
		lk.Unlock()
		locked = false
	}

	now := time.Now().UTC()
	img := ocispec.Image{
		Created:  &now,
		Author:   o.author,
		Platform: base.config.Platform,
		Config:   cfg,
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: append([]digest.Digest(nil), base.config.RootFS.DiffIDs...)},
		History:  append([]ocispec.History(nil), base.config.History...),
	}
	// As docker: the history names the command the container ran (what
	// made the layer), not the CMD the new image will have.
	img.History = append(img.History, ocispec.History{Created: &now, CreatedBy: strings.Join(append([]string{rec.Path}, rec.Args...), " "),
		Author: o.author, Comment: o.message, EmptyLayer: empty})
	layers := make([]store.ImageLayer, 0, len(base.rec.Layers)+1)
	for _, l := range base.rec.Layers {
		l.MediaType = ociLayerType(l.MediaType)
		layers = append(layers, l)
	}
	if !empty {
		img.RootFS.DiffIDs = append(img.RootFS.DiffIDs, layer.DiffID)
		layers = append(layers, layer)
	}
	if err := r.checkBlobs(base); err != nil {
		return nil, fmt.Errorf("commit container %s: %w", rec.Name, err)
	}
	im, err := r.newLocalImage(ctx, lease, img, layers, tag)
	if err != nil {
		return nil, fmt.Errorf("commit container %s: %w", rec.Name, err)
	}
	r.event(ctx, "container", "commit", rec.ID, map[string]string{"name": rec.Name, "image": rec.ImageName,
		"comment": o.message, "imageID": im.ID(), "imageRef": tag.Familiar()})
	return im, nil
}

// commitLayer stores the container's changes, without the mount
// artifacts, as a new layer on its image's; empty reports that there were
// none (and no layer was made).
func (r *Runtime) commitLayer(ctx context.Context, lease *store.Lease, rec *containerRecord) (store.ImageLayer, bool, error) {
	_, skip, err := r.changes(rec)
	if err != nil {
		return store.ImageLayer{}, false, err
	}
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(diffWithout(ctx, pw, r.upperDir(rec), skip))
	}()
	defer pr.Close()
	br := bufio.NewReaderSize(pr, 64<<10)
	// A tar with no entries starts with a zero block.
	head, err := br.Peek(512)
	if err != nil {
		return store.ImageLayer{}, false, err
	}
	if bytes.Count(head, []byte{0}) == len(head) {
		return store.ImageLayer{}, true, nil
	}
	var parent digest.Digest
	if n := len(rec.Layers); n > 0 {
		parent = rec.Layers[n-1]
	}
	l, err := r.storeLayer(ctx, lease, parent, br)
	return l, false, err
}

// diffWithout writes the layer tar of upper to w, leaving out the
// entries named in skip (paths relative to upper).
func diffWithout(ctx context.Context, w io.Writer, upper string, skip map[string]bool) error {
	if len(skip) == 0 {
		return archive.Diff(ctx, w, upper, archive.DiffOptions{})
	}
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(archive.Diff(ctx, pw, upper, archive.DiffOptions{}))
	}()
	defer pr.Close()
	tr := tar.NewReader(pr)
	tw := tar.NewWriter(w)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return tw.Close()
		}
		if err != nil {
			return err
		}
		if skip[strings.Trim(h.Name, "/")] {
			continue
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return err
		}
	}
}

// ociLayerType is the OCI media type of a layer blob stored with a
// docker one (the same bytes), for the OCI manifests berth writes.
func ociLayerType(mt string) string {
	switch mt {
	case "application/vnd.docker.image.rootfs.diff.tar.gzip":
		return ocispec.MediaTypeImageLayerGzip
	case "application/vnd.docker.image.rootfs.diff.tar":
		return ocispec.MediaTypeImageLayer
	case "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip":
		return ocispec.MediaTypeImageLayerNonDistributableGzip //nolint:staticcheck // what docker's foreign layers are
	}
	return mt
}

// checkBlobs verifies that the base image's layer blobs are still there
// (an image removed with force while its container lived takes them).
func (r *Runtime) checkBlobs(base *Image) error {
	unlock, err := r.store.Lock()
	if err != nil {
		return err
	}
	defer unlock()
	for _, l := range base.rec.Layers {
		if !r.store.HasBlob(l.Digest) {
			return errdefs.New(errdefs.ErrNotFound, fmt.Sprintf("layer blob %s of image %s is gone (the image was removed)", l.Digest, base.ID()))
		}
	}
	return nil
}
