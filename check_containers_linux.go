package berth

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/berth-run/berth/internal/errdefs"
	"github.com/berth-run/berth/internal/overlay"
	"github.com/berth-run/berth/internal/store"
)

// The container half of Check: records against reality.

// checkContainers checks every container under its lock.
func (c *checker) checkContainers(ctx context.Context) error {
	r := c.r
	ents, err := os.ReadDir(r.store.Path("containers"))
	if err != nil {
		return err
	}
	procs := containerProcesses()
	for _, e := range ents {
		if err := ctx.Err(); err != nil {
			return err
		}
		if !e.IsDir() || len(e.Name()) != 64 || !hexPrefix.MatchString(e.Name()) {
			if stale, ok := store.StaleTempFile(e.Name()); ok && !stale {
				continue
			}
			rel := filepath.Join("containers", e.Name())
			c.add("file "+rel, "is not a container", nil)
			continue
		}
		c.checkContainer(ctx, e.Name(), procs[e.Name()])
	}
	return nil
}

// checkContainer judges one container, holding its lock. pids are the
// processes found in cgroups named after it.
func (c *checker) checkContainer(ctx context.Context, id string, pids []int) {
	r := c.r
	lk, err := r.lockContainer(id)
	if err != nil {
		c.add("container "+id[:12], err.Error(), nil)
		return
	}
	defer lk.Unlock()
	obj := "container " + id[:12]
	rec, err := r.readRecord(id)
	if errors.Is(err, errdefs.ErrNotFound) {
		if _, err := os.Stat(r.containerDir(id)); err == nil {
			c.add(obj, "has no record (its create crashed)", func() error {
				r.removeUnfinished(id)
				if !r.containerExists(id) {
					lk.RemoveLock()
				}
				return nil
			})
		}
		return
	}
	if err != nil {
		c.add(obj, fmt.Sprintf("record cannot be read: %v; remove the container", err), nil)
		return
	}
	obj = "container " + rec.Name
	st, err := r.readState(id)
	if err != nil {
		c.add(obj, fmt.Sprintf("state cannot be read: %v", err), func() error {
			return r.writeState(id, &containerState{Status: StatusDead, Error: "its state was lost", FinishedAt: time.Now().UTC()})
		})
		return
	}
	var cannotRun []string
	for _, l := range rec.Layers {
		if _, err := r.store.GetLayer(l); err != nil {
			cannotRun = append(cannotRun, fmt.Sprintf("layer %s is missing", l))
		}
	}
	for _, m := range rec.Mounts {
		if m.Type == MountTypeVolume && m.Name != "" {
			if _, err := r.readVolume(m.Name); err != nil {
				cannotRun = append(cannotRun, fmt.Sprintf("volume %s is missing", m.Name))
			}
		}
	}
	for _, why := range cannotRun {
		fix := func() error { return nil } // the state is written once, below
		if st.Status == StatusDead {
			fix = nil
		}
		c.add(obj, why, fix)
	}
	if len(cannotRun) > 0 && c.o.repair && st.Status != StatusDead && !isLive(st.Status) {
		st.Status, st.Error = StatusDead, strings.Join(cannotRun, "; ")
		_ = r.writeState(id, st)
	}

	if isLive(st.Status) {
		c.checkLive(ctx, rec, st, pids)
		return
	}
	c.checkStopped(ctx, rec, st, pids)
}

// checkLive checks a container recorded as running, paused or restarting.
func (c *checker) checkLive(ctx context.Context, rec *containerRecord, st *containerState, pids []int) {
	r := c.r
	obj := "container " + rec.Name
	if !st.Owner.Alive() {
		c.add(obj, fmt.Sprintf("is recorded as %s but the process that ran it (%d) is gone", st.Status, st.Owner.PID), func() error {
			_, err := r.reconcileLocked(ctx, rec.ID)
			if errors.Is(err, errdefs.ErrNotFound) {
				return nil // --rm removed it
			}
			return err
		})
		return
	}
	if !st.Init.Alive() {
		return // its owner records the exit, or restarts it
	}
	if st.Status == StatusPaused && st.PausedBy.PID != 0 && !st.PausedBy.Alive() {
		c.add(obj, fmt.Sprintf("was paused by process %d (a commit), which is gone", st.PausedBy.PID), func() error {
			return (&Container{rt: r, rec: rec}).setPausedLocked(ctx, rec, st, false)
		})
	}
	if sameMountNamespace(st.Owner.PID) && !overlay.Mounted(filepath.Join(r.containerDir(rec.ID), "rootfs")) {
		c.add(obj, "runs without its root filesystem mounted", nil)
	}
	if cg, err := r.containerCgroup(rec); err == nil && !cg.Exists() {
		c.add(obj, "runs without its cgroup", nil)
	}
	_ = pids
}

