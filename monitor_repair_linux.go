package berth

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/berth-run/berth/internal/store"
)

// repairContainers is Open's repair of the containers: a container whose
// owner (the process that ran it, or the monitor) died is recorded as
// exited and what it left (mounts, cgroup, network) is released, with
// --rm honoured; a DieWithCreator container whose creator died is
// removed; a directory without container.json (a crash during Create) is
// removed. It reads each container's small state file and touches only
// those that need it.
func (r *Runtime) repairContainers(ctx context.Context) error {
	ids, err := r.store.ContainerIDs()
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return err
		}
		rec, err := r.readRecord(id)
		if err != nil {
			if errors.Is(err, ErrNotFound) {
				r.removeUnfinished(id)
			}
			continue
		}
		st, err := r.readState(id)
		if err != nil {
			continue
		}
		live := st.Status == StatusRunning || st.Status == StatusPaused || st.Status == StatusRestarting
		orphaned := live && !st.Owner.Alive()
		creator := creatorOf(rec, st)
		abandoned := rec.Spec.DieWithCreator && creator.PID > 0 && !creator.Alive() && (!live || !st.Owner.Alive())
		if !orphaned && !abandoned {
			continue
		}
		r.repairContainer(ctx, id, abandoned)
	}
	return nil
}

// repairContainer reconciles container id and, if abandoned, removes it.
func (r *Runtime) repairContainer(ctx context.Context, id string, abandoned bool) {
	lk, err := r.lockContainer(id)
	if err != nil {
		return
	}
	defer lk.Unlock()
	st, err := r.reconcileLocked(ctx, id)
	if err != nil || !abandoned {
		return
	}
	switch st.Status {
	case StatusRunning, StatusPaused, StatusRestarting:
		return // a live owner runs it again; it watches the creator
	}
	if rec, err := r.readRecord(id); err == nil {
		_ = r.removeLocked(ctx, rec)
	}
}

// removeUnfinished removes the directory of a container whose Create
// crashed before writing container.json. Create holds the store lock
// while the directory lacks it, so under that lock a directory without
// the record is a leftover.
func (r *Runtime) removeUnfinished(id string) {
	unlock, err := r.store.Lock()
	if err != nil {
		return
	}
	defer unlock()
	dir := r.containerDir(id)
	if _, err := os.Stat(filepath.Join(dir, "container.json")); !errors.Is(err, fs.ErrNotExist) {
		return
	}
	if _, err := os.Stat(dir); err != nil {
		return
	}
	gone := r.store.TempName("rmctr")
	if os.Rename(dir, gone) == nil {
		_ = store.RemoveAll(gone)
	}
	_ = os.RemoveAll(r.store.ContainerRunDir(id))
}
