package berth

import (
	"context"
	"fmt"
	"slices"

	"github.com/berth-run/berth/cgroup"
	"github.com/berth-run/berth/internal/errdefs"
	"github.com/berth-run/berth/internal/proc"
	"github.com/berth-run/berth/internal/store"
)

// liveCgroup returns the cgroup of the running container whose state is
// st, checked to hold its init: a cgroup path relative to the caller's
// own cgroup names another cgroup in a process that sits elsewhere, and
// berth must never act on that one.
func (r *Runtime) liveCgroup(rec *containerRecord, st *containerState) (*cgroup.Manager, error) {
	cg, err := r.containerCgroup(rec)
	if err != nil {
		return nil, fmt.Errorf("container %s: cgroup: %w", rec.Name, err)
	}
	procs, err := cg.Procs()
	if err == nil && slices.Contains(procs, st.Init.PID) {
		return cg, nil
	}
	return nil, errdefs.New(errdefs.ErrNotSupported, fmt.Sprintf("container %s: its cgroup is not reachable from this process (it was created from another cgroup; use the same --cgroup-parent)", rec.Name))
}

// notRunning is docker's error for an operation on a stopped container.
func notRunning(rec *containerRecord) error {
	return errdefs.New(errdefs.ErrNotRunning, fmt.Sprintf("container %s is not running", rec.Name))
}

func (c *Container) pause(ctx context.Context) error {
	return c.setPaused(ctx, true)
}

func (c *Container) unpause(ctx context.Context) error {
	return c.setPaused(ctx, false)
}

// lockedState takes the container's lock and reads its state (reconciled)
// and record; the caller unlocks.
func (r *Runtime) lockedState(ctx context.Context, id string) (*store.FileLock, *containerState, *containerRecord, error) {
	lk, err := r.lockContainer(id)
	if err != nil {
		return nil, nil, nil, err
	}
	st, err := r.reconcileLocked(ctx, id)
	if err != nil {
		lk.Unlock()
		return nil, nil, nil, err
	}
	rec, err := r.readRecord(id)
	if err != nil {
		lk.Unlock()
		return nil, nil, nil, err
	}
	return lk, st, rec, nil
}

// setPaused freezes or thaws the container's cgroup and records the
// status, under the container lock.
func (c *Container) setPaused(ctx context.Context, pause bool) error {
	lk, st, rec, err := c.rt.lockedState(ctx, c.rec.ID)
	if err != nil {
		return err
	}
	defer lk.Unlock()
	return c.setPausedLocked(ctx, rec, st, pause)
}

// setPausedLocked is setPaused for a caller that holds the container
// lock and has read its record and state.
func (c *Container) setPausedLocked(ctx context.Context, rec *containerRecord, st *containerState, pause bool) error {
	r := c.rt
	switch {
	case st.Status == StatusRestarting:
		return errdefs.New(errdefs.ErrConflict, fmt.Sprintf("container %s is restarting, wait until the container is running", rec.Name))
	case pause && st.Status == StatusPaused:
		return errdefs.New(errdefs.ErrConflict, fmt.Sprintf("container %s is already paused", rec.Name))
	case !pause && st.Status == StatusRunning:
		return errdefs.New(errdefs.ErrConflict, fmt.Sprintf("container %s is not paused", rec.Name))
	case st.Status != StatusRunning && st.Status != StatusPaused:
		return notRunning(rec)
	}
	cg, err := r.liveCgroup(rec, st)
	if err != nil {
		return err
	}
	action := "pause"
	if pause {
		if err := cg.Freeze(ctx); err != nil {
			return fmt.Errorf("pause container %s: %w", rec.Name, err)
		}
		st.Status = StatusPaused
	} else {
		action = "unpause"
		if err := cg.Thaw(ctx); err != nil {
			return fmt.Errorf("unpause container %s: %w", rec.Name, err)
		}
		st.Status = StatusRunning
		st.PausedBy = proc.ID{}
	}
	if err := r.writeState(rec.ID, st); err != nil {
		// Leave the cgroup as the recorded status says.
		if pause {
			_ = cg.Thaw(context.WithoutCancel(ctx))
		} else {
			_ = cg.Freeze(context.WithoutCancel(ctx))
		}
		return err
	}
	r.event(ctx, "container", action, rec.ID, map[string]string{"name": rec.Name, "image": rec.ImageName})
	return nil
}
