package runtime

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-run/berth/internal/testutil"
)

// dockerCaps is docker's default capability set.
var dockerCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
	"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// testSpec is a docker-like default spec running args in rootfs (read-only
// by default, since BusyboxRootfs is shared), with a writable /tmp.
func testSpec(rootfs string, args ...string) *specs.Spec {
	caps := append([]string(nil), dockerCaps...)
	return &specs.Spec{
		Version: specs.Version,
		Root:    &specs.Root{Path: rootfs, Readonly: true},
		Process: &specs.Process{
			Args: args,
			Env:  []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root"},
			Cwd:  "/",
			Capabilities: &specs.LinuxCapabilities{
				Bounding: caps, Effective: caps, Permitted: caps,
			},
		},
		Hostname: "berthtest",
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
			{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"ro", "nosuid", "noexec", "nodev"}},
			{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
			{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "mode=1777"}},
		},
		Linux: &specs.Linux{
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.IPCNamespace}, {Type: specs.UTSNamespace},
				{Type: specs.MountNamespace}, {Type: specs.NetworkNamespace},
			},
			MaskedPaths: []string{
				"/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
				"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
				"/sys/firmware", "/sys/devices/virtual/powercap",
			},
			ReadonlyPaths: []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"},
		},
	}
}

var idSeq atomic.Int64

// testID is a unique container id for the test.
func testID(t testing.TB) string {
	return fmt.Sprintf("bt-%d-%d", os.Getpid(), idSeq.Add(1))
}

// result is what a finished container left.
type result struct {
	out, err string
	status   ExitStatus
}

// create makes a container with stdout/stderr captured; it is deleted
// when the test ends.
func createTest(t testing.TB, spec *specs.Spec, mod func(*CreateOpts)) (*Container, func() (string, string)) {
	t.Helper()
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	id := testID(t)
	opts := CreateOpts{
		ID:          id,
		Spec:        spec,
		StateDir:    filepath.Join(stateRoot(t), id),
		Stdout:      outW,
		Stderr:      errW,
		TieToParent: true,
	}
	if mod != nil {
		mod(&opts)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := Create(ctx, opts)
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		t.Fatalf("create: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := c.Delete(ctx, true); err != nil {
			t.Errorf("delete: %v", err)
		}
	})
	var outB, errB bytes.Buffer
	done := make(chan struct{}, 2)
	go func() { io.Copy(&outB, outR); outR.Close(); done <- struct{}{} }()
	go func() { io.Copy(&errB, errR); errR.Close(); done <- struct{}{} }()
	return c, func() (string, string) {
		<-done
		<-done
		return outB.String(), errB.String()
	}
}

// run creates, starts and waits for a container.
func run(t testing.TB, spec *specs.Spec) result {
	t.Helper()
	c, output := createTest(t, spec, nil)
	if err := c.Start(context.Background()); err != nil {
		t.Fatalf("start: %v", err)
	}
	st, err := c.Wait()
	if err != nil {
		t.Fatalf("wait: %v", err)
	}
	out, errs := output()
	return result{out: out, err: errs, status: st}
}

// runOK runs a shell script and fails the test unless it exits 0; it
// returns the trimmed stdout.
func runOK(t testing.TB, spec *specs.Spec) string {
	t.Helper()
	r := run(t, spec)
	if r.status.Code != 0 {
		t.Fatalf("exit %d; stdout %q; stderr %q", r.status.Code, r.out, r.err)
	}
	return strings.TrimSpace(r.out)
}

var stateRootOnce = sync.OnceValue(func() string {
	return filepath.Join(os.TempDir(), fmt.Sprintf("berth-runtime-test-%d", os.Getpid()))
})

// stateRoot is the parent of the tests' state dirs (each container's is
// removed by its Delete).
func stateRoot(t testing.TB) string { return stateRootOnce() }

func sh(t testing.TB, script string) *specs.Spec {
	t.Helper()
	testutil.RequiresRoot(t)
	return testSpec(testutil.BusyboxRootfs(t), "sh", "-c", script)
}

var osReadlink = os.Readlink
