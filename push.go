package berth

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"

	"github.com/berth-run/berth/internal/errdefs"
	"github.com/berth-run/berth/internal/reference"
	"github.com/berth-run/berth/internal/registry"
)

// PushResult describes a pushed image, as docker's last push line
// ("v1: digest: sha256:... size: 528").
type PushResult struct {
	// Ref is the reference pushed to, in docker's short form.
	Ref string
	// Tag is its tag.
	Tag string
	// Digest is the manifest's digest in the registry.
	Digest digest.Digest
	// Size is the manifest's size in bytes.
	Size int64
}

// Push uploads the image nameOrID to the registry as ref, as `docker
// push` (ref "" pushes to nameOrID, which must then be a name with a
// registry: "host:5000/app:v1"). Only the blobs the registry lacks are
// sent (a HEAD each); a blob that a stored image using it was pulled
// from or pushed to another repository of the same registry (its
// RepoDigests) is mounted from there instead; the
// manifest goes last, exactly as stored, so its digest is the one the
// image already has. The image then records ref's repository and the
// digest in RepoDigests. Refused credentials are an ErrUnauthorized error;
// a digest reference is an ErrInvalid error.
func (r *Runtime) Push(ctx context.Context, nameOrID, ref string, opts ...RegistryOption) (*PushResult, error) {
	im, err := r.Image(ctx, nameOrID)
	if err != nil {
		return nil, err
	}
	if ref == "" {
		ref = nameOrID
	}
	return im.Push(ctx, ref, opts...)
}

// Push uploads the image to the registry as ref (see Runtime.Push).
func (im *Image) Push(ctx context.Context, ref string, opts ...RegistryOption) (*PushResult, error) {
	r := im.rt
	call := makeRegistryCall(opts)
	named, err := reference.Parse(ref)
	if err != nil {
		return nil, err
	}
	if named.Digest() != "" {
		return nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("cannot push to a digest reference: %s", ref))
	}
	raw, err := r.store.ReadBlob(im.rec.ManifestDigest)
	if err != nil {
		return nil, fmt.Errorf("image %s: manifest: %w", shortDigest(im.rec.ID), err)
	}
	cfgDesc, layers, err := registry.ParseImageManifest(raw)
	if err != nil {
		return nil, fmt.Errorf("image %s: manifest: %w", shortDigest(im.rec.ID), err)
	}
	if cfgDesc.Digest != im.rec.ID {
		return nil, errdefs.New(errdefs.ErrCorrupt, fmt.Sprintf("image %s: its manifest names config %s", shortDigest(im.rec.ID), cfgDesc.Digest))
	}
	mt := im.rec.ManifestMediaType
	if mt == "" {
		var probe struct {
			MediaType string `json:"mediaType"`
		}
		_ = json.Unmarshal(raw, &probe)
		mt = probe.MediaType
		if mt == "" {
			mt = ocispec.MediaTypeImageManifest
		}
	}
	blobs := []digest.Digest{cfgDesc.Digest}
	for _, l := range layers {
		blobs = append(blobs, l.Digest)
	}
	mountFrom, sources := r.mountSources(named, blobs)
	cl, err := r.registryClient(call)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	repo, err := cl.OpenPush(ctx, named, sources)
	if err != nil {
		return nil, err
	}
	sink := &progressSink{fn: call.progress}
	for _, l := range layers {
		sink.emit(Progress{Digest: l.Digest, Phase: PhasePreparing})
	}
	ps := &pusher{rt: r, repo: repo, sink: sink, mountFrom: mountFrom}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(cl.Config().Uploads())
	g.Go(func() error { return ps.blob(gctx, cfgDesc, false) })
	for _, l := range layers {
		g.Go(func() error { return ps.blob(gctx, l, true) })
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	d, err := repo.PutManifest(ctx, named.Tag(), mt, raw)
	if err != nil {
		return nil, err
	}
	r.recordPush(im.rec.ID, named.Name()+"@"+d.String())
	r.event(ctx, "image", "push", im.ID(), map[string]string{"name": named.Familiar()})
	return &PushResult{Ref: named.Familiar(), Tag: named.Tag(), Digest: d, Size: int64(len(raw))}, nil
}

