package berth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"github.com/opencontainers/go-digest"

	"github.com/berth-run/berth/internal/archive"
	"github.com/berth-run/berth/internal/errdefs"
	"github.com/berth-run/berth/internal/store"
)

// CheckOption configures Check.
type CheckOption func(*checkOptions)

type checkOptions struct {
	verifyBlobs bool
	repair      bool
}

// WithBlobVerification re-hashes every blob against its digest (slow on
// large stores). Default: false (blobs are only checked to exist).
func WithBlobVerification(v bool) CheckOption { return func(o *checkOptions) { o.verifyBlobs = v } }

// WithRepair makes Check fix what it can (see Check). Default: false,
// Check only reports.
func WithRepair() CheckOption { return func(o *checkOptions) { o.repair = true } }

// Problem is one inconsistency Check found.
type Problem struct {
	Object   string // "image sha256:...", "tag busybox:latest", "container NAME", "mount /path" ...
	What     string
	Repaired bool // WithRepair fixed it
}

func (p Problem) String() string {
	s := p.Object + ": " + p.What
	if p.Repaired {
		s += " (repaired)"
	}
	return s
}

// Check verifies the store against itself and against the host, as
// `berth system check`, and returns what is wrong (nil when nothing is).
//
// Images: every tag names an image; every image's manifest, config and
// layer blobs exist (and match their digests with WithBlobVerification,
// which checks every stored blob); every layer is unpacked with the right
// chain. Layers: each record matches its directory, its parent exists,
// its l/ link points at it, and something (an image, a container or the
// lease of a live operation) uses it; the same for blobs. Leftovers of
// dead processes (temp files, leases, half-written files) are reported.
//
// Containers: every directory has a record and a state; a container's
// layers and volumes exist; a running container's owner and process are
// alive, its root filesystem is mounted and its cgroup exists; a stopped
// one has no mount, no cgroup, no process, no run-time state and no
// network namespace left. Mounts and run-time state under the store that
// belong to no running container are reported, and so are the addresses
// (IPAM leases), veths and published ports of containers that do not run.
//
// WithRepair fixes what it can: it drops tags of missing images, removes
// unused and corrupt blobs and unused layers, unpacks a missing layer
// again from its blob, relinks layers, removes what dead processes left,
// records a container whose owner died as exited (releasing its mounts,
// cgroup and network), releases what stopped containers left, and marks a
// container that cannot run (its layers are gone, its record is
// unreadable) dead, so that it can only be removed, and releases the
// network resources of containers that do not run. What it cannot fix is
// reported with Repaired false. Check does not stop running containers.
//
// Check runs beside other processes using the store: it takes the store
// lock to judge what is unused, and each container's lock to judge it.
func (r *Runtime) Check(ctx context.Context, opts ...CheckOption) ([]Problem, error) {
	var o checkOptions
	for _, opt := range opts {
		opt(&o)
	}
	c := &checker{r: r, o: o}
	for _, step := range []func(context.Context) error{c.checkLeftovers, c.checkImages, c.checkBlobs, c.checkLayers, c.checkHost, c.checkContainers, c.checkNetworks, c.checkVolumes} {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := step(ctx); err != nil {
			return c.probs, err
		}
	}
	sort.SliceStable(c.probs, func(i, j int) bool { return c.probs[i].Object < c.probs[j].Object })
	return c.probs, nil
}

// checker accumulates one Check's problems.
type checker struct {
	r     *Runtime
	o     checkOptions
	probs []Problem

	corrupt  map[digest.Digest]bool // blobs whose content does not match (checkBlobs)
	hostByID map[string][]string    // mounts and run-time paths of existing containers, by ID (checkHost)
}

// add records a problem; fix, when repairing and not nil, repairs it.
func (c *checker) add(obj, what string, fix func() error) {
	p := Problem{Object: obj, What: what}
	if c.o.repair && fix != nil {
		if err := fix(); err != nil {
			p.What += "; repair failed: " + err.Error()
		} else {
			p.Repaired = true
		}
	}
	c.probs = append(c.probs, p)
}

