package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-run/berth/internal/errdefs"
	"github.com/berth-run/berth/internal/testutil"
)

func TestRunTrue(t *testing.T) {
	spec := sh(t, "true")
	spec.Process.Args = []string{"true"}
	r := run(t, spec)
	if r.status.Code != 0 || r.status.Signal != 0 {
		t.Fatalf("status %+v, stderr %q", r.status, r.err)
	}
}

func TestExitCodes(t *testing.T) {
	for _, tc := range []struct {
		script string
		code   int
	}{
		{"exit 0", 0},
		{"exit 3", 3},
		// sh is PID 1, which a signal without a handler cannot kill:
		// the inner shell dies of SIGSEGV and the outer reports 139.
		{`sh -c 'kill -SEGV $$'; exit $?`, 139},
	} {
		r := run(t, sh(t, tc.script))
		if r.status.Code != tc.code {
			t.Errorf("%s: exit %d, want %d (stderr %q)", tc.script, r.status.Code, tc.code, r.err)
		}
	}
}

func TestSignalExitStatus(t *testing.T) {
	// Without a pid namespace the shell is not an init: it dies of its
	// own SIGSEGV and the status says so.
	spec := sh(t, `kill -SEGV $$`)
	spec.Linux.Namespaces = withoutNS(spec.Linux.Namespaces, specs.PIDNamespace)
	r := run(t, spec)
	if r.status.Code != 139 || r.status.Signal != syscall.SIGSEGV {
		t.Fatalf("status %+v, want 139/SIGSEGV", r.status)
	}
}

func withoutNS(nss []specs.LinuxNamespace, typ specs.LinuxNamespaceType) []specs.LinuxNamespace {
	var out []specs.LinuxNamespace
	for _, ns := range nss {
		if ns.Type != typ {
			out = append(out, ns)
		}
	}
	return out
}

func TestKill(t *testing.T) {
	c, _ := createTest(t, sh(t, "sleep 100"), nil)
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := c.Kill(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	st, err := c.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if st.Code != 137 || st.Signal != syscall.SIGKILL {
		t.Fatalf("status %+v, want 137", st)
	}
}

func TestInitIgnoresSIGTERM(t *testing.T) {
	c, _ := createTest(t, sh(t, "sleep 100"), nil)
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := c.Kill(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.Exited():
		t.Fatal("PID 1 without a SIGTERM handler died of SIGTERM")
	case <-time.After(300 * time.Millisecond):
	}
	s, err := Load(c.State().StateDir)
	if err != nil {
		t.Fatal(err)
	}
	if s.Status != specs.ContainerState(StatusRunning) {
		t.Fatalf("status %s, want running", s.Status)
	}
	if err := Kill(s, syscall.SIGKILL, false); err != nil {
		t.Fatal(err)
	}
	if st, _ := c.Wait(); st.Code != 137 {
		t.Fatalf("status %+v", st)
	}
}

func TestIsolation(t *testing.T) {
	out := runOK(t, sh(t, `echo pid=$$; ls /proc | grep -E '^[0-9]+$' | wc -l; hostname; cat /proc/self/mountinfo | wc -l; for n in ipc net mnt; do readlink /proc/self/ns/$n; done`))
	lines := strings.Split(out, "\n")
	if len(lines) != 7 {
		t.Fatalf("output %q", out)
	}
	if lines[0] != "pid=1" {
		t.Errorf("shell is not PID 1: %s", lines[0])
	}
	// sh, ls, grep, wc: a handful of pids, none of the host's.
	if n, _ := strconv.Atoi(strings.TrimSpace(lines[1])); n > 5 || n < 1 {
		t.Errorf("container sees %s processes", lines[1])
	}
	if lines[2] != "berthtest" {
		t.Errorf("hostname %q", lines[2])
	}
	host, _ := os.Hostname()
	if host == "berthtest" {
		t.Errorf("host name changed")
	}
	for i, ns := range []string{"ipc", "net", "mnt"} {
		own, _ := os.Readlink("/proc/self/ns/" + ns)
		if lines[4+i] == own {
			t.Errorf("%s namespace shared with the host: %s", ns, own)
		}
	}
	// None of the container's mounts leaked to the host.
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mi), testutil.BusyboxRootfs(t)) {
		t.Errorf("container mounts visible on the host:\n%s", mi)
	}
}

