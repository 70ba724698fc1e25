package runtime

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-run/berth/cgroup"
)

func TestJoinNamespacesByPath(t *testing.T) {
	a := running(t)
	spec := sh(t, `hostname; readlink /proc/self/ns/net; readlink /proc/self/ns/ipc; readlink /proc/self/ns/pid; echo $$`)
	var nss []specs.LinuxNamespace
	for _, ns := range spec.Linux.Namespaces {
		switch ns.Type {
		case specs.UTSNamespace, specs.NetworkNamespace, specs.IPCNamespace, specs.PIDNamespace:
			ns.Path = "/proc/" + strconv.Itoa(a.Pid()) + "/ns/" + map[specs.LinuxNamespaceType]string{
				specs.UTSNamespace: "uts", specs.NetworkNamespace: "net", specs.IPCNamespace: "ipc", specs.PIDNamespace: "pid"}[ns.Type]
		}
		nss = append(nss, ns)
	}
	spec.Linux.Namespaces = nss
	spec.Hostname = "" // the joined UTS namespace's name stays
	out := runOK(t, spec)
	lines := strings.Split(out, "\n")
	want := []string{"berthtest"}
	for _, n := range []string{"net", "ipc", "pid"} {
		l, _ := readlinkNS(a.Pid(), n)
		want = append(want, l)
	}
	if len(lines) != 5 || strings.Join(lines[:4], "|") != strings.Join(want, "|") || lines[4] == "1" {
		t.Fatalf("got %q, want %q and a pid other than 1", lines, want)
	}
}

func TestNoPivotRoot(t *testing.T) {
	spec := sh(t, `echo $$; hostname; ls /bin/busybox`)
	c, output := createTest(t, spec, func(o *CreateOpts) { o.NoPivotRoot = true })
	c.Start(context.Background())
	if st, _ := c.Wait(); st.Code != 0 {
		_, e := output()
		t.Fatalf("exit %d: %s", st.Code, e)
	}
	if out, _ := output(); out != "1\nberthtest\n/bin/busybox\n" {
		t.Fatalf("got %q", out)
	}
}

func TestPausedStatus(t *testing.T) {
	c := running(t)
	m, err := cgroup.New(c.State().CgroupPath)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := m.Freeze(ctx); err != nil {
		t.Fatal(err)
	}
	s, _ := Load(c.State().StateDir)
	if s.Status != "paused" {
		t.Fatalf("status %s", s.Status)
	}
	// A forced delete thaws and kills it.
	if err := c.Delete(ctx, true); err != nil {
		t.Fatal(err)
	}
}

func TestHookTimeoutAndFailure(t *testing.T) {
	spec := sh(t, "true")
	one := 1
	spec.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: "/bin/sleep", Args: []string{"sleep", "5"}, Timeout: &one}}}
	t0 := time.Now()
	_, err := Create(context.Background(), CreateOpts{ID: testID(t), Spec: spec, StateDir: stateRoot(t) + "/" + testID(t)})
	if err == nil || !strings.Contains(err.Error(), "timed out") || time.Since(t0) > 4*time.Second {
		t.Fatalf("create with a hanging hook: %v after %v", err, time.Since(t0))
	}
	spec.Hooks = &specs.Hooks{Prestart: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "echo broken >&2; exit 1"}}}}
	_, err = Create(context.Background(), CreateOpts{ID: testID(t), Spec: spec, StateDir: stateRoot(t) + "/" + testID(t)})
	if err == nil || !strings.Contains(err.Error(), "broken") {
		t.Fatalf("create with a failing hook: %v", err)
	}
}

func readlinkNS(pid int, name string) (string, error) {
	return osReadlink("/proc/" + strconv.Itoa(pid) + "/ns/" + name)
}