// checkImages checks tags and image records, under the store lock (so
// that what it repairs is judged on a consistent view), then unpacks
// missing layers again when repairing.
func (c *checker) checkImages(ctx context.Context) error {
	s := c.r.store
	unlock, err := s.Lock()
	if err != nil {
		return err
	}
	refs, err := s.Refs()
	if err != nil {
		unlock()
		c.add("tags", fmt.Sprintf("the tag table cannot be read: %v", err), nil)
		return nil
	}
	var dangling []string
	for name, id := range refs {
		if _, err := s.GetImage(id); errors.Is(err, errdefs.ErrNotFound) {
			dangling = append(dangling, name)
		}
	}
	sort.Strings(dangling)
	for _, name := range dangling {
		c.add("tag "+familiar(name), fmt.Sprintf("points at missing image %s", refs[name]), func() error {
			delete(refs, name)
			return s.PutRefs(refs)
		})
	}
	images, err := s.Images()
	unlock()
	if err != nil {
		return err
	}
	type relayer struct {
		im    *store.Image
		index int
	}
	var missing []relayer
	for _, im := range images {
		obj := "image " + im.ID.String()
		for _, b := range im.Blobs() {
			if !s.HasBlob(b) {
				c.add(obj, fmt.Sprintf("blob %s is missing", b), nil)
			}
		}
		if len(im.Layers) > 0 {
			chains := store.ChainIDs(diffIDsOf(im))
			for i, l := range im.Layers {
				if l.ChainID != chains[i] {
					c.add(obj, fmt.Sprintf("layer %d has chain ID %s, want %s", i, l.ChainID, chains[i]), nil)
					continue
				}
				rec, err := s.GetLayer(l.ChainID)
				switch {
				case err != nil:
					missing = append(missing, relayer{im, i})
				case rec.DiffID != l.DiffID:
					c.add(obj, fmt.Sprintf("layer %s has diffID %s, want %s", l.ChainID, rec.DiffID, l.DiffID), nil)
				}
			}
		}
		if _, err := s.ReadBlob(im.ID); err == nil {
			if _, err := c.r.newImage(im, refs); err != nil {
				c.add(obj, fmt.Sprintf("config cannot be read: %v", err), nil)
			}
		}
	}
	for _, m := range missing {
		l := m.im.Layers[m.index]
		c.add("image "+m.im.ID.String(), fmt.Sprintf("layer %s is not unpacked", l.ChainID), func() error {
			return c.unpackAgain(ctx, m.im, m.index)
		})
	}
	return nil
}

func diffIDsOf(im *store.Image) []digest.Digest {
	out := make([]digest.Digest, len(im.Layers))
	for i, l := range im.Layers {
		out[i] = l.DiffID
	}
	return out
}

// unpackAgain unpacks layer i of im from its blob (its parents first).
func (c *checker) unpackAgain(ctx context.Context, im *store.Image, i int) error {
	s := c.r.store
	lease := s.NewLease()
	defer lease.Release()
	for j := 0; j <= i; j++ {
		l := im.Layers[j]
		if _, err := s.GetLayer(l.ChainID); err == nil {
			continue
		}
		var parent digest.Digest
		if j > 0 {
			parent = im.Layers[j-1].ChainID
		}
		_, err := s.CreateLayer(ctx, lease, parent, l.DiffID, func(dir string) (digest.Digest, int64, error) {
			f, err := s.OpenBlob(l.Digest)
			if err != nil {
				return "", 0, err
			}
			defer f.Close()
			res, err := archive.Apply(ctx, dir, f, archive.ApplyOptions{MaxSize: c.r.opts.maxLayerSize})
			if err != nil {
				return "", 0, err
			}
			return res.DiffID, res.Size, archive.SyncFS(dir)
		})
		if err != nil {
			return fmt.Errorf("unpack layer %s: %w", l.ChainID, err)
		}
	}
	return nil
}

// checkBlobs reports (and removes) blobs no image uses and no live
// operation holds, and with WithBlobVerification those whose content
// does not match their digest.
func (c *checker) checkBlobs(ctx context.Context) error {
	s := c.r.store
	blobs, odd, err := s.Blobs()
	if err != nil {
		return err
	}
	for _, p := range odd {
		if _, ok := store.StaleTempFile(filepath.Base(p)); ok {
			continue // checkLeftovers' business
		}
		c.add("file "+p, "is not a blob", nil)
	}
	if c.o.verifyBlobs {
		c.corrupt = map[digest.Digest]bool{}
		for _, d := range blobs {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := verifyBlob(s, d); err != nil {
				c.corrupt[d] = true
				c.add("blob "+d.String(), err.Error()+"; pull the images that use it again", func() error {
					unlock, err := s.Lock()
					if err != nil {
						return err
					}
					defer unlock()
					return s.RemoveBlobFile(d)
				})
			}
		}
	}
	unlock, err := s.Lock()
	if err != nil {
		return err
	}
	defer unlock()
	used, _, err := s.Used()
	if err != nil {
		return err
	}
	leased, err := s.Leased()
	if err != nil {
		return err
	}
	for _, d := range blobs {
		if used[d] || leased[d] || c.corrupt[d] || !s.HasBlob(d) {
			continue
		}
		c.add("blob "+d.String(), "is used by no image", func() error { return s.DeleteBlob(d) })
	}
	return nil
}