func TestSymlinkMountEscape(t *testing.T) {
	testutil.RequiresRoot(t)
	rootfs := testutil.CopyRootfs(t)
	host := t.TempDir()
	// /evil in the rootfs points at a host directory.
	if err := os.Symlink(host, filepath.Join(rootfs, "evil")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../../../../../../"+host, filepath.Join(rootfs, "evil2")); err != nil {
		t.Fatal(err)
	}
	spec := testSpec(rootfs, "sh", "-c", "touch /evil/x /evil2/y && ls "+host)
	spec.Root.Readonly = false
	spec.Mounts = spec.Mounts[:len(spec.Mounts)-1] // no tmpfs on /tmp
	spec.Mounts = append(spec.Mounts,
		specs.Mount{Destination: "/evil", Type: "tmpfs", Source: "tmpfs"},
		specs.Mount{Destination: "/evil2", Type: "tmpfs", Source: "tmpfs"})
	r := run(t, spec)
	if r.status.Code != 0 {
		t.Fatalf("exit %d: %s", r.status.Code, r.err)
	}
	ents, _ := os.ReadDir(host)
	if len(ents) != 0 {
		t.Fatalf("mount escaped to the host dir: %v", ents)
	}
	// The mount landed inside the rootfs, at the symlink's target.
	if _, err := os.Stat(filepath.Join(rootfs, host)); err != nil {
		t.Fatalf("symlink target not created inside the rootfs: %v", err)
	}
}

func TestBindMount(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "f"), []byte("data"), 0o644)
	spec := sh(t, "cat /data/f; touch /data/g 2>&1; cat /ro/f; touch /ro/g 2>&1 || echo refused")
	spec.Mounts = append(spec.Mounts,
		specs.Mount{Destination: "/data", Type: "bind", Source: dir, Options: []string{"rbind", "rw"}},
		specs.Mount{Destination: "/ro", Type: "bind", Source: dir, Options: []string{"rbind", "ro"}})
	out := runOK(t, spec)
	if !strings.HasPrefix(out, "datadata") || !strings.Contains(out, "Read-only file system") || !strings.HasSuffix(out, "refused") {
		t.Fatalf("output %q", out)
	}
	if _, err := os.Stat(filepath.Join(dir, "g")); err != nil {
		t.Fatalf("write through rw bind: %v", err)
	}
}

func TestReadonlyRootfs(t *testing.T) {
	r := run(t, sh(t, "touch /x"))
	if r.status.Code == 0 || !strings.Contains(r.err, "Read-only file system") {
		t.Fatalf("exit %d, stderr %q", r.status.Code, r.err)
	}
}

func TestDevices(t *testing.T) {
	out := runOK(t, sh(t, `ls -l /dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty | awk '{print $1, $5 $6}'; for l in ptmx fd stdin; do readlink /dev/$l; done; head -c 3 /dev/zero | wc -c; echo x > /dev/null && echo ok`))
	want := []string{"crw-rw-rw- 1,7", "crw-rw-rw- 1,3", "crw-rw-rw- 1,8", "crw-rw-rw- 5,0", "crw-rw-rw- 1,9", "crw-rw-rw- 1,5", "pts/ptmx", "/proc/self/fd", "/proc/self/fd/0", "3", "ok"}
	if got := strings.Split(out, "\n"); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("got\n%s\nwant\n%s", out, strings.Join(want, "\n"))
	}
}

func TestMaskedAndReadonlyPaths(t *testing.T) {
	out := runOK(t, sh(t, `wc -c < /proc/timer_list; ls /sys/firmware | wc -l; (echo 1 > /proc/sys/kernel/ns_last_pid) 2>&1; grep -c ' /proc/sys ro,' /proc/self/mountinfo`))
	if out != "0\n0\nsh: can't create /proc/sys/kernel/ns_last_pid: Read-only file system\n1" {
		t.Fatalf("got %q", out)
	}
}

func TestCapabilities(t *testing.T) {
	out := runOK(t, sh(t, `grep -E '^Cap(Eff|Prm|Bnd)' /proc/1/status`))
	for _, want := range []string{"CapPrm:\t00000000a80425fb", "CapEff:\t00000000a80425fb", "CapBnd:\t00000000a80425fb"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
	spec := sh(t, `grep -E '^CapEff' /proc/1/status`)
	var all []string
	for n := range capNames {
		all = append(all, n)
	}
	spec.Process.Capabilities = &specs.LinuxCapabilities{Bounding: all, Effective: all, Permitted: all}
	out = runOK(t, spec)
	// Everything the kernel has that this process may hold (the test
	// machine may lack some, e.g. CAP_SYS_RESOURCE).
	var hdr = unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		t.Fatal(err)
	}
	own := uint64(data[1].Effective)<<32 | uint64(data[0].Effective)
	full := uint64(1)<<(lastCap()+1) - 1
	if want := fmt.Sprintf("CapEff:\t%016x", own&full); out != want {
		t.Fatalf("got %q, want %q", out, want)
	}
}

