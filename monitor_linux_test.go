package berth_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/berth-run/berth"
	"github.com/berth-run/berth/internal/proc"
	"github.com/berth-run/berth/internal/shim"
	"github.com/berth-run/berth/internal/testutil"
)

// detachedRuntime is a scratch store with busybox imported; at the end of
// the test its containers are removed and its monitor is made to exit.
func detachedRuntime(t *testing.T) *berth.Runtime {
	t.Helper()
	testutil.RequiresRoot(t)
	rt := newRuntime(t)
	importBusybox(t, rt, "busybox")
	t.Cleanup(func() { cleanupDetached(t, rt) })
	return rt
}

func cleanupDetached(t *testing.T, rt *berth.Runtime) {
	ctx := context.Background()
	cs, _ := rt.Containers(ctx)
	for _, c := range cs {
		if err := c.Remove(ctx, berth.RemoveForce()); err != nil && !errors.Is(err, berth.ErrNotFound) {
			t.Errorf("cleanup: remove %s: %v", c.Name(), err)
		}
	}
	// The monitor lets go of removed containers as their exits are
	// recorded; then it exits on request.
	deadline := time.Now().Add(time.Minute)
	for {
		err := berth.ShutdownMonitor(ctx, rt)
		if err == nil {
			return
		}
		if !errors.Is(err, berth.ErrConflict) || time.Now().After(deadline) {
			t.Errorf("cleanup: stop monitor: %v", err)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func busybox(cmd ...string) berth.Spec {
	return berth.Spec{Image: "busybox", Network: "none", Cmd: cmd}
}

func runDetached(t *testing.T, rt *berth.Runtime, spec berth.Spec) *berth.Container {
	t.Helper()
	c, err := rt.Run(context.Background(), spec, berth.WithDetach())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// eventually polls cond until it holds. The deadline only guards against
// a hang; no test asserts how long anything takes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func stateOf(t *testing.T, c *berth.Container) berth.State {
	t.Helper()
	st, err := c.State(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// startWorker runs a worker of kind with spec and returns it with the ID
// it printed.
func startWorker(t *testing.T, rt *berth.Runtime, kind string, spec berth.Spec) (*exec.Cmd, string) {
	t.Helper()
	b, _ := json.Marshal(spec)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "BERTH_TEST_WORKER="+kind, "BERTH_TEST_ROOT="+rt.Root(),
		"BERTH_TEST_RUNROOT="+rt.RunRoot(), "BERTH_TEST_SPEC="+string(b))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		_ = cmd.Wait()
		t.Fatalf("worker %s printed no ID: %v", kind, err)
	}
	return cmd, strings.TrimSpace(line)
}

// monitorPids lists the processes that are monitors of rt's store.
func monitorPids(t *testing.T, rt *berth.Runtime) []int {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && string(b) == "berth-monitor\x00"+rt.Root()+"\x00" {
			out = append(out, pid)
		}
	}
	return out
}

func TestDetachedContainerOutlivesItsCreator(t *testing.T) {
	rt := detachedRuntime(t)
	ctx := context.Background()
	worker, id := startWorker(t, rt, "detach", busybox("sleep", "1000"))
	if err := worker.Wait(); err != nil {
		t.Fatalf("worker: %v", err)
	}
	c, err := rt.Container(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	st := stateOf(t, c)
	if st.Status != berth.StatusRunning || !st.Running || st.Pid == 0 {
		t.Fatalf("after its creator exited the container is %+v, want running", st)
	}
	if !(proc.ID{PID: st.Pid}).Alive() {
		t.Fatalf("pid %d is not alive", st.Pid)
	}
	pid, ids, err := berth.MonitorStatus(ctx, rt)
	if err != nil || pid == 0 || len(ids) != 1 || ids[0] != id {
		t.Fatalf("monitor status: pid %d, %v, %v", pid, ids, err)
	}
	if pid == worker.Process.Pid {
		t.Fatal("the monitor is the worker")
	}
	// Stop from another process than the one that started it.
	d := time.Second
	if err := c.Stop(ctx, &d); err != nil {
		t.Fatal(err)
	}
	if st := stateOf(t, c); st.Status != berth.StatusExited || st.ExitCode != 143 && st.ExitCode != 137 {
		t.Fatalf("after stop: %+v", st)
	}
}

func TestStopPID1IgnoringSIGTERMEscalates(t *testing.T) {
	rt := detachedRuntime(t)
	ctx := context.Background()
	c := runDetached(t, rt, busybox("sh", "-c", `trap "" TERM; echo ready; sleep 1000`))
	eventually(t, "the trap to be set", func() bool { return logText(t, c) == "ready\n" })
	d := time.Second
	if err := c.Stop(ctx, &d); err != nil {
		t.Fatal(err)
	}
	st := stateOf(t, c)
	if st.Status != berth.StatusExited || st.ExitCode != 137 || st.Running {
		t.Fatalf("after stop: %+v, want exited with 137", st)
	}
	if code, err := c.Wait(ctx); err != nil || code != 137 {
		t.Fatalf("wait: %d, %v", code, err)
	}
}

// logText is the container's whole log, stdout and stderr interleaved.
func logText(t *testing.T, c *berth.Container) string {
	t.Helper()
	var sb strings.Builder
	err := c.LogEntries(context.Background(), berth.LogsOptions{}, func(e berth.LogEntry) error {
		sb.Write(e.Line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return sb.String()
}

func TestRestartOnFailureRestartsExactlyTwice(t *testing.T) {
	rt := detachedRuntime(t)
	ctx := context.Background()
	spec := busybox("sh", "-c", "echo run; exit 3")
	spec.RestartPolicy = berth.RestartPolicy{Name: berth.RestartOnFailure, MaximumRetryCount: 2}
	c := runDetached(t, rt, spec)
	code, err := c.Wait(ctx)
	if err != nil || code != 3 {
		t.Fatalf("wait: %d, %v", code, err)
	}
	st := stateOf(t, c)
	if st.Status != berth.StatusExited || st.RestartCount != 2 || st.ExitCode != 3 {
		t.Fatalf("final state %+v, want exited with 3 after 2 restarts", st)
	}
	if got := logText(t, c); got != "run\nrun\nrun\n" {
		t.Fatalf("log %q, want three runs", got)
	}
	// A user's start resets the count, as docker's.
	if err := c.Start(ctx, berth.WithDetach()); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if st := stateOf(t, c); st.RestartCount != 2 || strings.Count(logText(t, c), "run") != 6 {
		t.Fatalf("after a second start: %+v", st)
	}
}

func TestRestartAlwaysUntilStopped(t *testing.T) {
	rt := detachedRuntime(t)
	ctx := context.Background()
	spec := busybox("sh", "-c", "echo run")
	spec.RestartPolicy = berth.RestartPolicy{Name: berth.RestartAlways}
	c := runDetached(t, rt, spec)
	eventually(t, "three restarts", func() bool { return stateOf(t, c).RestartCount >= 3 })
	d := time.Second
	if err := c.Stop(ctx, &d); err != nil {
		t.Fatal(err)
	}
	st := stateOf(t, c)
	if st.Status != berth.StatusExited {
		t.Fatalf("after stop: %+v", st)
	}
	// Nothing is left to restart it: the monitor lets it go.
	eventually(t, "the monitor to let go", func() bool {
		_, ids, err := berth.MonitorStatus(ctx, rt)
		return err == nil && len(ids) == 0
	})
	if st2 := stateOf(t, c); st2.Status != berth.StatusExited || st2.RestartCount != st.RestartCount {
		t.Fatalf("restarted after stop: %+v then %+v", st, st2)
	}
}

func TestUnlessStoppedStaysStopped(t *testing.T) {
	rt := detachedRuntime(t)
	ctx := context.Background()
	spec := busybox("sleep", "1000")
	spec.RestartPolicy = berth.RestartPolicy{Name: berth.RestartUnlessStopped}
	c := runDetached(t, rt, spec)
	d := time.Second
	if err := c.Stop(ctx, &d); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the monitor to let go", func() bool {
		_, ids, err := berth.MonitorStatus(ctx, rt)
		return err == nil && len(ids) == 0
	})
	if st := stateOf(t, c); st.Status != berth.StatusExited || st.RestartCount != 0 {
		t.Fatalf("after stop: %+v", st)
	}
	// A kill by the user prevents the restart too.
	if err := c.Start(ctx, berth.WithDetach()); err != nil {
		t.Fatal(err)
	}
	if err := c.Kill(ctx, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if code, err := c.Wait(ctx); err != nil || code != 137 {
		t.Fatalf("wait: %d, %v", code, err)
	}
	if st := stateOf(t, c); st.Status != berth.StatusExited || st.RestartCount != 0 {
		t.Fatalf("after kill: %+v", st)
	}
}

// ownCgroupDirs are the directories of the calling process's cgroups.
func ownCgroupDirs(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		ctrl := strings.TrimPrefix(parts[1], "name=")
		if parts[1] == "" {
			out = append(out, filepath.Join("/sys/fs/cgroup", parts[2]))
			continue
		}
		for _, c := range strings.Split(ctrl, ",") {
			out = append(out, filepath.Join("/sys/fs/cgroup", c, parts[2]))
		}
	}
	return out
}

// assertGone checks that nothing of container c is left: no mount below
// its directory, no cgroup, no process.
func assertGone(t *testing.T, rt *berth.Runtime, id, cgPath string, pid int) {
	t.Helper()
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(mi), id) {
		t.Errorf("a mount of %s is left", id[:12])
	}
	for _, d := range ownCgroupDirs(t) {
		if _, err := os.Stat(filepath.Join(d, cgPath)); err == nil {
			t.Errorf("cgroup %s is left", filepath.Join(d, cgPath))
		}
	}
	if pid > 0 && syscall.Kill(pid, 0) == nil {
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil && !strings.Contains(string(b), ") Z") {
			t.Errorf("process %d is left", pid)
		}
	}
	if _, err := os.Stat(filepath.Join(rt.Root(), "containers", id)); err == nil {
		t.Errorf("directory of %s is left", id[:12])
	}
}

func TestMonitorKilledLeavesRightStateAndRmCleans(t *testing.T) {
	rt := detachedRuntime(t)
	ctx := context.Background()
	c1 := runDetached(t, rt, busybox("sleep", "1000"))
	spec := busybox("sleep", "1000")
	spec.RestartPolicy = berth.RestartPolicy{Name: berth.RestartAlways}
	c2 := runDetached(t, rt, spec)
	pid1, pid2 := stateOf(t, c1).Pid, stateOf(t, c2).Pid
	mpid, _, err := berth.MonitorStatus(ctx, rt)
	if err != nil || mpid == 0 {
		t.Fatalf("monitor: %d %v", mpid, err)
	}
	if err := syscall.Kill(mpid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the monitor to die", func() bool { return !(proc.ID{PID: mpid}).Alive() })
	for _, c := range []*berth.Container{c1, c2} {
		st := stateOf(t, c)
		if st.Status != berth.StatusExited || st.Running {
			t.Errorf("%s after the monitor's death: %+v, want exited", c.Name(), st)
		}
	}
	// A fresh Open sees the same.
	rt2, err := berth.Open(ctx, berth.WithRoot(rt.Root()), berth.WithRunRoot(rt.RunRoot()))
	if err != nil {
		t.Fatal(err)
	}
	defer rt2.Close()
	for i, c := range []*berth.Container{c1, c2} {
		c, err := rt2.Container(ctx, c.ID())
		if err != nil {
			t.Fatal(err)
		}
		cg := berth.ContainerCgroupPath(c)
		if err := c.Remove(ctx, berth.RemoveForce()); err != nil {
			t.Fatalf("rm -f: %v", err)
		}
		assertGone(t, rt, c.ID(), cg, []int{pid1, pid2}[i])
	}
	// The dead monitor's socket is stale: the next start replaces it.
	if _, err := os.Stat(shim.Socket(rt.RunRoot())); err != nil {
		t.Fatalf("no stale socket: %v", err)
	}
	c := runDetached(t, rt, busybox("true"))
	if code, err := c.Wait(ctx); err != nil || code != 0 {
		t.Fatalf("a start after the monitor's death: %d, %v", code, err)
	}
	if pid, _, err := berth.MonitorStatus(ctx, rt); err != nil || pid == mpid || pid == 0 {
		t.Fatalf("new monitor %d (old %d): %v", pid, mpid, err)
	}
}

func TestDieWithCreator(t *testing.T) {
	rt := detachedRuntime(t)
	ctx := context.Background()
	spec := busybox("sleep", "1000")
	spec.DieWithCreator = true
	worker, id := startWorker(t, rt, "die-with-creator", spec)
	c, err := rt.Container(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	st := stateOf(t, c)
	if !st.Running {
		t.Fatalf("container not running: %+v", st)
	}
	cg := berth.ContainerCgroupPath(c)
	if err := worker.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = worker.Wait()
	eventually(t, "the container to be removed", func() bool {
		_, err := rt.Container(ctx, id)
		return errors.Is(err, berth.ErrNotFound)
	})
	eventually(t, "its process to end", func() bool { return syscall.Kill(st.Pid, 0) != nil })
	assertGone(t, rt, id, cg, st.Pid)
}

func TestTwoProcessesShareOneMonitorThatExitsWhenIdle(t *testing.T) {
	rt := detachedRuntime(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	ids := make([]string, 2)
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w, id := startWorker(t, rt, "detach", busybox("sleep", "1000"))
			if err := w.Wait(); err != nil {
				t.Errorf("worker: %v", err)
			}
			ids[i] = id
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	pids := monitorPids(t, rt)
	if len(pids) != 1 {
		t.Fatalf("monitors of the store: %v, want one", pids)
	}
	mpid, watched, err := berth.MonitorStatus(ctx, rt)
	if err != nil || mpid != pids[0] || len(watched) != 2 {
		t.Fatalf("monitor %d watches %v (%v), want both of %v", mpid, watched, err, ids)
	}
	for _, id := range ids {
		c, err := rt.Container(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Remove(ctx, berth.RemoveForce()); err != nil {
			t.Fatal(err)
		}
	}
	// With nothing to watch, it exits by itself.
	eventually(t, "the idle monitor to exit", func() bool { return len(monitorPids(t, rt)) == 0 })
	if _, err := os.Stat(filepath.Join(rt.RunRoot(), "monitor.sock")); err == nil {
		t.Error("the monitor's socket is left")
	}
	// The next detached start brings a new one.
	c := runDetached(t, rt, busybox("true"))
	if _, err := c.Wait(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestOpenRepairsCrashedCreateAndDeadOwners(t *testing.T) {
	rt := detachedRuntime(t)
	ctx := context.Background()
	// A Create that crashed before container.json.
	half := filepath.Join(rt.Root(), "containers", strings.Repeat("ab", 32))
	if err := os.MkdirAll(filepath.Join(half, "upper"), 0o700); err != nil {
		t.Fatal(err)
	}
	// A container recorded as running for a process that is gone.
	c, err := rt.Create(ctx, busybox("true"))
	if err != nil {
		t.Fatal(err)
	}
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	statePath := filepath.Join(rt.Root(), "containers", c.ID(), "state.json")
	fake := fmt.Sprintf(`{"status":"running","init":{"pid":%d,"start":1},"owner":{"pid":%d,"start":1}}`, dead.Process.Pid, dead.Process.Pid)
	if err := os.WriteFile(statePath, []byte(fake), 0o600); err != nil {
		t.Fatal(err)
	}
	rt2, err := berth.Open(ctx, berth.WithRoot(rt.Root()), berth.WithRunRoot(rt.RunRoot()))
	if err != nil {
		t.Fatal(err)
	}
	defer rt2.Close()
	if _, err := os.Stat(half); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the crashed Create's directory is left: %v", err)
	}
	var raw struct {
		Status   string `json:"status"`
		ExitCode int    `json:"exitCode"`
	}
	b, err := os.ReadFile(statePath)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &raw); err != nil || raw.Status != "exited" || raw.ExitCode != 137 {
		t.Fatalf("state after Open: %s (%v)", b, err)
	}
}

func TestWithDetachRefusesStreams(t *testing.T) {
	rt := detachedRuntime(t)
	ctx := context.Background()
	c, err := rt.Create(ctx, busybox("true"))
	if err != nil {
		t.Fatal(err)
	}
	err = c.Start(ctx, berth.WithDetach(), berth.WithStdout(os.Stdout))
	if !errors.Is(err, berth.ErrInvalid) {
		t.Fatalf("start: %v, want ErrInvalid", err)
	}
	if st := stateOf(t, c); st.Status != berth.StatusCreated {
		t.Fatalf("state changed: %+v", st)
	}
}

// pss is a process's proportional set size in bytes.
func pss(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && f[0] == "Pss:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no Pss in smaps_rollup of %d", pid)
	return 0
}

// TestMonitorMemoryPerContainer holds the monitor to conmon's budget:
// at most 0.5 MiB of proportional set size per detached container, with
// 50 of them.
func TestMonitorMemoryPerContainer(t *testing.T) {
	rt := detachedRuntime(t)
	ctx := context.Background()
	const n = 50
	for i := 0; i < n; i++ {
		runDetached(t, rt, busybox("sleep", "1000"))
	}
	mpid, ids, err := berth.MonitorStatus(ctx, rt)
	if err != nil || len(ids) != n {
		t.Fatalf("monitor %d watches %d containers (%v)", mpid, len(ids), err)
	}
	// The monitor returns the memory of the burst of starts once it is
	// over; measure after that.
	time.Sleep(2 * time.Second)
	total := pss(t, mpid)
	per := float64(total) / n / (1 << 20)
	t.Logf("monitor PSS with %d containers: %.2f MiB, %.3f MiB per container", n, float64(total)/(1<<20), per)
	if per > 0.5 && !raceDetector {
		t.Errorf("monitor PSS per container %.3f MiB exceeds conmon's 0.5 MiB", per)
	}
}

// TestMonitorOfAnotherVersionIsLeftAlone: a program built from another
// berth version runs the store's monitor; this one uses a monitor of its
// own protocol version beside it, for starts, attach and resize.
func TestMonitorOfAnotherVersionIsLeftAlone(t *testing.T) {
	rt := detachedRuntime(t)
	ctx := context.Background()
	if err := os.MkdirAll(rt.RunRoot(), 0o700); err != nil {
		t.Fatal(err)
	}
	lock, err := os.OpenFile(filepath.Join(rt.RunRoot(), "monitor.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	ln, err := shim.Listen(shim.Socket(rt.RunRoot()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ln.Close()
		os.Remove(shim.Socket(rt.RunRoot()))
		lock.Close()
	})
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			c := shim.NewConn(nc)
			var h shim.Hello
			_ = c.ReadJSON(shim.Control, &h)
			_ = c.WriteJSON(shim.Control, shim.Hello{Proto: shim.Version + 1, Monitor: proc.Self()})
			c.Close()
		}
	}()
	spec := busybox("sh", "-c", "while :; do stty size; sleep 0.05; done")
	spec.Tty = true
	c := runDetached(t, rt, spec)
	if _, err := os.Stat(shim.VersionedSocket(rt.RunRoot())); err != nil {
		t.Fatalf("no monitor of this version: %v", err)
	}
	mpid, ids, err := berth.MonitorStatus(ctx, rt)
	if err != nil || mpid == os.Getpid() || len(ids) != 1 || ids[0] != c.ID() {
		t.Fatalf("monitor %d watches %v (%v)", mpid, ids, err)
	}
	if err := c.Resize(ctx, 99, 33); err != nil {
		t.Fatal(err)
	}
	var out syncBuffer
	a, err := c.Attach(ctx, berth.AttachOptions{Stdout: &out})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the new size through the attachment", func() bool { return strings.Contains(out.String(), "33 99") })
	a.Close()
}
