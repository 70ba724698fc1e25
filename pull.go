package berth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"

	"github.com/berth-run/berth/internal/archive"
	"github.com/berth-run/berth/internal/errdefs"
	"github.com/berth-run/berth/internal/reference"
	"github.com/berth-run/berth/internal/registry"
	"github.com/berth-run/berth/internal/store"
)

// Pull downloads the image ref names ("busybox" is
// docker.io/library/busybox:latest; "host:5000/app:v1";
// "app@sha256:...") and stores it, as `docker pull`. From an index
// (a multi-platform image) it takes the host's platform, or the one
// WithPlatform names. Docker schema2 and OCI images with gzip, zstd or
// uncompressed layers are pulled; Docker Hub's mirrors are tried first
// when the config file lists them.
//
// Each layer is downloaded, verified and unpacked in one pass, several
// layers at once (max-concurrent-downloads); layers already stored are
// not fetched again. Processes pulling the same image at once share the
// work: each blob is downloaded by one of them. Data that does not match
// its digest fails the pull with an ErrCorrupt error, and a failed or
// killed pull leaves no image and no layer behind. A malformed reference
// is an ErrInvalid error, an unknown image an ErrNotFound error, refused
// credentials an ErrUnauthorized error.
//
// The image's manifest is stored as it was received (its digest is
// ManifestDigest) and the image records ref's repository with the digest
// the reference resolved to (the index's when there is one) in
// RepoDigests. Pulling by digest tags nothing. Cancelling ctx stops the
// pull and stores nothing.
func (r *Runtime) Pull(ctx context.Context, ref string, opts ...RegistryOption) (*Image, error) {
	call := makeRegistryCall(opts)
	named, err := reference.Parse(ref)
	if err != nil {
		return nil, err
	}
	platform, explicit, err := call.platformOf()
	if err != nil {
		return nil, err
	}
	cl, err := r.registryClient(call)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	res, err := cl.Resolve(ctx, named, platform)
	if err != nil {
		return nil, err
	}
	sink := &progressSink{fn: call.progress}
	var im *Image
	for attempt := 0; ; attempt++ {
		im, err = r.pullResolved(ctx, cl, named, res, platform, explicit, sink)
		// A concurrent removal took a blob or layer this pull found
		// stored but had no lease on: fetch again.
		if !errors.Is(err, errPullRace) || attempt == 3 {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	r.event(ctx, "image", "pull", im.ID(), map[string]string{"name": named.Familiar()})
	return im, nil
}

// Pull pulls ref with the default Runtime (see Default and Runtime.Pull).
func Pull(ctx context.Context, ref string, opts ...RegistryOption) (*Image, error) {
	rt, err := Default(ctx)
	if err != nil {
		return nil, err
	}
	return rt.Pull(ctx, ref, opts...)
}

// errPullRace: something the pull relied on was removed before it could
// record the image.
var errPullRace = errors.New("pulled content was removed concurrently")

// puller is one attempt at storing a resolved image.
type puller struct {
	rt    *Runtime
	repo  *registry.Repo
	lease *store.Lease
	sink  *progressSink

	mu     sync.Mutex      // guards layers and blobs
	layers []digest.Digest // chain IDs this pull created
	blobs  []digest.Digest // blobs this pull stored that were not there
}

func (r *Runtime) pullResolved(ctx context.Context, cl *registry.Client, named reference.Ref, res *registry.Resolved, platform ocispec.Platform, explicit bool, sink *progressSink) (_ *Image, err error) {
	p := &puller{rt: r, repo: res.Repo, lease: r.store.NewLease(), sink: sink}
	defer p.lease.Release()
	defer func() {
		if err != nil {
			p.discard()
		}
	}()
	rawCfg, err := p.config(ctx, res.Config)
	if err != nil {
		return nil, err
	}
	var cfg ocispec.Image
	if err := json.Unmarshal(rawCfg, &cfg); err != nil {
		return nil, errdefs.Wrap(errdefs.ErrInvalid, fmt.Sprintf("%s: image config %s", named.Familiar(), res.Config.Digest), err)
	}
	if n, m := len(cfg.RootFS.DiffIDs), len(res.Layers); n != m {
		return nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("%s: the config lists %d layers, the manifest %d", named.Familiar(), n, m))
	}
	for _, d := range cfg.RootFS.DiffIDs {
		if err := d.Validate(); err != nil {
			return nil, errdefs.Wrap(errdefs.ErrInvalid, fmt.Sprintf("%s: image config: diffID", named.Familiar()), err)
		}
	}
	if explicit && !registry.MatchPlatform(platform, cfg.Platform) {
		return nil, errdefs.New(errdefs.ErrNotFound, fmt.Sprintf("image with reference %s was found but does not match the specified platform: wanted %s, actual: %s",
			named.Familiar(), registry.FormatPlatform(platform), registry.FormatPlatform(cfg.Platform)))
	}
	if err := p.putBytes(res.Manifest.Raw); err != nil {
		return nil, err
	}
	chains := store.ChainIDs(cfg.RootFS.DiffIDs)
	rec := &store.Image{ID: res.Config.Digest, ManifestDigest: res.Manifest.Digest, ManifestMediaType: res.Manifest.MediaType, Created: time.Now().UTC()}
	for i, l := range res.Layers {
		rec.Layers = append(rec.Layers, store.ImageLayer{Digest: l.Digest, MediaType: l.MediaType, Size: l.Size, DiffID: cfg.RootFS.DiffIDs[i], ChainID: chains[i]})
	}
	// Announce every layer in manifest order, so progress shows them in
	// that order; then fetch them in parallel.
	// Layers beyond the download slots wait for one.
	limit := cl.Config().Downloads()
	present := make([]bool, len(rec.Layers))
	missing := 0
	for i, il := range rec.Layers {
		present[i] = p.stored(il)
		if present[i] {
			sink.emit(Progress{Digest: il.Digest, Phase: PhaseAlreadyExists})
			continue
		}
		sink.emit(Progress{Digest: il.Digest, Phase: PhasePullingFS, Total: il.Size})
		if missing++; missing > limit {
			sink.emit(Progress{Digest: il.Digest, Phase: PhaseWaiting, Total: il.Size})
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(limit)
	var parent digest.Digest
	for i, il := range rec.Layers {
		below, present := parent, present[i]
		g.Go(func() error { return p.layer(gctx, below, il, present) })
		parent = il.ChainID
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	var tag reference.Ref
	if named.Digest() == "" {
		tag = named
	}
	return r.recordPull(ctx, rec, tag, named.Name()+"@"+res.Digest.String())
}

// stored reports whether the layer's blob and unpacked directory are both
// in the store.
func (p *puller) stored(il store.ImageLayer) bool {
	if !p.rt.store.HasBlob(il.Digest) {
		return false
	}
	_, err := p.rt.store.GetLayer(il.ChainID)
	return err == nil
}

// blobLock serializes the fetching of one blob across processes, so that
// concurrent pulls download it once: the second finds it stored.
func (p *puller) blobLock(d digest.Digest) (*store.FileLock, error) {
	return p.rt.store.LockName("blob-" + d.Encoded())
}

// config returns the image config blob, fetching it unless it is stored,
// and holds it in the lease.
func (p *puller) config(ctx context.Context, desc ocispec.Descriptor) ([]byte, error) {
	if !p.rt.store.HasBlob(desc.Digest) {
		lk, err := p.blobLock(desc.Digest)
		if err != nil {
			return nil, err
		}
		defer lk.Unlock()
		if !p.rt.store.HasBlob(desc.Digest) {
			b, err := p.repo.FetchBlob(ctx, desc, registry.MaxConfigSize)
			if err != nil {
				return nil, err
			}
			return b, p.putBytes(b)
		}
	}
	b, err := p.rt.store.ReadBlob(desc.Digest)
	if err != nil {
		return nil, err
	}
	return b, p.putBytes(b)
}

// putBytes stores a small blob (or holds it when it is stored already).
func (p *puller) putBytes(b []byte) error {
	existed := p.rt.store.HasBlob(digest.FromBytes(b))
	d, err := p.rt.store.PutBlobBytes(p.lease, b)
	if err == nil && !existed {
		p.added(d, "")
	}
	return err
}

func (p *puller) added(blob, layer digest.Digest) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if blob != "" {
		p.blobs = append(p.blobs, blob)
	}
	if layer != "" {
		p.layers = append(p.layers, layer)
	}
}

// layer makes sure the blob and the unpacked layer il (on top of the
// chain parent) are stored and held by the lease.
func (p *puller) layer(ctx context.Context, parent digest.Digest, il store.ImageLayer, present bool) error {
	if present {
		// Hold the layer; it is unpacked again only if it vanished (and
		// if its blob vanished too, a removal raced this pull: start
		// over, fetching it).
		if _, err := p.unpack(ctx, parent, il); err != nil {
			if errors.Is(err, errdefs.ErrNotFound) {
				return errPullRace
			}
			return err
		}
		return nil
	}
	lk, err := p.blobLock(il.Digest)
	if err != nil {
		return err
	}
	defer lk.Unlock()
	_, layerErr := p.rt.store.GetLayer(il.ChainID)
	if p.rt.store.HasBlob(il.Digest) {
		// Another pull fetched it while this one waited for the lock.
		created, err := p.unpack(ctx, parent, il)
		if err != nil {
			return err
		}
		phase := PhaseAlreadyExists
		if created {
			phase = PhasePullComplete
		}
		p.sink.emit(Progress{Digest: il.Digest, Phase: phase})
		return nil
	}
	if layerErr == nil {
		// Unpacked (from another image's blob, or a load) but this blob
		// is missing: fetch the blob alone.
		if err := p.download(ctx, il); err != nil {
			return err
		}
		if _, err := p.unpack(ctx, parent, il); err != nil {
			return err
		}
		p.sink.emit(Progress{Digest: il.Digest, Phase: PhasePullComplete})
		return nil
	}
	var bw *store.BlobWriter
	filled := false
	_, err = p.rt.store.CreateLayer(ctx, p.lease, parent, il.DiffID, func(dir string) (digest.Digest, int64, error) {
		filled = true
		var err error
		if bw, err = p.rt.store.NewBlobWriter(p.lease); err != nil {
			return "", 0, err
		}
		return p.stream(ctx, dir, il, bw)
	})
	if err != nil {
		if bw != nil {
			bw.Close()
		}
		return err
	}
	if !filled {
		// Someone else made the layer meanwhile; the blob is still due.
		if err := p.download(ctx, il); err != nil {
			return err
		}
	} else {
		p.added("", il.ChainID)
		if _, err := bw.Commit(il.Digest, il.Size); err != nil {
			return err
		}
		p.added(il.Digest, "")
	}
	p.sink.emit(Progress{Digest: il.Digest, Phase: PhasePullComplete})
	return nil
}

// stream downloads the layer blob into bw and unpacks it into dir in the
// same pass, and checks the blob's size and digest before the layer is
// kept. It returns the layer's diffID and size.
func (p *puller) stream(ctx context.Context, dir string, il store.ImageLayer, bw *store.BlobWriter) (digest.Digest, int64, error) {
	body, _, err := p.repo.OpenBlob(ctx, il.Digest)
	if err != nil {
		return "", 0, err
	}
	defer body.Close()
	src := &pullReader{r: body, limit: il.Size, emit: p.progressFunc(il, PhaseDownloading)}
	tee := io.TeeReader(src, bw)
	res, aerr := archive.Apply(ctx, dir, tee, archive.ApplyOptions{MaxSize: p.rt.opts.maxLayerSize})
	if src.err == nil && ctx.Err() == nil {
		// Hash what Apply did not need (padding after the end of the
		// tar, or the rest of a stream it refused), so that a layer that
		// fails to unpack because it is corrupt is reported as such.
		if _, err := io.Copy(io.Discard, tee); err != nil && aerr == nil {
			aerr = err
		}
	}
	if src.err != nil {
		return "", 0, fmt.Errorf("download of layer %s: %w", il.Digest, src.err)
	}
	if err := ctx.Err(); err != nil {
		return "", 0, err
	}
	if src.tooLong || bw.Size() != il.Size || bw.Digest() != il.Digest {
		return "", 0, p.mismatch(il, bw)
	}
	if aerr != nil {
		return "", 0, fmt.Errorf("layer %s: %w", il.Digest, aerr)
	}
	p.sink.emit(Progress{Digest: il.Digest, Phase: PhaseVerifying})
	p.sink.emit(Progress{Digest: il.Digest, Phase: PhaseDownloadComplete})
	p.sink.emit(Progress{Digest: il.Digest, Phase: PhaseExtracting, Current: res.Size, Total: res.Size})
	return res.DiffID, res.Size, nil
}

// mismatch is the error of a blob whose content is not what the manifest
// says.
func (p *puller) mismatch(il store.ImageLayer, bw *store.BlobWriter) error {
	return errdefs.New(errdefs.ErrCorrupt, fmt.Sprintf("filesystem layer verification failed for digest %s: registry %s %s: digest mismatch",
		il.Digest, p.repo.Host(), sentWhat(bw.Digest(), bw.Size(), il.Size)))
}

// sentWhat says how received content differs from its descriptor.
func sentWhat(got digest.Digest, n, want int64) string {
	if n > want {
		return fmt.Sprintf("sent more than the %d bytes the manifest says", want)
	}
	if n < want {
		return fmt.Sprintf("sent %d bytes, the manifest says %d", n, want)
	}
	return "sent content with digest " + got.String()
}

// download fetches the layer blob alone into the store.
func (p *puller) download(ctx context.Context, il store.ImageLayer) error {
	body, _, err := p.repo.OpenBlob(ctx, il.Digest)
	if err != nil {
		return err
	}
	defer body.Close()
	bw, err := p.rt.store.NewBlobWriter(p.lease)
	if err != nil {
		return err
	}
	defer bw.Close()
	src := &pullReader{r: body, limit: il.Size, emit: p.progressFunc(il, PhaseDownloading)}
	if _, err := io.Copy(bw, src); err != nil {
		if src.err != nil {
			return fmt.Errorf("download of layer %s: %w", il.Digest, src.err)
		}
		return err
	}
	if src.tooLong || bw.Size() != il.Size || bw.Digest() != il.Digest {
		return p.mismatch(il, bw)
	}
	p.sink.emit(Progress{Digest: il.Digest, Phase: PhaseVerifying})
	if _, err := bw.Commit(il.Digest, il.Size); err != nil {
		return err
	}
	p.added(il.Digest, "")
	p.sink.emit(Progress{Digest: il.Digest, Phase: PhaseDownloadComplete})
	return nil
}

// unpack makes the layer il from its stored blob unless it exists, and
// holds it in the lease. It reports whether it unpacked.
func (p *puller) unpack(ctx context.Context, parent digest.Digest, il store.ImageLayer) (bool, error) {
	created := false
	_, err := p.rt.store.CreateLayer(ctx, p.lease, parent, il.DiffID, func(dir string) (digest.Digest, int64, error) {
		created = true
		f, err := p.rt.store.OpenBlob(il.Digest)
		if err != nil {
			return "", 0, err
		}
		defer f.Close()
		emit := p.progressFunc(il, PhaseExtracting)
		res, err := archive.Apply(ctx, dir, f, archive.ApplyOptions{MaxSize: p.rt.opts.maxLayerSize, Progress: func(n int64) { emit(n, false) }})
		emit(res.Compressed, true)
		return res.DiffID, res.Size, err
	})
	if err != nil {
		return false, fmt.Errorf("layer %s: %w", il.Digest, err)
	}
	if created {
		p.added("", il.ChainID)
	}
	return created, nil
}

// progressFunc returns a reporter of byte counts in phase for il that
// emits at most every 1% or 512 KiB, and always the last count.
func (p *puller) progressFunc(il store.ImageLayer, phase string) func(n int64, last bool) {
	if p.sink.fn == nil {
		return func(int64, bool) {}
	}
	step := max(il.Size/100, 512<<10)
	var next int64
	return func(n int64, last bool) {
		if n < next && !last {
			return
		}
		next = n + step
		p.sink.emit(Progress{Digest: il.Digest, Phase: phase, Current: n, Total: il.Size})
	}
}

// pullReader counts a blob body, reports progress, refuses more bytes
// than the manifest gives, and keeps the body's own read error apart from
// the errors of whoever reads it.
type pullReader struct {
	r       io.Reader
	n       int64
	limit   int64
	emit    func(n int64, last bool)
	err     error // the body's read error, if any
	tooLong bool
}

func (p *pullReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.n += int64(n)
	if p.n > p.limit {
		p.tooLong = true
		return n, errdefs.New(errdefs.ErrCorrupt, fmt.Sprintf("blob is larger than the %d bytes its descriptor gives", p.limit))
	}
	if n > 0 {
		p.emit(p.n, err == io.EOF)
	}
	if err != nil && err != io.EOF {
		p.err = err
	}
	return n, err
}

// discard removes the blobs and layers a failed pull stored, unless an
// image (of another process) uses them by now; a lease of another
// process keeps them too.
func (p *puller) discard() {
	p.lease.Release()
	unlock, err := p.rt.store.Lock()
	if err != nil {
		return
	}
	defer unlock()
	used, _ := p.rt.store.LayerUsers()
	for _, c := range p.layers {
		if used[c] == 0 {
			_ = p.rt.store.DeleteLayer(c)
		}
	}
	usedBlobs := p.rt.usedBlobs()
	for _, b := range p.blobs {
		if !usedBlobs[b] {
			_ = p.rt.store.DeleteBlob(b)
		}
	}
}

// usedBlobs lists the blobs image records reference.
func (r *Runtime) usedBlobs() map[digest.Digest]bool {
	images, _ := r.store.Images()
	used := map[digest.Digest]bool{}
	for _, im := range images {
		for _, b := range im.Blobs() {
			used[b] = true
		}
	}
	return used
}

// recordPull writes the image record of a pull and points tag (if not
// zero) at it, under the store lock, after checking that every blob and
// layer it names is still there (one found stored, not fetched, has no
// lease: a concurrent removal may have taken it; then errPullRace). An
// existing record of the same image takes the pulled manifest (so a push
// sends the registry's bytes) and keeps its other registry digests; the
// blobs only its old manifest used go.
func (r *Runtime) recordPull(ctx context.Context, rec *store.Image, tag reference.Ref, repoDigest string) (*Image, error) {
	unlock, err := r.store.Lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	for _, b := range rec.Blobs() {
		if !r.store.HasBlob(b) {
			return nil, errPullRace
		}
	}
	for _, l := range rec.Layers {
		if _, err := r.store.GetLayer(l.ChainID); err != nil {
			return nil, errPullRace
		}
	}
	old, _ := r.store.GetImage(rec.ID)
	if old != nil {
		rec.Created = old.Created
		rec.RepoDigests = old.RepoDigests
	}
	rec.RepoDigests = withRepoDigest(rec.RepoDigests, repoDigest)
	if err := r.store.PutImage(rec); err != nil {
		return nil, err
	}
	if old != nil && old.ManifestDigest != rec.ManifestDigest {
		used := r.usedBlobs()
		for _, b := range old.Blobs() {
			if !used[b] {
				_ = r.store.DeleteBlob(b)
			}
		}
	}
	refs, err := r.store.Refs()
	if err != nil {
		return nil, err
	}
	if !tag.IsZero() && refs[tag.String()] != rec.ID {
		refs[tag.String()] = rec.ID
		if err := r.store.PutRefs(refs); err != nil {
			return nil, err
		}
	}
	return r.newImage(rec, refs)
}

// withRepoDigest puts name@digest first in list, replacing an older
// digest of the same repository.
func withRepoDigest(list []string, rd string) []string {
	repo, _, _ := strings.Cut(rd, "@")
	out := []string{rd}
	for _, s := range list {
		if r, _, _ := strings.Cut(s, "@"); r != repo {
			out = append(out, s)
		}
	}
	return out
}

// RemoteTags lists the tags of the repository repo ("busybox",
// "host:5000/app") in its registry, as `pull --all-tags` needs them.
func (r *Runtime) RemoteTags(ctx context.Context, repo string, opts ...RegistryOption) ([]string, error) {
	named, err := reference.ParseName(repo)
	if err != nil {
		return nil, err
	}
	if named.Tag() != "" || named.Digest() != "" {
		return nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("%q names a tag or digest, not a repository", repo))
	}
	cl, err := r.registryClient(makeRegistryCall(opts))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	return cl.Tags(ctx, named)
}