func TestUserGroupsEnvCwd(t *testing.T) {
	spec := sh(t, `id -u; id -g; id -G; echo $FOO; pwd; touch /tmp/f && stat -c %u:%g /tmp/f; umask`)
	spec.Process.User = specs.User{UID: testutil.TestUID, GID: testutil.TestGID, AdditionalGids: []uint32{testutil.ExtraGID, 4242}}
	spec.Process.Env = append(spec.Process.Env, "FOO=bar baz")
	spec.Process.Cwd = "/home/berth"
	out := runOK(t, spec)
	want := fmt.Sprintf("%d\n%d\n%d %d 4242\nbar baz\n/home/berth\n%d:%d\n0022", testutil.TestUID, testutil.TestGID, testutil.TestGID, testutil.ExtraGID, testutil.TestUID, testutil.TestGID)
	if out != want {
		t.Fatalf("got\n%s\nwant\n%s", out, want)
	}
	// A non-root user keeps no capabilities.
	spec = sh(t, `grep CapEff /proc/self/status`)
	spec.Process.User = specs.User{UID: 65534, GID: 65534}
	if out := runOK(t, spec); out != "CapEff:\t0000000000000000" {
		t.Fatalf("nobody has %q", out)
	}
}

func TestRlimitsAndNoNewPrivs(t *testing.T) {
	var hard unix.Rlimit
	unix.Getrlimit(unix.RLIMIT_NOFILE, &hard)
	spec := sh(t, `ulimit -n; ulimit -Hn; grep NoNewPrivs /proc/self/status`)
	spec.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 1234, Hard: hard.Max}}
	spec.Process.NoNewPrivileges = true
	out := runOK(t, spec)
	if want := fmt.Sprintf("1234\n%d\nNoNewPrivs:\t1", hard.Max); out != want {
		t.Fatalf("got %q, want %q", out, want)
	}
	spec = sh(t, `grep NoNewPrivs /proc/self/status`)
	if out := runOK(t, spec); out != "NoNewPrivs:\t0" {
		t.Fatalf("got %q", out)
	}
	// Above the caller's hard limit: refused at create.
	spec = sh(t, "true")
	spec.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: hard.Max + 1, Hard: hard.Max + 1}}
	_, err := Create(context.Background(), CreateOpts{ID: testID(t), Spec: spec, StateDir: filepath.Join(stateRoot(t), testID(t))})
	if err == nil || !strings.Contains(err.Error(), "RLIMIT_NOFILE") {
		t.Fatalf("create with nofile above hard limit: %v", err)
	}
}

func TestExecNotFound(t *testing.T) {
	spec := sh(t, "")
	spec.Process.Args = []string{"nosuchcommand"}
	id := testID(t)
	_, err := Create(context.Background(), CreateOpts{ID: id, Spec: spec, StateDir: filepath.Join(stateRoot(t), id)})
	if err == nil || err.Error() != `exec: "nosuchcommand": executable file not found in $PATH` {
		t.Fatalf("got %v", err)
	}
	if !errors.Is(err, errdefs.ErrNotFound) || !errors.Is(err, unix.ENOENT) {
		t.Fatalf("error kinds lost: %#v", err)
	}
	if _, err := os.Stat(filepath.Join(stateRoot(t), id)); !os.IsNotExist(err) {
		t.Fatalf("state dir left behind: %v", err)
	}
}