// checkLayers checks the layer records, their directories, chains and
// links, and reports the layers nothing uses.
func (c *checker) checkLayers(ctx context.Context) error {
	s := c.r.store
	unlock, err := s.Lock()
	if err != nil {
		return err
	}
	defer unlock()
	layers, err := s.Layers()
	if err != nil {
		return err
	}
	_, used, err := s.Used()
	if err != nil {
		return err
	}
	leased, err := s.Leased()
	if err != nil {
		return err
	}
	have := map[digest.Digest]bool{}
	for _, l := range layers {
		have[l.ChainID] = true
	}
	links, err := s.LayerLinks()
	if err != nil {
		return err
	}
	for _, l := range layers {
		obj := "layer " + l.ChainID.String()
		if store.ChainID(l.Parent, l.DiffID) != l.ChainID {
			c.add(obj, "chain ID does not match parent and diffID", nil)
		}
		if l.Parent != "" && !have[l.Parent] && !leased[l.ChainID] { // a pull unpacks layers in parallel
			c.add(obj, fmt.Sprintf("parent layer %s is missing", l.Parent), nil)
		}
		if fi, err := os.Stat(s.LayerDir(l.ChainID)); err != nil || !fi.IsDir() {
			c.add(obj, "directory is missing", nil)
		}
		name := filepath.Base(s.LayerLink(l.ChainID))
		if target, ok := links[name]; !ok || target != store.LinkTarget(l.ChainID) {
			what := "link is missing"
			if ok {
				what = fmt.Sprintf("link points at %q", target)
			}
			c.add(obj, what, func() error { return s.RelinkLayer(l.ChainID) })
		}
		if !used[l.ChainID] && !leased[l.ChainID] {
			c.add(obj, "is used by no image or container", func() error { return s.DeleteLayer(l.ChainID) })
		}
	}
	for name, target := range links {
		if c.linkInUse(name, target, have) {
			continue
		}
		c.add("link l/"+name, fmt.Sprintf("points at %q, which is not a layer", target), func() error { return s.RemoveLayerLink(name) })
	}
	incomplete, err := s.LayerDirs()
	if err != nil {
		return err
	}
	for _, p := range incomplete {
		c.add("layer "+p, "has no record", func() error { return s.RemoveIncompleteLayer(p) })
	}
	_ = ctx
	return nil
}

// linkInUse reports whether the l/ entry name is the link of a stored
// layer, or of one being created (under its layer lock) right now.
func (c *checker) linkInUse(name, target string, have map[digest.Digest]bool) bool {
	chain, ok := store.LinkedLayer(name, target)
	if !ok {
		return false
	}
	if have[chain] {
		return true
	}
	// A creator makes the link before it renames the layer into place,
	// holding the layer's lock.
	lk, err := c.r.store.LockName("layer-" + chain.Encoded())
	if err != nil {
		return true
	}
	defer lk.Unlock()
	_, err = c.r.store.GetLayer(chain)
	return err == nil
}

// removeStoreFile removes the file rel (relative to the root).
func removeStoreFile(s *store.Store, rel string) error {
	err := os.Remove(s.Path(rel))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// checkLeftovers reports what dead processes left in tmp/ and leases/
// and their half-written record files.
func (c *checker) checkLeftovers(_ context.Context) error {
	s := c.r.store
	stale, err := s.Stale()
	if err != nil {
		return err
	}
	if len(stale) > 0 {
		var fixErr error
		if c.o.repair {
			fixErr = s.RemoveStale()
		}
		sort.Strings(stale)
		for _, p := range stale {
			c.add("file "+p, "left by a process that died", func() error { return fixErr })
		}
	}
	for _, dir := range s.AtomicTempDirs() {
		c.checkAtomicTemps(dir)
	}
	return nil
}

// checkVolumes checks the volume directories.
func (c *checker) checkVolumes(_ context.Context) error {
	r := c.r
	ents, err := os.ReadDir(r.store.Path("volumes"))
	if err != nil {
		return err
	}
	for _, e := range ents {
		rel := filepath.Join("volumes", e.Name())
		if !e.IsDir() {
			if stale, ok := store.StaleTempFile(e.Name()); !ok || stale {
				c.add("file "+rel, "is not a volume", nil)
			}
			continue
		}
		if _, err := r.readVolume(e.Name()); err != nil {
			c.add("volume "+e.Name(), fmt.Sprintf("record cannot be read: %v", err), nil)
			continue
		}
		if fi, err := os.Stat(r.volumeData(e.Name())); err != nil || !fi.IsDir() {
			c.add("volume "+e.Name(), "data directory is missing", func() error { return os.Mkdir(r.volumeData(e.Name()), 0o755) })
		}
	}
	return nil
}

// checkAtomicTemps reports the half-written files of dead processes in
// the directory rel (relative to the root).
func (c *checker) checkAtomicTemps(rel string) {
	ents, err := os.ReadDir(c.r.store.Path(rel))
	if err != nil {
		return
	}
	for _, e := range ents {
		if stale, ok := store.StaleTempFile(e.Name()); ok && stale {
			p := filepath.Join(rel, e.Name())
			c.add("file "+p, "a half-written file of a process that died", func() error { return removeStoreFile(c.r.store, p) })
		}
	}
}

// isLive reports whether a container of this status has a process (or
// is about to be restarted).
func isLive(status string) bool {
	return status == StatusRunning || status == StatusPaused || status == StatusRestarting
}

func verifyBlob(s *store.Store, d digest.Digest) error {
	f, err := s.OpenBlob(d)
	if err != nil {
		return err
	}
	defer f.Close()
	v := d.Verifier()
	if _, err := io.Copy(v, f); err != nil {
		return fmt.Errorf("blob %s: %w", d, err)
	}
	if !v.Verified() {
		return fmt.Errorf("blob %s: content does not match its digest", d)
	}
	return nil
}
