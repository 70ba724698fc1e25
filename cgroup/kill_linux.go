package cgroup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

func (m *Manager) freeze(ctx context.Context) error {
	if m.mode == Unified {
		return m.freezeV2(ctx)
	}
	return m.freezeV1(ctx)
}

func (m *Manager) thaw(ctx context.Context) error {
	if m.mode == Unified {
		return m.thawV2(ctx)
	}
	return m.thawV1()
}

func (m *Manager) frozen() (bool, error) {
	if m.mode == Unified {
		return m.frozenV2()
	}
	return m.frozenV1()
}

func (m *Manager) stats() (*Stats, error) {
	if m.mode == Unified {
		return m.statsV2()
	}
	return m.statsV1()
}

func (m *Manager) oomKillCount() (uint64, error) {
	if m.mode == Unified {
		return m.oomKillCountV2()
	}
	return m.oomKillCountV1()
}

// canFreeze reports whether the cgroup has a freezer.
func (m *Manager) canFreeze() bool {
	if m.mode == Unified {
		return fileExists(filepath.Join(m.hiers[0].dir, "cgroup.freeze"))
	}
	h := m.hier("freezer")
	return h != nil && fileExists(filepath.Join(h.dir, "freezer.state"))
}

func (m *Manager) kill(ctx context.Context) error {
	if !m.exists() {
		return nil
	}
	if m.mode == Unified && fileExists(filepath.Join(m.hiers[0].dir, "cgroup.kill")) {
		if err := m.writeFile(m.hiers[0].dir, "cgroup.kill", "1"); err != nil {
			if !m.exists() {
				return nil
			}
			return err
		}
		return m.waitEmpty(ctx)
	}
	// Freeze first so that nothing forks between listing and signalling;
	// SIGKILL takes effect on thaw (v1) or at once (v2).
	frozen := false
	if m.canFreeze() {
		if err := m.freeze(ctx); err == nil {
			frozen = true
		} else if ctx.Err() != nil {
			return fmt.Errorf("cgroup %s: kill: %w", m.path, err)
		}
	}
	dir := m.procsHier().dir
	for {
		pids, err := procsIn(dir)
		if err != nil {
			return fmt.Errorf("cgroup %s: kill: %w", m.path, err)
		}
		if len(pids) > 0 {
			if err := m.signalAll(dir, pids); err != nil {
				if frozen {
					_ = m.thaw(context.WithoutCancel(ctx))
				}
				return err
			}
		}
		if frozen {
			if err := m.thaw(ctx); err != nil && m.exists() {
				return fmt.Errorf("cgroup %s: kill: %w", m.path, err)
			}
			frozen = false
		}
		if len(pids) == 0 {
			return nil
		}
		// Wait a little for the dead to leave, then look again (a
		// process that was joining while we listed gets its turn).
		wctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		err = m.waitEmpty(wctx)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("cgroup %s: kill: %w", m.path, ctx.Err())
		}
	}
}

// signalAll sends SIGKILL to the processes pids listed in dir. Each is
// pinned with a pidfd, then dir is read again: a PID still listed after
// its pidfd was opened is the same process, so a PID that was reused
// meanwhile by a process elsewhere is never signalled.
func (m *Manager) signalAll(dir string, pids []int) error {
	self := os.Getpid()
	fds := make(map[int]int, len(pids)) // pid -> pidfd, -1 where pidfds are unsupported
	defer func() {
		for _, fd := range fds {
			if fd >= 0 {
				unix.Close(fd)
			}
		}
	}()
	for _, pid := range pids {
		if pid == self {
			return errConflictf("cgroup %s: refusing to kill the calling process %d, which is in the cgroup", m.path, pid)
		}
		fd, err := unix.PidfdOpen(pid, 0)
		switch {
		case err == nil:
			fds[pid] = fd
		case errors.Is(err, unix.ESRCH):
		case errors.Is(err, unix.ENOSYS):
			fds[pid] = -1
		default:
			return fmt.Errorf("cgroup %s: pidfd_open %d: %w", m.path, pid, err)
		}
	}
	still, err := procsIn(dir)
	if err != nil {
		return fmt.Errorf("cgroup %s: kill: %w", m.path, err)
	}
	for _, pid := range still {
		fd, ok := fds[pid]
		if !ok {
			continue // joined after the first listing: the next round gets it
		}
		if fd >= 0 {
			err = unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
		} else {
			err = unix.Kill(pid, unix.SIGKILL)
		}
		if err != nil && !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("cgroup %s: kill process %d: %w", m.path, pid, err)
		}
	}
	return nil
}

// waitEmpty waits until no process is left in the cgroup or ctx ends.
func (m *Manager) waitEmpty(ctx context.Context) error {
	if m.mode == Unified {
		err := m.waitEvent(ctx, "populated", 0)
		if err != nil && !m.exists() {
			return nil
		}
		return err
	}
	dir := m.procsHier().dir
	delay := 100 * time.Microsecond
	for {
		pids, err := procsIn(dir)
		if err != nil {
			return err
		}
		if len(pids) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cgroup %s: %d processes left: %w", m.path, len(pids), ctx.Err())
		case <-time.After(delay):
		}
		delay = min(2*delay, 10*time.Millisecond)
	}
}
