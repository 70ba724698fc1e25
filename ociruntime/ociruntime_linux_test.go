package ociruntime

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-run/berth/internal/errdefs"
	"github.com/berth-run/berth/internal/testutil"
)

// bundle writes a bundle running args in the shared busybox rootfs.
func bundle(t *testing.T, args ...string) string {
	t.Helper()
	testutil.RequiresRoot(t)
	dir := t.TempDir()
	spec := &specs.Spec{
		Version:  specs.Version,
		Root:     &specs.Root{Path: testutil.BusyboxRootfs(t), Readonly: true},
		Hostname: "oci",
		Process: &specs.Process{
			Args: args,
			Env:  []string{"PATH=/bin:/sbin:/usr/bin:/usr/sbin"},
			Cwd:  "/",
		},
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "mode=755"}},
		},
		Linux: &specs.Linux{Namespaces: []specs.LinuxNamespace{
			{Type: specs.PIDNamespace}, {Type: specs.MountNamespace}, {Type: specs.UTSNamespace}, {Type: specs.IPCNamespace},
		}},
	}
	b, _ := json.Marshal(spec)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func waitStatus(t *testing.T, r *Runtime, id string, want specs.ContainerState) *specs.State {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := r.State(id)
		if err != nil {
			t.Fatal(err)
		}
		if st.Status == want {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("status %s, want %s", st.Status, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// uniqueID keeps the cgroups (berth/<id>) of parallel test binaries apart.
func uniqueID(name string) string { return "ocitest-" + strconv.Itoa(os.Getpid()) + "-" + name }

func TestLifecycle(t *testing.T) {
	r := New(t.TempDir())
	c1 := uniqueID("c1")
	b := bundle(t, "sh", "-c", "echo $(hostname) > /dev/null; sleep 100")
	ctx := context.Background()
	out, _ := os.CreateTemp(t.TempDir(), "out")
	pidFile := filepath.Join(t.TempDir(), "pid")
	if err := r.Create(ctx, c1, b, CreateOpts{Stdout: out, Stderr: out, PidFile: pidFile}); err != nil {
		t.Fatal(err)
	}
	if err := r.Create(ctx, c1, b, CreateOpts{}); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("second create: %v", err)
	}
	st, err := r.State(c1)
	if err != nil || st.Status != specs.StateCreated || st.Bundle != b || st.Pid <= 0 {
		t.Fatalf("state %+v %v", st, err)
	}
	if pid, _ := os.ReadFile(pidFile); string(pid) != strconv.Itoa(st.Pid) {
		t.Fatalf("pid file %q, state pid %d", pid, st.Pid)
	}
	if err := r.Delete(ctx, c1, false); err == nil {
		t.Fatal("delete of a created container without force succeeded")
	}
	if err := r.Start(ctx, c1); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, r, c1, specs.StateRunning)
	list, err := r.List()
	if err != nil || len(list) != 1 || list[0].ID != c1 {
		t.Fatalf("list %+v %v", list, err)
	}
	if pids, err := r.Pids(c1); err != nil || len(pids) < 1 {
		t.Fatalf("pids %v %v", pids, err)
	}
	code, err := r.Exec(ctx, c1, &specs.Process{Args: []string{"sh", "-c", "test $(hostname) = oci"}, Cwd: "/", Env: []string{"PATH=/bin"}}, ExecOpts{})
	if err != nil || code != 0 {
		t.Fatalf("exec: %d %v", code, err)
	}
	if err := r.Pause(ctx, c1); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, r, c1, specs.ContainerState("paused"))
	if err := r.Resume(ctx, c1); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, r, c1, specs.StateRunning)
	// sh is PID 1 without a TERM handler: TERM is ignored, KILL is not.
	if err := r.Kill(c1, syscall.SIGTERM, false); err != nil {
		t.Fatal(err)
	}
	if err := r.Kill(c1, syscall.SIGKILL, true); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, r, c1, specs.StateStopped)
	if err := r.Kill(c1, syscall.SIGKILL, false); !errors.Is(err, errdefs.ErrNotRunning) {
		t.Fatalf("kill of a stopped container: %v", err)
	}
	if err := r.Delete(ctx, c1, false); err != nil {
		t.Fatal(err)
	}
	if _, err := r.State(c1); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("state after delete: %v", err)
	}
}

func TestRun(t *testing.T) {
	r := New(t.TempDir())
	out, _ := os.CreateTemp(t.TempDir(), "out")
	r1 := uniqueID("r1")
	code, err := r.Run(context.Background(), r1, bundle(t, "sh", "-c", "hostname; exit 4"), CreateOpts{Stdout: out}, false)
	if err != nil || code != 4 {
		t.Fatalf("run: %d %v", code, err)
	}
	b, _ := os.ReadFile(out.Name())
	if strings.TrimSpace(string(b)) != "oci" {
		t.Fatalf("output %q", b)
	}
	if _, err := r.State(r1); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("run left the container: %v", err)
	}
}