// checkStopped checks that a container that is not running left nothing
// behind: mounts, cgroup, processes, run-time state, network namespace.
func (c *checker) checkStopped(ctx context.Context, rec *containerRecord, st *containerState, pids []int) {
	r := c.r
	obj := "container " + rec.Name
	var once sync.Once
	var fixErr error
	release := func() error {
		once.Do(func() { fixErr = r.releaseStopped(ctx, rec) })
		return fixErr
	}
	// Everything is observed first, then reported: the first repair
	// releases it all.
	var left []string
	if overlay.Mounted(filepath.Join(r.containerDir(rec.ID), "rootfs")) {
		left = append(left, fmt.Sprintf("is %s but its root filesystem is mounted", st.Status))
	}
	cg, err := r.containerCgroup(rec)
	if err == nil && cg.Exists() {
		what := fmt.Sprintf("is %s but its cgroup %s is left", st.Status, cg.Name())
		if procs, err := cg.Procs(); err == nil && len(procs) > 0 {
			what += fmt.Sprintf(" with processes %v", procs)
		}
		left = append(left, what)
	} else if len(pids) > 0 {
		c.add(obj, fmt.Sprintf("is %s but processes %v are in cgroups named after it", st.Status, pids), func() error {
			return killPids(pids)
		})
	}
	if _, err := os.Stat(r.store.ContainerRunDir(rec.ID)); err == nil {
		left = append(left, fmt.Sprintf("is %s but its run-time state %s is left", st.Status, r.store.ContainerRunDir(rec.ID)))
	}
	netns := r.netnsPaths(rec)
	for _, p := range netns {
		if _, err := os.Lstat(p); err == nil {
			left = append(left, fmt.Sprintf("is %s but its network namespace %s is left", st.Status, p))
		}
	}
	for _, what := range left {
		c.add(obj, what, release)
	}
	rootfs := filepath.Join(r.containerDir(rec.ID), "rootfs")
	for _, p := range c.hostByID[rec.ID] {
		if p == rootfs || slices.Contains(netns, p) || p == r.store.ContainerRunDir(rec.ID) || !isMountPoint(p) {
			continue
		}
		c.add("mount "+p, fmt.Sprintf("belongs to container %s, which is %s", rec.Name, st.Status), func() error { return unmountDetach(p) })
	}
}

