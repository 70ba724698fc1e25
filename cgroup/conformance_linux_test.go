package cgroup

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/berth-run/berth/internal/errdefs"
	"github.com/berth-run/berth/internal/testutil"
)

// runConformance is the behaviour every Manager must show, whatever the
// cgroup version and whether the kernel is real or the fake: newManager
// returns a Manager for a fresh, not yet created cgroup and registers a
// cleanup that removes it and everything above it that the test made,
// asserting the directories are gone.
func runConformance(t *testing.T, newManager func(t *testing.T) *Manager) {
	t.Run("CreateDelete", func(t *testing.T) {
		m := newManager(t)
		assert.False(t, m.Exists())
		require.NoError(t, m.Create(nil))
		assert.True(t, m.Exists())
		for _, h := range m.hiers {
			assert.DirExists(t, h.dir)
		}
		require.NoError(t, m.Create(nil), "Create on an existing cgroup")
		require.NoError(t, m.Delete())
		for _, h := range m.hiers {
			assert.NoDirExists(t, h.dir)
		}
		assert.False(t, m.Exists())
		require.NoError(t, m.Delete(), "Delete is idempotent")
	})

	t.Run("Missing", func(t *testing.T) {
		m := newManager(t)
		ctx := context.Background()
		assert.NoError(t, m.Delete())
		assert.NoError(t, m.Kill(ctx))
		assert.ErrorIs(t, m.Update(&specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptr(int64(5))}}), errdefs.ErrNotFound)
		assert.ErrorIs(t, m.Add(os.Getpid()), errdefs.ErrNotFound)
		_, err := m.Procs()
		assert.ErrorIs(t, err, errdefs.ErrNotFound)
		assert.ErrorIs(t, m.Freeze(ctx), errdefs.ErrNotFound)
		_, err = m.Stats()
		assert.ErrorIs(t, err, errdefs.ErrNotFound)
		assert.False(t, m.Exists())
	})

	t.Run("Limits", func(t *testing.T) {
		m := newManager(t)
		if missing := missingControllers(m, "memory", "cpu", "cpuset", "pids"); len(missing) > 0 {
			t.Logf("limits not checked: %s offers no %v (the other backends check them)", m.hiers[0].mount, missing)
			require.NoError(t, m.Create(nil))
			return
		}
		res := &specs.LinuxResources{
			Memory: &specs.LinuxMemory{Limit: ptr(int64(64 << 20)), Reservation: ptr(int64(32 << 20))},
			CPU: &specs.LinuxCPU{Shares: ptr(uint64(512)), Quota: ptr(int64(50000)), Period: ptr(uint64(100000)),
				Cpus: "0", Mems: "0"},
			Pids: &specs.LinuxPids{Limit: ptr(int64(64))},
		}
		require.NoError(t, m.Create(res))
		want := map[[2]string]string{}
		if m.Mode() == Legacy {
			want = map[[2]string]string{
				{"memory", "memory.limit_in_bytes"}:      "67108864",
				{"memory", "memory.soft_limit_in_bytes"}: "33554432",
				{"cpu", "cpu.shares"}:                    "512",
				{"cpu", "cpu.cfs_quota_us"}:              "50000",
				{"cpu", "cpu.cfs_period_us"}:             "100000",
				{"cpuset", "cpuset.cpus"}:                "0",
				{"cpuset", "cpuset.mems"}:                "0",
				{"pids", "pids.max"}:                     "64",
			}
		} else {
			want = map[[2]string]string{
				{"", "memory.max"}:  "67108864",
				{"", "memory.low"}:  "33554432",
				{"", "cpu.weight"}:  "20", // 1 + (512-2)*9999/262142
				{"", "cpu.max"}:     "50000 100000",
				{"", "cpuset.cpus"}: "0",
				{"", "cpuset.mems"}: "0",
				{"", "pids.max"}:    "64",
			}
		}
		checkFiles(t, m, want)

		up := &specs.LinuxResources{
			Memory: &specs.LinuxMemory{Limit: ptr(int64(128 << 20))},
			CPU:    &specs.LinuxCPU{Quota: ptr(int64(-1))},
			Pids:   &specs.LinuxPids{Limit: ptr(int64(32))},
		}
		require.NoError(t, m.Update(up))
		if m.Mode() == Legacy {
			want[[2]string{"memory", "memory.limit_in_bytes"}] = "134217728"
			want[[2]string{"cpu", "cpu.cfs_quota_us"}] = "-1"
			want[[2]string{"pids", "pids.max"}] = "32"
		} else {
			want[[2]string{"", "memory.max"}] = "134217728"
			want[[2]string{"", "cpu.max"}] = "max 100000"
			want[[2]string{"", "pids.max"}] = "32"
		}
		checkFiles(t, m, want)

		// Bad input: refused as a whole, nothing written.
		for _, bad := range badResources() {
			err := m.Update(bad)
			assert.ErrorIs(t, err, errdefs.ErrInvalid, "%+v", bad)
		}
		checkFiles(t, m, want)
	})

	t.Run("Process", func(t *testing.T) {
		m := newManager(t)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		require.NoError(t, m.Create(nil))
		c := startChild(t, "spin")
		require.NoError(t, m.Add(c.pid()))
		c.release(t)
		procs, err := m.Procs()
		require.NoError(t, err)
		assert.Equal(t, []int{c.pid()}, procs)
		if isReal(m) {
			assertInCgroup(t, m, c.pid())
		}
		waitFor(t, "the child to use CPU", func() bool { return cpuTicks(t, c.pid()) > 0 })

		st, err := m.Stats()
		require.NoError(t, err)
		if isReal(m) {
			waitFor(t, "cgroup CPU usage", func() bool {
				st, err := m.Stats()
				return err == nil && st.CPU.UsageNanos > 0
			})
			if fileExists(filepath.Join(m.Path("pids"), "pids.current")) {
				assert.GreaterOrEqual(t, st.Pids.Current, uint64(1))
			}
		}

		require.NoError(t, m.Freeze(ctx))
		frozen, err := m.Frozen()
		require.NoError(t, err)
		assert.True(t, frozen)
		before := cpuTicks(t, c.pid())
		time.Sleep(200 * time.Millisecond)
		assert.Equal(t, before, cpuTicks(t, c.pid()), "a frozen process must not run")

		require.NoError(t, m.Thaw(ctx))
		frozen, err = m.Frozen()
		require.NoError(t, err)
		assert.False(t, frozen)
		waitFor(t, "the thawed child to run again", func() bool { return cpuTicks(t, c.pid()) > before })

		require.NoError(t, m.Kill(ctx))
		ws := c.wait(t, 30*time.Second)
		assert.True(t, ws.Signaled() && ws.Signal() == syscall.SIGKILL, "child status %v", ws)
		procs, err = m.Procs()
		require.NoError(t, err)
		assert.Empty(t, procs)
		require.NoError(t, m.Delete())
		assert.False(t, m.Exists())
	})

	t.Run("KillFrozenNested", func(t *testing.T) {
		m := newManager(t)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		require.NoError(t, m.Create(nil))
		sub := subManager(m, "sub")
		require.NoError(t, sub.Create(nil))
		var kids []*child
		for i := 0; i < 3; i++ {
			c := startChild(t, "sleep")
			target := m
			if i == 2 {
				target = sub
			}
			require.NoError(t, target.Add(c.pid()))
			c.release(t)
			kids = append(kids, c)
		}
		procs, err := m.Procs()
		require.NoError(t, err)
		assert.Len(t, procs, 3, "Procs includes the nested cgroup")
		require.NoError(t, m.Freeze(ctx))
		require.NoError(t, m.Kill(ctx))
		for _, c := range kids {
			ws := c.wait(t, 30*time.Second)
			assert.True(t, ws.Signaled() && ws.Signal() == syscall.SIGKILL, "child status %v", ws)
		}
		require.NoError(t, m.Delete(), "Delete removes the nested cgroup first")
		for _, h := range sub.hiers {
			assert.NoDirExists(t, h.dir)
		}
	})

	t.Run("DeleteBusy", func(t *testing.T) {
		m := newManager(t)
		require.NoError(t, m.Create(nil))
		c := startChild(t, "sleep")
		require.NoError(t, m.Add(c.pid()))
		err := m.Delete()
		assert.ErrorIs(t, err, errdefs.ErrConflict)
		assert.ErrorIs(t, err, unix.EBUSY)
		assert.True(t, m.Exists())
		require.NoError(t, m.Kill(context.Background()))
		c.wait(t, 30*time.Second)
		require.NoError(t, m.Delete())
		assert.False(t, m.Exists())
	})
}

