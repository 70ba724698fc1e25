package berth

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"github.com/berth-run/berth/internal/network"
	"github.com/berth-run/berth/internal/runtime"
)

// What Check observes of the host on Linux.

// mountsBelow lists the mount points at or below the given directories,
// as /proc/self/mountinfo shows them, sorted.
func mountsBelow(dirs ...string) ([]string, error) {
	var out []string
	for _, d := range dirs {
		ms, err := mountinfo.GetMounts(mountinfo.PrefixFilter(d))
		if err != nil {
			return nil, fmt.Errorf("read mounts: %w", err)
		}
		for _, m := range ms {
			out = append(out, m.Mountpoint)
		}
	}
	sort.Strings(out)
	return out, nil
}

// isMountPoint reports whether p is a mount point.
func isMountPoint(p string) bool {
	ok, err := mountinfo.Mounted(p)
	return err == nil && ok
}

// unmountDetach lazily unmounts p; not mounted is not an error.
func unmountDetach(p string) error {
	err := unix.Unmount(p, unix.MNT_DETACH)
	if err == nil || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
		return nil
	}
	return fmt.Errorf("unmount %s: %w", p, err)
}

// containerProcesses maps the 64-hex-digit names of the cgroups that
// processes are in to their pids: a container's processes are in a
// cgroup named after it, whatever its parent.
func containerProcesses() map[string][]int {
	out := map[string][]int{}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return out
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		f, err := os.Open(filepath.Join("/proc", e.Name(), "cgroup"))
		if err != nil {
			continue
		}
		seen := ""
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			// hierarchy-ID:controllers:path
			parts := strings.SplitN(sc.Text(), ":", 3)
			if len(parts) != 3 {
				continue
			}
			name := filepath.Base(parts[2])
			if len(name) == 64 && hexPrefix.MatchString(name) && name != seen {
				out[name] = append(out[name], pid)
				seen = name
				break
			}
		}
		f.Close()
	}
	return out
}

// sameMountNamespace reports whether process pid shares this process's
// mount namespace (so that its mounts are visible here).
func sameMountNamespace(pid int) bool {
	var self, other unix.Stat_t
	if unix.Stat("/proc/self/ns/mnt", &self) != nil || unix.Stat(fmt.Sprintf("/proc/%d/ns/mnt", pid), &other) != nil {
		return false
	}
	return self.Ino == other.Ino && self.Dev == other.Dev
}

// killPids sends SIGKILL to pids through pidfds.
func killPids(pids []int) error {
	var errs []error
	for _, pid := range pids {
		fd, err := unix.PidfdOpen(pid, 0)
		if err != nil {
			if !errors.Is(err, unix.ESRCH) {
				errs = append(errs, err)
			}
			continue
		}
		if err := unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, err)
		}
		unix.Close(fd)
	}
	return errors.Join(errs...)
}

// removeNetnsFile unmounts and removes a bind-mounted network namespace.
func removeNetnsFile(ctx context.Context, p string) error {
	if _, err := os.Lstat(p); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err := network.RemoveNetns(ctx, p); err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// deleteRuntimeState kills and deletes what the runtime keeps in the
// state directory dir, then removes it.
func deleteRuntimeState(ctx context.Context, dir string) error {
	if s, err := runtime.Load(dir); err == nil {
		if err := runtime.Delete(ctx, s, true, nil); err != nil {
			return err
		}
	}
	if err := os.RemoveAll(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