// releaseStopped releases what a container that is not running holds:
// its runtime state and processes, cgroup, network and mounts. The
// caller holds the container lock.
func (r *Runtime) releaseStopped(ctx context.Context, rec *containerRecord) error {
	c := &Container{rt: r, rec: rec}
	var errs []error
	if err := deleteRuntimeState(ctx, r.store.ContainerRunDir(rec.ID)); err != nil {
		errs = append(errs, err)
	}
	if cg, err := r.containerCgroup(rec); err == nil && cg.Exists() {
		if err := cg.Kill(ctx); err != nil {
			errs = append(errs, err)
		}
		if err := cg.Delete(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := os.RemoveAll(r.store.ContainerRunDir(rec.ID)); err != nil {
		errs = append(errs, err)
	}
	r.releaseResources(ctx, c)
	for _, p := range r.netnsPaths(rec) {
		if err := removeNetnsFile(ctx, p); err != nil {
			errs = append(errs, err)
		}
	}
	if overlay.Mounted(filepath.Join(r.containerDir(rec.ID), "rootfs")) {
		errs = append(errs, errors.New("root filesystem is still mounted"))
	}
	return errors.Join(errs...)
}

// netnsPaths are where a container's network namespace may be bound.
func (r *Runtime) netnsPaths(rec *containerRecord) []string {
	paths := []string{r.store.RunPath("netns", rec.ID)}
	if rec.Network != nil && rec.Network.NetNS != "" && !slices.Contains(paths, rec.Network.NetNS) {
		paths = append(paths, rec.Network.NetNS)
	}
	return paths
}

// checkHost looks at what is mounted and kept at run time under the
// store: mounts and run-time state of existing containers are judged by
// checkContainer (under the container's lock); those of containers that
// do not exist, and lock files of removed containers, are reported here.
func (c *checker) checkHost(ctx context.Context) error {
	r := c.r
	c.hostByID = map[string][]string{}
	orphans := map[string][]string{} // by container ID: mounts and paths of containers that do not exist
	byID := func(id, p string) {
		if len(id) == 64 && hexPrefix.MatchString(id) {
			if r.containerExists(id) {
				c.hostByID[id] = append(c.hostByID[id], p)
			} else {
				orphans[id] = append(orphans[id], p)
			}
			return
		}
		c.add("path "+p, "is not run-time state of a container", nil)
	}
	mounts, err := mountsBelow(r.opts.root, r.opts.runRoot)
	if err != nil {
		return err
	}
	for _, m := range mounts {
		if rel, ok := relativeTo(m, r.opts.root); ok {
			parts := strings.Split(rel, string(filepath.Separator))
			switch {
			case len(parts) >= 2 && parts[0] == "containers":
				byID(parts[1], m)
			case len(parts) == 3 && parts[0] == "volumes" && parts[2] == "_data":
				if _, err := r.readVolume(parts[1]); err != nil {
					c.add("mount "+m, "belongs to no volume", func() error { return unmountDetach(m) })
				}
			case parts[0] == "tmp":
				// Reported with the leftovers of dead processes.
			default:
				c.add("mount "+m, "is not one berth makes", nil)
			}
			continue
		}
		if rel, ok := relativeTo(m, r.opts.runRoot); ok {
			parts := strings.Split(rel, string(filepath.Separator))
			if len(parts) >= 2 && (parts[0] == "netns" || parts[0] == "containers") {
				byID(parts[1], m)
			} else {
				c.add("mount "+m, "is not one berth makes", nil)
			}
		}
	}
	for _, sub := range []string{"containers", "netns"} {
		ents, err := os.ReadDir(r.store.RunPath(sub))
		if err != nil {
			continue
		}
		for _, e := range ents {
			byID(e.Name(), r.store.RunPath(sub, e.Name()))
		}
	}
	locks, err := r.store.Locks()
	if err != nil {
		return err
	}
	for _, name := range locks {
		if id, ok := strings.CutPrefix(name, "ctr-"); ok && !r.containerExists(id) {
			orphans[id] = append(orphans[id], r.store.Path("locks", name))
		}
	}
	ids := make([]string, 0, len(orphans))
	for id := range orphans {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return err
		}
		c.checkOrphan(ctx, id, orphans[id])
	}
	return nil
}

// checkOrphan reports (and removes) the mounts, run-time state and lock
// file of container id, which does not exist: judged again under its lock,
// since a create may be under way.
func (c *checker) checkOrphan(ctx context.Context, id string, paths []string) {
	r := c.r
	if _, err := os.Stat(r.containerDir(id)); err == nil {
		return // being created (or a leftover checkContainers reports)
	}
	var lk *store.FileLock
	if c.o.repair {
		// Judged again under the lock, which (as the container does not
		// exist) also removes the lock file.
		var err error
		if lk, err = r.lockContainer(id); err != nil {
			return
		}
		defer lk.Unlock()
		if _, err := os.Stat(r.containerDir(id)); err == nil {
			return
		}
	}
	slices.Sort(paths)
	paths = slices.Compact(paths)
	sort.SliceStable(paths, func(i, j int) bool { return len(paths[i]) > len(paths[j]) }) // mounts below their dirs first
	for _, p := range paths {
		if p == r.store.Path("locks", "ctr-"+id) {
			c.add("file "+filepath.Join("locks", "ctr-"+id), "is the lock of no container", func() error { return nil })
			continue
		}
		if isMountPoint(p) {
			c.add("mount "+p, "belongs to no container", func() error { return unmountDetach(p) })
		}
		if filepath.Dir(p) == r.store.RunPath("netns") || filepath.Dir(p) == r.store.RunPath("containers") {
			c.add("path "+p, "is run-time state of no container", func() error {
				if filepath.Dir(p) == r.store.RunPath("netns") {
					return removeNetnsFile(ctx, p)
				}
				return deleteRuntimeState(ctx, p)
			})
		}
	}
}

// repairLeftovers is Open's repair of what killed operations leave that
// the repair of containers with a dead owner does not see: the mounts,
// run-time state and cgroup of a container whose start was killed before
// it was recorded as running, a container left paused by a commit that
// was killed, and the lock files of containers whose removal was killed. A container whose lock is held is left alone:
// someone works on it.
func (r *Runtime) repairLeftovers(ctx context.Context) {
	r.removeStaleLocks()
	ids, err := r.store.ContainerIDs()
	if err != nil {
		return
	}
	for _, id := range ids {
		st, err := r.readState(id)
		if err != nil {
			continue
		}
		pauserGone := st.Status == StatusPaused && st.PausedBy.PID != 0 && !st.PausedBy.Alive()
		if isLive(st.Status) && !pauserGone {
			continue
		}
		if !pauserGone {
			_, runErr := os.Stat(r.store.ContainerRunDir(id))
			if runErr != nil && !overlay.Mounted(filepath.Join(r.containerDir(id), "rootfs")) {
				continue
			}
		}
		lk, ok := r.tryLockAwhile(id)
		if !ok {
			continue
		}
		st, err = r.readState(id)
		rec, rerr := r.readRecord(id)
		switch {
		case err != nil || rerr != nil:
		case st.Status == StatusPaused && st.PausedBy.PID != 0 && !st.PausedBy.Alive():
			_ = (&Container{rt: r, rec: rec}).setPausedLocked(ctx, rec, st, false)
		case !isLive(st.Status):
			_ = r.releaseStopped(ctx, rec)
		}
		lk.Unlock()
	}
}

// tryLockAwhile takes container id's lock if it is free now or within
// 100 ms. A start killed mid-way leaves the lock to its child (the
// container's init, which shares the starter's descriptors until it
// execs) for the instant the child takes to die; someone really working
// on the container holds it longer, and is left alone.
func (r *Runtime) tryLockAwhile(id string) (*store.FileLock, bool) {
	for i := 0; ; i++ {
		lk, ok, err := r.store.TryLockName("ctr-" + id)
		if err != nil {
			return nil, false
		}
		gone := r.containerGone(id)
		if ok && gone {
			// Removed meanwhile: leave no lock file (as lockContainer).
			lk.RemoveLock()
			lk.Unlock()
			return nil, false
		}
		if ok {
			return lk, true
		}
		if i == 10 || gone {
			return nil, false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// removeStaleLocks removes the lock files of containers that do not
// exist: a removal that was killed after the container's directory went
// leaves its lock file.
func (r *Runtime) removeStaleLocks() {
	locks, err := r.store.Locks()
	if err != nil {
		return
	}
	for _, name := range locks {
		if id, ok := strings.CutPrefix(name, "ctr-"); ok && !r.containerExists(id) {
			// lockContainer removes the file of a container that does not exist.
			if lk, err := r.lockContainer(id); err == nil {
				lk.Unlock()
			}
		}
	}
}

// containerExists reports whether container id has a record.
func (r *Runtime) containerExists(id string) bool {
	_, err := os.Stat(filepath.Join(r.containerDir(id), "container.json"))
	return err == nil
}

// relativeTo returns p relative to dir when p is below dir.
func relativeTo(p, dir string) (string, bool) {
	rel, err := filepath.Rel(dir, p)
	if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", false
	}
	return rel, true
}