// checkFiles reads back files of m: key {controller, file}.
func checkFiles(t *testing.T, m *Manager, want map[[2]string]string) {
	t.Helper()
	for k, v := range want {
		got, err := readString(filepath.Join(m.Path(k[0]), k[1]))
		if assert.NoError(t, err) {
			assert.Equal(t, v, got, "%s", k[1])
		}
	}
}

// missingControllers lists those of cs a v2 Manager's hierarchy root does
// not offer (none on v1).
func missingControllers(m *Manager, cs ...string) []string {
	if m.Mode() == Legacy {
		return nil
	}
	avail := fieldSet(filepath.Join(m.hiers[0].mount, "cgroup.controllers"))
	var missing []string
	for _, c := range cs {
		if !avail[c] {
			missing = append(missing, c)
		}
	}
	return missing
}

// isReal reports whether m works on the kernel's cgroup file system.
func isReal(m *Manager) bool {
	_, ok := m.fs.(kernelFS)
	return ok
}

// assertInCgroup checks /proc/PID/cgroup against the Manager's dirs.
func assertInCgroup(t *testing.T, m *Manager, pid int) {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	require.NoError(t, err)
	own, err := parseProcCgroup(bytes.NewReader(b))
	require.NoError(t, err)
	for _, h := range m.hiers {
		key := ""
		if len(h.controllers) > 0 {
			key = h.controllers[0]
		}
		p, ok := own[key]
		if !assert.True(t, ok, "no %q line", key) {
			continue
		}
		rel, err := filepath.Rel(h.mount, h.dir)
		require.NoError(t, err)
		assert.Equal(t, "/"+rel, p, "process %d in hierarchy %v", pid, h.controllers)
	}
}

