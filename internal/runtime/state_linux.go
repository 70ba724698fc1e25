package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-run/berth/internal/errdefs"
)

const stateFile = "state.json"

// atomicWrite writes a file through a temporary file and a rename (no
// fsync: the state lives on a tmpfs run dir and is rebuilt from reality).
func atomicWrite(path string, data []byte) error {
	tmp := fmt.Sprintf("%s.tmp-%d", path, os.Getpid())
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

func writeState(s *State) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	return atomicWrite(filepath.Join(s.StateDir, stateFile), b)
}

func load(stateDir string) (*State, error) {
	b, err := os.ReadFile(filepath.Join(stateDir, stateFile))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, errdefs.New(errdefs.ErrNotFound, fmt.Sprintf("container %q does not exist", filepath.Base(stateDir)))
		}
		return nil, err
	}
	s := &State{}
	if err := json.Unmarshal(b, s); err != nil {
		return nil, errdefs.Wrap(errdefs.ErrCorrupt, "state of "+filepath.Base(stateDir), err)
	}
	s.StateDir = stateDir
	s.Status = specs.ContainerState(deriveStatus(s))
	return s, nil
}

// deriveStatus works out the status from the running system: the init is
// alive (same pid, same start time, not a zombie), the start socket exists
// (created) or not (running), its cgroup is frozen (paused).
func deriveStatus(s *State) Status {
	if !s.alive() {
		return StatusStopped
	}
	if _, err := os.Lstat(filepath.Join(s.StateDir, startSockFile)); err == nil {
		return StatusCreated
	}
	if frozen(s.Pid) {
		return StatusPaused
	}
	return StatusRunning
}

// alive reports whether the recorded init still runs.
func (s *State) alive() bool {
	if s.Pid <= 0 {
		return false
	}
	st, state, err := readStat(s.Pid)
	if err != nil || st != s.StartTime {
		return false
	}
	return state != 'Z' && state != 'X'
}

// readStat returns the start time (field 22) and state (field 3) of a
// process from /proc/PID/stat.
func readStat(pid int) (uint64, byte, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, err
	}
	// The command (field 2) is in parentheses and may contain anything.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 || i+2 >= len(b) {
		return 0, 0, errors.New("bad stat")
	}
	fields := strings.Fields(string(b[i+2:]))
	if len(fields) < 20 {
		return 0, 0, errors.New("bad stat")
	}
	// fields[0] is field 3 (state); field 22 is fields[19].
	st, err := strconv.ParseUint(fields[19], 10, 64)
	return st, fields[0][0], err
}

func processStartTime(pid int) (uint64, error) {
	st, _, err := readStat(pid)
	return st, err
}

// frozen reports whether the process's freezer cgroup (v1) or its
// unified cgroup (v2) is frozen.
func frozen(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		switch {
		case parts[1] == "freezer" || strings.Contains(","+parts[1]+",", ",freezer,"):
			st, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/freezer", parts[2], "freezer.state"))
			if err == nil && strings.TrimSpace(string(st)) != "THAWED" {
				return true
			}
		case parts[0] == "0" && parts[1] == "":
			for _, root := range []string{"/sys/fs/cgroup", "/sys/fs/cgroup/unified"} {
				st, err := os.ReadFile(filepath.Join(root, parts[2], "cgroup.freeze"))
				if err == nil {
					if strings.TrimSpace(string(st)) == "1" {
						return true
					}
					break
				}
			}
		}
	}
	return false
}

// runPoststart runs the poststart hooks in the runtime namespace. A
// failure is logged; the container goes on (runtime-spec).
func runPoststart(s *State) {
	if s.Config == nil || s.Config.Hooks == nil || len(s.Config.Hooks.Poststart) == 0 {
		return
	}
	st := s.State
	st.Status = specs.ContainerState(StatusRunning)
	if err := runHooksWarn(s.Config.Hooks.Poststart, "poststart", &st); err != nil {
		log.Printf("berth: container %s: warning: %v", s.ID, err)
	}
}

func start(ctx context.Context, s *State) error {
	switch deriveStatus(s) {
	case StatusCreated:
	case StatusStopped:
		return errdefs.New(errdefs.ErrNotRunning, fmt.Sprintf("container %q is stopped", s.ID))
	default:
		return errdefs.New(errdefs.ErrConflict, fmt.Sprintf("container %q was already started", s.ID))
	}
	if err := releaseStart(s.StateDir); err != nil {
		return err
	}
	runPoststart(s)
	return nil
}

// pidfd opens a pidfd for the state's init, checking that the pid still
// names it; the pidfd then stays valid across pid reuse.
func (s *State) pidfd() (int, error) {
	fd, err := unix.PidfdOpen(s.Pid, 0)
	if err != nil {
		if errors.Is(err, unix.ESRCH) {
			return -1, errdefs.New(errdefs.ErrNotRunning, fmt.Sprintf("container %q is not running", s.ID))
		}
		return -1, fmt.Errorf("pidfd_open: %w", err)
	}
	if !s.alive() {
		unix.Close(fd)
		return -1, errdefs.New(errdefs.ErrNotRunning, fmt.Sprintf("container %q is not running", s.ID))
	}
	return fd, nil
}

