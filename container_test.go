package berth_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-run/berth"
	"github.com/berth-run/berth/internal/testutil"
)

// Docker's semantics through the public API: the generated OCI config
// (internal/oci) run by the runtime (internal/runtime).
func TestContainerDockerSemantics(t *testing.T) {
	testutil.RequiresRoot(t)
	rt := newRuntime(t)
	importBusybox(t, rt, "busybox")
	sh := func(script string) []string { return []string{"sh", "-c", script} }
	for _, tc := range []struct {
		name string
		spec berth.Spec
		code int
		want []string // substrings of the output
		not  []string
	}{
		{"exit 0", berth.Spec{Cmd: []string{"true"}}, 0, nil, nil},
		{"exit 3", berth.Spec{Cmd: sh("exit 3")}, 3, nil, nil},
		// The kernel shields a PID 1 from its own namespace's signals: with
		// --init the command is PID 2 and dies of them, and the reaper exits
		// with docker's code.
		{"SIGKILL is 137", berth.Spec{Init: true, Cmd: sh("kill -KILL $$")}, 137, nil, nil},
		{"SIGSEGV is 139", berth.Spec{Init: true, Cmd: sh("kill -SEGV $$")}, 139, nil, nil},
		{"PID 1 ignores its own SIGKILL", berth.Spec{Cmd: sh("kill -KILL $$; echo alive")}, 0, []string{"alive"}, nil},
		// header, sh, ps (not in a pipeline: wc might not exist yet when ps looks)
		{"PID 1 and alone", berth.Spec{Cmd: sh("echo pid=$$; ps -o pid >/tmp/ps; wc -l </tmp/ps")}, 0, []string{"pid=1\n", "3\n"}, nil},
		{"hostname is the short ID", berth.Spec{Cmd: sh("hostname | wc -c")}, 0, []string{"13\n"}, nil},
		{"own hostname", berth.Spec{Hostname: "web1", Cmd: []string{"hostname"}}, 0, []string{"web1"}, nil},
		{"env and workdir", berth.Spec{Env: []string{"A=1"}, WorkingDir: "/tmp/new", Cmd: sh("echo $A $PWD $PATH")}, 0,
			[]string{"1 /tmp/new /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}, nil},
		{"user by name with groups", berth.Spec{User: "berth", Cmd: []string{"id"}}, 0, []string{"uid=1000(berth) gid=1000(berth) groups=1000(berth),1001(extra)"}, nil},
		{"user uid:gid", berth.Spec{User: "65534:65534", Cmd: sh("id -u; id -g")}, 0, []string{"65534\n65534\n"}, nil},
		{"entrypoint and cmd", berth.Spec{Entrypoint: []string{"echo", "a"}, Cmd: []string{"b"}}, 0, []string{"a b\n"}, nil},
		{"default capabilities", berth.Spec{Cmd: sh("grep CapEff /proc/1/status")}, 0, []string{"00000000a80425fb"}, nil},
		{"cap-drop", berth.Spec{CapDrop: []string{"ALL"}, Cmd: sh("grep CapEff /proc/1/status")}, 0, []string{"0000000000000000"}, nil},
		{"privileged", berth.Spec{Privileged: true, Cmd: sh("grep CapEff /proc/1/status; grep Seccomp: /proc/1/status")}, 0, []string{"Seccomp:\t0"}, []string{"00000000a80425fb"}},
		{"read-only rootfs", berth.Spec{ReadOnly: true, Cmd: sh("touch /x")}, 1, []string{"Read-only file system"}, nil},
		{"default seccomp", berth.Spec{Cmd: sh("grep Seccomp: /proc/1/status; unshare -U true; echo rc=$?")}, 0,
			[]string{"Seccomp:\t2", "Operation not permitted", "rc=1"}, nil},
		{"seccomp unconfined", berth.Spec{SecurityOpt: []string{"seccomp=unconfined"}, Cmd: sh("grep Seccomp: /proc/1/status")}, 0, []string{"Seccomp:\t0"}, nil},
		{"no-new-privileges", berth.Spec{SecurityOpt: []string{"no-new-privileges"}, Cmd: sh("grep NoNewPrivs /proc/1/status")}, 0, []string{"NoNewPrivs:\t1"}, nil},
		{"ulimit", berth.Spec{Ulimits: []berth.Ulimit{{Name: "nofile", Soft: 512, Hard: 1024}}, Cmd: sh("ulimit -n; ulimit -Hn")}, 0, []string{"512\n1024\n"}, nil},
		// Forks fail at the limit; the shell's builtins report what is left.
		{"pids limit stops a fork loop", berth.Spec{Resources: berth.Resources{PidsLimit: 8},
			Cmd: sh("(i=0; while [ $i -lt 20 ]; do sleep 5 & i=$((i+1)); done) 2>/dev/null; echo loop=$?; read m < /sys/fs/cgroup/pids/pids.max; read n < /sys/fs/cgroup/pids/pids.current; echo max=$m; [ $n -le $m ] && echo within-limit")},
			0, []string{"max=8", "within-limit"}, []string{"loop=0"}},
		{"cpu quota", berth.Spec{Resources: berth.Resources{NanoCPUs: 500000000},
			Cmd: sh("cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us 2>/dev/null || cat /sys/fs/cgroup/cpu.max")}, 0, []string{"50000"}, nil},
		{"init is PID 1", berth.Spec{Init: true, Cmd: sh("echo pid=$$; cat /proc/1/cmdline | tr '\\0' ' '")}, 0, []string{"/sbin/berth-init -- sh"}, []string{"pid=1\n"}},
		{"command not found", berth.Spec{Cmd: []string{"nosuch"}}, -1, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.spec.Image = "busybox"
			if tc.code == -1 {
				_, err := rt.Run(context.Background(), tc.spec)
				if err == nil || !strings.Contains(err.Error(), `exec: "nosuch": executable file not found in $PATH`) {
					t.Fatalf("run of a missing command: %v", err)
				}
				return
			}
			out, code := runOutput(t, rt, tc.spec)
			if code != tc.code {
				t.Errorf("exit code %d, want %d; output:\n%s", code, tc.code, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			for _, w := range tc.not {
				if strings.Contains(out, w) {
					t.Errorf("output has %q:\n%s", w, out)
				}
			}
		})
	}
}

// Stop sends SIGTERM, then SIGKILL after the timeout to a PID 1 that
// ignores SIGTERM; exec joins the container's namespaces and cgroup.
func TestContainerStopAndExec(t *testing.T) {
	testutil.RequiresRoot(t)
	rt := newRuntime(t)
	importBusybox(t, rt, "busybox")
	ctx := context.Background()
	c, err := rt.Run(ctx, berth.Spec{Image: "busybox", Network: "none", Hostname: "box",
		Cmd: []string{"sh", "-c", "trap '' TERM; echo ready > /tmp/marker; while true; do sleep 1; done"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Remove(context.Background(), berth.RemoveForce()) })
	var out lockedBuffer
	for i := 0; ; i++ {
		out = lockedBuffer{}
		p, err := c.Exec(ctx, berth.ExecSpec{Cmd: []string{"sh", "-c", "cat /tmp/marker; hostname; echo pid=$$; cat /proc/self/cgroup | grep -c berth"}, Stdout: &out})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Wait(ctx); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(out.String(), "ready") || i == 100 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	got := out.String()
	if !strings.Contains(got, "ready\nbox\npid=") || strings.Contains(got, "pid=1\n") || strings.HasSuffix(got, "\n0\n") {
		t.Errorf("exec sees %q: want the container's file, its hostname, a pid other than 1, its cgroup", got)
	}
	// Stdin streams into an exec.
	out = lockedBuffer{}
	p, err := c.Exec(ctx, berth.ExecSpec{Cmd: []string{"cat"}, Stdin: strings.NewReader("piped\n"), Stdout: &out})
	if err != nil {
		t.Fatal(err)
	}
	if code, err := p.Wait(ctx); err != nil || code != 0 || out.String() != "piped\n" {
		t.Errorf("exec with stdin: %d %v %q", code, err, out.String())
	}
	timeout := 500 * time.Millisecond
	start := time.Now()
	if err := c.Stop(ctx, &timeout); err != nil {
		t.Fatal(err)
	}
	if time.Since(start) < timeout {
		t.Errorf("stop returned after %v, before the timeout", time.Since(start))
	}
	st, err := c.State(ctx)
	if err != nil || st.Status != berth.StatusExited || st.ExitCode != 137 {
		t.Fatalf("after stop: %+v %v", st, err)
	}
	if _, err := c.Exec(ctx, berth.ExecSpec{Cmd: []string{"true"}}); !errors.Is(err, berth.ErrNotRunning) {
		t.Errorf("exec in a stopped container: %v", err)
	}
	if err := c.Kill(ctx, syscall.SIGKILL); !errors.Is(err, berth.ErrNotRunning) {
		t.Errorf("kill of a stopped container: %v", err)
	}
}

// Its mounts stay in the container: nothing it mounts shows on the host,
// and removing it leaves no mount, cgroup or directory behind.
func TestContainerLeavesNothing(t *testing.T) {
	testutil.RequiresRoot(t)
	rt := newRuntime(t)
	importBusybox(t, rt, "busybox")
	for i := 0; i < 20; i++ {
		if out, code := runOutput(t, rt, berth.Spec{Image: "busybox", Cmd: []string{"sh", "-c", "mkdir -p /mnt && mount -t tmpfs none /mnt && echo ok"}, Privileged: true}); code != 0 || out != "ok\n" {
			t.Fatalf("run %d: %d %q", i, code, out)
		}
	}
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(mi), rt.Root()) || strings.Contains(string(mi), rt.RunRoot()) {
		t.Errorf("mounts of removed containers are left:\n%s", mi)
	}
	ents, _ := os.ReadDir(filepath.Join(rt.Root(), "containers"))
	if len(ents) != 0 {
		t.Errorf("container directories left: %v", ents)
	}
	for _, h := range []string{"memory", "cpu", "pids", "freezer"} {
		matches, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", h, "**", "berth", "*"))
		for _, m := range matches {
			if fi, err := os.Stat(m); err == nil && fi.IsDir() {
				// Other test packages may run containers at the same time; ours are removed.
				if _, err := os.Stat(filepath.Join(rt.Root(), "containers", filepath.Base(m))); err == nil {
					t.Errorf("cgroup of a removed container left: %s", m)
				}
			}
		}
	}
}