func TestLifecycleFromState(t *testing.T) {
	c, output := createTest(t, sh(t, "echo started"), func(o *CreateOpts) { o.TieToParent = false })
	s, err := Load(c.State().StateDir)
	if err != nil {
		t.Fatal(err)
	}
	if s.Status != "created" || s.Pid != c.Pid() || s.ID != c.ID() {
		t.Fatalf("state %+v", s.State)
	}
	if err := Start(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	if err := Start(context.Background(), s); !errors.Is(err, errdefs.ErrConflict) && !errors.Is(err, errdefs.ErrNotRunning) {
		t.Fatalf("second start: %v", err)
	}
	st, err := c.Wait()
	if err != nil || st.Code != 0 {
		t.Fatalf("wait %+v %v", st, err)
	}
	if out, _ := output(); out != "started\n" {
		t.Fatalf("output %q", out)
	}
	s, err = Load(c.State().StateDir)
	if err != nil {
		t.Fatal(err)
	}
	if s.Status != "stopped" {
		t.Fatalf("status %s", s.Status)
	}
	if err := Delete(context.Background(), s, false, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(c.State().StateDir); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("load after delete: %v", err)
	}
}

func TestDeleteRunningNeedsForce(t *testing.T) {
	c, _ := createTest(t, sh(t, "sleep 100"), nil)
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	s, _ := Load(c.State().StateDir)
	if err := Delete(context.Background(), s, false, nil); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("delete running without force: %v", err)
	}
	if err := c.Delete(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	if st, _ := c.Wait(); st.Code != 137 {
		t.Fatalf("status %+v", st)
	}
}

func TestHooks(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "log")
	hook := func(name string) specs.Hook {
		return specs.Hook{Path: "/bin/sh", Args: []string{"sh", "-c", `read s; echo "` + name + ` $s" >> ` + log}}
	}
	spec := sh(t, "true")
	spec.Hooks = &specs.Hooks{
		Prestart:      []specs.Hook{hook("prestart")},
		CreateRuntime: []specs.Hook{hook("createRuntime")},
		// Runs in the container namespace before pivot_root: host paths.
		CreateContainer: []specs.Hook{hook("createContainer")},
		Poststart:       []specs.Hook{hook("poststart")},
		Poststop:        []specs.Hook{hook("poststop")},
	}
	c, _ := createTest(t, spec, nil)
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	c.Wait()
	if err := c.Delete(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(log)
	var names []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		names = append(names, strings.Fields(l)[0])
		if !strings.Contains(l, `"id":"`+c.ID()+`"`) {
			t.Errorf("hook state without id: %s", l)
		}
	}
	if got := strings.Join(names, ","); got != "prestart,createRuntime,createContainer,poststart,poststop" {
		t.Fatalf("hooks ran as %s\n%s", got, b)
	}
}

func TestStdinAndExtraFiles(t *testing.T) {
	r, w, _ := os.Pipe()
	spec := sh(t, "cat; cat <&3")
	xr, xw, _ := os.Pipe()
	c, output := createTest(t, spec, func(o *CreateOpts) {
		o.Stdin = r
		o.ExtraFiles = []*os.File{xr}
	})
	r.Close()
	xr.Close()
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("from stdin\n"))
	w.Close()
	xw.Write([]byte("from fd 3\n"))
	xw.Close()
	c.Wait()
	if out, _ := output(); out != "from stdin\nfrom fd 3\n" {
		t.Fatalf("got %q", out)
	}
}

func TestRecursiveReadonlyBind(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "sub")
	os.Mkdir(sub, 0o755)
	// A mount below the bind source: "ro" alone leaves it writable,
	// "rro" does not.
	if err := unix.Mount("tmpfs", sub, "tmpfs", 0, ""); err != nil {
		t.Fatal(err)
	}
	defer unix.Unmount(sub, unix.MNT_DETACH)
	spec := sh(t, "touch /data/sub/x 2>&1; touch /data2/sub/y && echo writable")
	spec.Mounts = append(spec.Mounts,
		specs.Mount{Destination: "/data", Type: "bind", Source: dir, Options: []string{"rbind", "ro", "rro"}},
		specs.Mount{Destination: "/data2", Type: "bind", Source: dir, Options: []string{"rbind", "ro"}})
	out := runOK(t, spec)
	if !strings.Contains(out, "Read-only file system") || !strings.HasSuffix(out, "writable") {
		t.Fatalf("got %q", out)
	}
}

func TestRootfsPropagation(t *testing.T) {
	for _, tc := range []struct{ prop, want string }{
		// (rslave of a mount without peers is private: nothing to show.)
		{"shared", "shared:"}, {"private", ""}, {"unbindable", "unbindable"},
	} {
		spec := sh(t, `awk '$5 == "/" {for (i = 7; $i != "-"; i++) printf "%s ", $i; print ""}' /proc/self/mountinfo`)
		spec.Linux.RootfsPropagation = tc.prop
		out := runOK(t, spec)
		if (tc.want == "" && out != "") || !strings.Contains(out, tc.want) {
			t.Errorf("%s: optional fields of / are %q", tc.prop, out)
		}
	}
}