// subManager is a Manager for the cgroup name below m.
func subManager(m *Manager, name string) *Manager {
	s := &Manager{path: m.path + "/" + name, mode: m.mode, fs: m.fs}
	for _, h := range m.hiers {
		h.base = h.dir
		h.dir = filepath.Join(h.dir, name)
		s.hiers = append(s.hiers, h)
	}
	return s
}

// waitFor polls cond for up to 30 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// cleanupCgroup removes the test's cgroup tree top (a Manager for the
// unique parent) at the end of the test and asserts it is gone.
func cleanupCgroup(t *testing.T, top *Manager) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := top.Kill(ctx); err != nil {
			t.Errorf("cleanup: kill %s: %v", top.path, err)
		}
		if err := top.Delete(); err != nil {
			t.Errorf("cleanup: delete %s: %v", top.path, err)
		}
		for _, h := range top.hiers {
			if _, err := os.Stat(h.dir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("cleanup: %s is still there", h.dir)
			}
		}
	})
}

// managerAt returns a newManager for runConformance: cgroups named
// "<unique>/c" (relative, or absolute when abs) made with opts.
func managerAt(abs bool, opts ...func() []Option) func(t *testing.T) *Manager {
	return func(t *testing.T) *Manager {
		t.Helper()
		var o []Option
		for _, f := range opts {
			o = append(o, f()...)
		}
		name := uniqueName(t)
		if abs {
			name = "/" + name
		}
		top, err := New(name, o...)
		require.NoError(t, err)
		cleanupCgroup(t, top)
		m, err := New(name+"/c", o...)
		require.NoError(t, err)
		return m
	}
}

func TestConformanceV1(t *testing.T) {
	testutil.RequiresRoot(t)
	if DetectMode() != Legacy {
		t.Skip("this machine has no cgroup v1 hierarchy (the v2 suites run instead)")
	}
	runConformance(t, managerAt(false))
}

// TestConformanceV2 runs the suite for the v2 Manager against:
//   - the fake v2 kernel, always: it checks the format of every value
//     written and emulates freezing and killing with signals;
//   - the machine's cgroup2 hierarchy when /sys/fs/cgroup is cgroup2, with
//     absolute paths (the test process's own cgroup has processes, so no
//     controller could be enabled below it);
//   - otherwise the cgroup2 tree of a hybrid machine
//     (/sys/fs/cgroup/unified): real v2 freezing, killing and process
//     moves, with no controllers to limit.
func TestConformanceV2(t *testing.T) {
	t.Run("Fake", func(t *testing.T) {
		runConformance(t, func(t *testing.T) *Manager { return fakeManager(t, newFakeV2(t)) })
	})
	const unified = "/sys/fs/cgroup/unified"
	switch {
	case DetectMode() == Unified:
		t.Run("Real", func(t *testing.T) {
			testutil.RequiresRoot(t)
			runConformance(t, managerAt(true))
		})
	case fileExists(filepath.Join(unified, "cgroup.controllers")):
		t.Run("Hybrid", func(t *testing.T) {
			testutil.RequiresRoot(t)
			runConformance(t, managerAt(false, func() []Option { return []Option{WithRoot(unified)} }))
		})
	default:
		t.Log("no real cgroup2 hierarchy on this machine: only the fake kernel was tested")
	}
}

// fakeManager returns a Manager for a fresh cgroup on the fake kernel f.
func fakeManager(t *testing.T, f *fakeV2) *Manager {
	return managerAt(false, func() []Option { return []Option{WithRoot(f.root), withFS(f)} })(t)
}