// TestTieToParent kills a process that created a container tied to it
// (a copy of this test binary) and checks that the container dies too.
func TestTieToParent(t *testing.T) {
	if os.Getenv("BERTH_TIE_HELPER") == "1" {
		spec := sh(t, "sleep 1000")
		id := testID(t)
		c, err := Create(context.Background(), CreateOpts{ID: id, Spec: spec, StateDir: filepath.Join(os.Getenv("BERTH_TIE_STATE"), id), TieToParent: true})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		os.Stdout.WriteString(strconv.Itoa(c.Pid()) + " " + c.State().CgroupPath + "\n")
		time.Sleep(time.Minute)
		return
	}
	sh(t, "true") // requirements
	cmd := exec.Command(os.Args[0], "-test.run=^TestTieToParent$")
	cmd.Env = append(os.Environ(), "BERTH_TIE_HELPER=1", "BERTH_TIE_STATE="+t.TempDir())
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("helper: %v", err)
	}
	fields := strings.Fields(line)
	pid, _ := strconv.Atoi(fields[0])
	// The helper dies without cleaning up: remove its container's cgroup.
	defer func() {
		if m, err := cgroup.New(fields[1]); err == nil {
			if err := m.Delete(); err != nil {
				t.Errorf("remove the helper's cgroup: %v", err)
			}
		}
	}()
	if err := syscall.Kill(pid, 0); err != nil {
		t.Fatalf("container init %d not running: %v", pid, err)
	}
	cmd.Process.Kill()
	cmd.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		if b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); strings.Contains(string(b), ") Z") {
			break // dead, waiting for its new parent to reap it
		}
		if time.Now().After(deadline) {
			t.Fatalf("container init %d survived its parent", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestPreStart(t *testing.T) {
	spec := sh(t, `tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d " "`)
	var seen int
	c, output := createTest(t, spec, func(o *CreateOpts) {
		o.PreStart = func(ctx context.Context, pid int) error {
			seen = pid
			// Configure the container's new network namespace from
			// outside, as berth's network setup does.
			ns, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/ns/net")
			own, _ := os.Readlink("/proc/self/ns/net")
			if err != nil || ns == own {
				return fmt.Errorf("no own netns: %v", err)
			}
			return nil
		}
	})
	if seen != c.Pid() {
		t.Fatalf("PreStart got pid %d, init is %d", seen, c.Pid())
	}
	c.Start(context.Background())
	c.Wait()
	if out, _ := output(); out != "lo\n" {
		t.Fatalf("got %q", out)
	}
	spec = sh(t, "true")
	id := testID(t)
	_, err := Create(context.Background(), CreateOpts{ID: id, Spec: spec, StateDir: filepath.Join(stateRoot(t), id),
		PreStart: func(context.Context, int) error { return fmt.Errorf("network setup failed") }})
	if err == nil || err.Error() != "network setup failed" {
		t.Fatalf("create with a failing PreStart: %v", err)
	}
}

// TestTiedContainersShareAThread creates several containers tied to this
// process and checks that they do not hold a thread each: they are all
// forked from the process's tied thread, which outlives them. They must
// also survive the ends of other threads (a locked goroutine exiting
// ends its thread).
func TestTiedContainersShareAThread(t *testing.T) {
	const n = 8
	threads := func() int {
		ents, err := os.ReadDir("/proc/self/task")
		if err != nil {
			t.Fatal(err)
		}
		return len(ents)
	}
	spec := sh(t, "sleep 1000")
	onTiedThread(func() {}) // the tied thread exists before the count
	before := threads()
	var cs []*Container
	for range n {
		id := testID(t)
		c, err := Create(context.Background(), CreateOpts{ID: id, Spec: spec, StateDir: filepath.Join(stateRoot(t), id), TieToParent: true})
		if err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
		t.Cleanup(func() {
			c.Kill(syscall.SIGKILL)
			c.Wait()
			c.Delete(context.Background(), true)
		})
		if err := c.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if grown := threads() - before; grown >= n {
		t.Errorf("%d tied containers added %d threads", n, grown)
	}
	// Threads that end (locked goroutines returning) leave them alive.
	for range 4 {
		done := make(chan struct{})
		go func() {
			runtime.LockOSThread()
			close(done)
		}()
		<-done
	}
	time.Sleep(100 * time.Millisecond) // a death signal would have been sent by now
	for _, c := range cs {
		select {
		case <-c.Exited():
			t.Fatalf("container %s died with a thread", c.ID())
		default:
		}
	}
}