// maxMountSources bounds the repositories a push asks pull access to.
const maxMountSources = 8

// mountSources finds, for each blob, the repositories of target's
// registry (other than target's) that hold it: those of the registry
// digests of every stored image that uses the blob (a committed image's
// base layers are in its base's repository, as docker's layer metadata
// would say). It returns them per blob, and all of them.
func (r *Runtime) mountSources(target reference.Ref, blobs []digest.Digest) (map[digest.Digest][]string, []string) {
	want := map[digest.Digest]bool{}
	for _, b := range blobs {
		want[b] = true
	}
	per := map[digest.Digest][]string{}
	var all []string
	images, _ := r.store.Images()
	for _, im := range images {
		var repos []string
		for _, rd := range im.RepoDigests {
			ref, err := reference.ParseName(rd)
			if err != nil || ref.Domain() != target.Domain() || ref.Path() == target.Path() {
				continue
			}
			repos = append(repos, ref.Path())
		}
		if len(repos) == 0 {
			continue
		}
		for _, b := range im.Blobs() {
			if !want[b] {
				continue
			}
			for _, repo := range repos {
				if !slices.Contains(per[b], repo) {
					per[b] = append(per[b], repo)
				}
				if !slices.Contains(all, repo) && len(all) < maxMountSources {
					all = append(all, repo)
				}
			}
		}
	}
	return per, all
}

// pusher uploads the blobs of one push.
type pusher struct {
	rt        *Runtime
	repo      *registry.Repo
	sink      *progressSink
	mountFrom map[digest.Digest][]string // blob -> repositories that have it
}

// blob makes sure the registry has the blob desc: it checks, mounts it
// from a repository of the same registry that has it, or uploads it from
// the store. Layers report
// progress; the config does not (docker shows none for it).
func (ps *pusher) blob(ctx context.Context, desc ocispec.Descriptor, layer bool) error {
	emit := func(ev Progress) {
		if layer {
			ev.Digest = desc.Digest
			ps.sink.emit(ev)
		}
	}
	has, err := ps.repo.HasBlob(ctx, desc.Digest)
	if err != nil {
		return err
	}
	if has {
		emit(Progress{Phase: PhaseLayerExists})
		return nil
	}
	location := ""
	if from := ps.mountFrom[desc.Digest]; len(from) > 0 {
		from := from[0]
		mounted, loc, err := ps.repo.Mount(ctx, desc.Digest, from)
		if err != nil {
			return err
		}
		if mounted {
			emit(Progress{Phase: PhaseMounted, From: from})
			return nil
		}
		location = loc
	}
	f, err := ps.rt.store.OpenBlob(desc.Digest)
	if err != nil {
		return fmt.Errorf("push: blob %s: %w", desc.Digest, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	var body io.Reader = f
	if layer && ps.sink.fn != nil {
		body = &pushReader{r: f, emit: func(n int64) { emit(Progress{Phase: PhasePushing, Current: n, Total: st.Size()}) }, step: max(st.Size()/100, 512<<10)}
	}
	if err := ps.repo.Upload(ctx, location, desc.Digest, st.Size(), body); err != nil {
		return err
	}
	emit(Progress{Phase: PhasePushed})
	return nil
}

// pushReader reports the bytes read from a blob being uploaded.
type pushReader struct {
	r       *os.File
	n, next int64
	step    int64
	emit    func(int64)
}

func (p *pushReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.n += int64(n)
	if p.n >= p.next || err == io.EOF {
		p.next = p.n + p.step
		p.emit(p.n)
	}
	return n, err
}

// recordPush adds a registry digest to the image record (if the image
// is still there).
func (r *Runtime) recordPush(id digest.Digest, repoDigest string) {
	unlock, err := r.store.Lock()
	if err != nil {
		return
	}
	defer unlock()
	rec, err := r.store.GetImage(id)
	if err != nil {
		return
	}
	rec.RepoDigests = withRepoDigest(rec.RepoDigests, repoDigest)
	_ = r.store.PutImage(rec)
}
