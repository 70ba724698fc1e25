package runtime

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-run/berth/internal/testutil"
)

func reaperCmd(args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], append([]string{"--"}, args...)...)
	cmd.Env = append(os.Environ(), reaperEnv+"=1", "PATH=/usr/bin:/bin")
	return cmd
}

func TestReaper(t *testing.T) {
	// Exit status, environment without the marker, orphans reaped.
	out, err := reaperCmd("sh", "-c", `echo "marker=$`+reaperEnv+`"; (sleep 0.1 &); exit 3`).Output()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 3 {
		t.Fatalf("exit: %v", err)
	}
	if strings.TrimSpace(string(out)) != "marker=" {
		t.Fatalf("output %q", out)
	}
	// Signals are forwarded.
	cmd := reaperCmd("sleep", "100")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGTERM)
	err = cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 128+15 {
		t.Fatalf("after SIGTERM: %v", err)
	}
	// A missing command.
	err = reaperCmd("no-such-command").Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 127 {
		t.Fatalf("missing command: %v", err)
	}
}

func TestReaperAsContainerInit(t *testing.T) {
	testutil.RequiresRoot(t)
	rootfs := testutil.CopyRootfs(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// As internal/oci sets up `--init`: this binary at /sbin/berth-init,
	// with the host's libraries in case it is dynamically linked.
	spec := testSpec(rootfs, "/sbin/berth-init", "--", "sh", "-c", `(sleep 0.2 &); echo pid=$$ ppid=$PPID init=$(cat /proc/1/cmdline | tr '\0' ' ')`)
	spec.Process.Env = append(spec.Process.Env, reaperEnv+"=1")
	spec.Mounts = append(spec.Mounts, specs.Mount{Destination: "/sbin/berth-init", Type: "bind", Source: self, Options: []string{"bind", "ro"}})
	for _, lib := range []string{"/lib", "/lib64", "/usr/lib", "/usr/lib64"} {
		fi, err := os.Lstat(lib)
		switch {
		case err != nil:
		case fi.Mode()&os.ModeSymlink != 0:
			target, _ := os.Readlink(lib)
			os.Symlink(target, filepath.Join(rootfs, lib))
		case fi.IsDir():
			spec.Mounts = append(spec.Mounts, specs.Mount{Destination: lib, Type: "bind", Source: lib, Options: []string{"rbind", "ro"}})
		}
	}
	out := runOK(t, spec)
	if !strings.HasPrefix(out, "pid=") || strings.HasPrefix(out, "pid=1 ") || !strings.Contains(out, "ppid=1 ") || !strings.Contains(out, "init=/sbin/berth-init -- sh") {
		t.Fatalf("got %q", out)
	}
	r := run(t, func() *specs.Spec {
		s := *spec
		p := *spec.Process
		p.Args = []string{"/sbin/berth-init", "--", "sh", "-c", "exit 5"}
		s.Process = &p
		return &s
	}())
	if r.status.Code != 5 {
		t.Fatalf("status %+v: %s", r.status, r.err)
	}
}