func kill(s *State, sig syscall.Signal, all bool) error {
	fd, err := s.pidfd()
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	// The container's other processes are listed before the init is
	// signalled (its death may end them and free their pids).
	var others []int
	if all {
		for _, pid := range cgroupProcs(s.Pid) {
			if pid != s.Pid {
				others = append(others, pid)
			}
		}
	}
	if err := unix.PidfdSendSignal(fd, sig, nil, 0); err != nil {
		if errors.Is(err, unix.ESRCH) {
			return errdefs.New(errdefs.ErrNotRunning, fmt.Sprintf("container %q is not running", s.ID))
		}
		return fmt.Errorf("signal %d: %w", sig, err)
	}
	for _, pid := range others {
		_ = unix.Kill(pid, sig)
	}
	return nil
}

// cgroupProcs lists the processes in the init's cgroup (pids hierarchy,
// else freezer, else unified).
func cgroupProcs(pid int) []int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		return nil
	}
	var dirs []string
	for _, line := range strings.Split(string(b), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		switch {
		case parts[1] == "pids":
			dirs = append([]string{filepath.Join("/sys/fs/cgroup/pids", parts[2])}, dirs...)
		case parts[1] == "freezer":
			dirs = append(dirs, filepath.Join("/sys/fs/cgroup/freezer", parts[2]))
		case parts[1] == "" && parts[0] == "0":
			dirs = append(dirs, filepath.Join("/sys/fs/cgroup", parts[2]), filepath.Join("/sys/fs/cgroup/unified", parts[2]))
		}
	}
	for _, d := range dirs {
		if d == "/sys/fs/cgroup/pids" || d == "/sys/fs/cgroup/freezer" || d == "/sys/fs/cgroup" || d == "/sys/fs/cgroup/unified" {
			continue // the root cgroup: not the container's own
		}
		data, err := os.ReadFile(filepath.Join(d, "cgroup.procs"))
		if err != nil {
			continue
		}
		var pids []int
		for _, f := range strings.Fields(string(data)) {
			if p, err := strconv.Atoi(f); err == nil {
				pids = append(pids, p)
			}
		}
		return pids
	}
	return nil
}

// waitGone waits until the process behind pidfd has exited.
func waitGone(ctx context.Context, fd int) error {
	for {
		timeout := -1
		if dl, ok := ctx.Deadline(); ok {
			timeout = int(max(0, timeUntilMs(dl)))
		}
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, pollSlice(timeout))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if n > 0 {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if timeout == 0 {
			return context.DeadlineExceeded
		}
	}
}

// pollSlice bounds one poll so a cancelled ctx without deadline is seen.
func pollSlice(timeout int) int {
	if timeout < 0 || timeout > 1000 {
		return 1000
	}
	return timeout
}

// remove deletes a container given its state: see Delete.
func remove(ctx context.Context, s *State, force bool, cgroups CgroupFactory, reap func()) error {
	status := deriveStatus(s)
	switch status {
	case StatusCreated, StatusRunning, StatusPaused:
		if !force {
			return errdefs.New(errdefs.ErrConflict, fmt.Sprintf("container %q is %s: stop it or force the deletion", s.ID, status))
		}
	}
	if status != StatusStopped {
		if fd, err := s.pidfd(); err == nil {
			if status == StatusPaused {
				thaw(s.Pid)
			}
			for _, pid := range cgroupProcs(s.Pid) {
				if pid != s.Pid {
					_ = unix.Kill(pid, unix.SIGKILL)
				}
			}
			_ = unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
			err = waitGone(ctx, fd)
			unix.Close(fd)
			if err != nil {
				return fmt.Errorf("wait for container %q to exit: %w", s.ID, err)
			}
		}
	}
	if reap != nil {
		reap()
	}
	if s.CgroupPath != "" {
		cg, err := stateCgroups(cgroups, s)(s.CgroupPath)
		if err == nil && cg != nil {
			err = cg.Delete()
		}
		if err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			return fmt.Errorf("remove cgroup %s: %w", s.CgroupPath, err)
		}
	}
	if s.Config != nil && s.Config.Hooks != nil && len(s.Config.Hooks.Poststop) > 0 {
		st := s.State
		st.Status = specs.ContainerState(StatusStopped)
		if err := runHooksWarn(s.Config.Hooks.Poststop, "poststop", &st); err != nil {
			// The spec: log a warning, the deletion goes on.
			log.Printf("berth: container %s: warning: %v", s.ID, err)
		}
	}
	if err := os.RemoveAll(s.StateDir); err != nil {
		return fmt.Errorf("remove state: %w", err)
	}
	return nil
}

// thaw thaws the init's freezer cgroup so SIGKILL can be delivered.
func thaw(pid int) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(b), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) == 3 && parts[1] == "freezer" {
			_ = os.WriteFile(filepath.Join("/sys/fs/cgroup/freezer", parts[2], "freezer.state"), []byte("THAWED"), 0)
		}
		if len(parts) == 3 && parts[0] == "0" && parts[1] == "" {
			_ = os.WriteFile(filepath.Join("/sys/fs/cgroup", parts[2], "cgroup.freeze"), []byte("0"), 0)
		}
	}
}

func (c *Container) kill(sig syscall.Signal) error {
	if err := c.proc.Signal(sig); err != nil {
		if errors.Is(err, os.ErrProcessDone) {
			return errdefs.New(errdefs.ErrNotRunning, fmt.Sprintf("container %q is not running", c.state.ID))
		}
		return err
	}
	return nil
}

func (c *Container) delete(ctx context.Context, force bool) error {
	c.mu.Lock()
	if c.sys.sock != nil {
		c.sys.sock.close()
		c.sys.sock = nil
	}
	c.mu.Unlock()
	cg := c.cg
	factory := func(string) (CgroupManager, error) { return cg, nil }
	return remove(ctx, c.state, force, factory, c.reapQuietly)
}
