package runtime

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestUserNamespace(t *testing.T) {
	spec := sh(t, `id -u; cat /proc/self/uid_map; grep CapEff /proc/self/status; ls -l /dev/null | awk '{print $1}'`)
	spec.Linux.Namespaces = append(spec.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
	spec.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 200000, Size: 65536}}
	spec.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 200000, Size: 65536}}
	// sysfs and the cgroup tree need privileges of the host's user
	// namespace: leave them out.
	var mounts []specs.Mount
	for _, m := range spec.Mounts {
		if m.Type != "sysfs" && m.Type != "cgroup" {
			mounts = append(mounts, m)
		}
	}
	spec.Mounts = mounts
	spec.Linux.MaskedPaths = nil
	out := runOK(t, spec)
	lines := strings.Split(out, "\n")
	if len(lines) != 4 || lines[0] != "0" || strings.Join(strings.Fields(lines[1]), " ") != "0 200000 65536" || lines[2] != "CapEff:\t00000000a80425fb" || lines[3] != "crw-rw-rw-" {
		t.Fatalf("got %q", out)
	}
}

func TestKillAll(t *testing.T) {
	c, _ := createTest(t, sh(t, "sleep 100 & sleep 100 & wait"), nil)
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	s, _ := Load(c.State().StateDir)
	var pids []int
	for i := 0; i < 100 && len(pids) < 3; i++ {
		pids = cgroupProcs(c.Pid())
		unix.Nanosleep(&unix.Timespec{Nsec: 10e6}, nil)
	}
	if len(pids) != 3 {
		t.Fatalf("cgroup procs %v", pids)
	}
	if err := Kill(s, syscall.SIGKILL, true); err != nil {
		t.Fatal(err)
	}
	if st, _ := c.Wait(); st.Code != 137 {
		t.Fatalf("status %+v", st)
	}
	for _, p := range pids {
		if err := unix.Kill(p, 0); err == nil && p != c.Pid() {
			// A killed child is reaped by the pid namespace's end.
			if b, _ := os.ReadFile("/proc/" + strconv.Itoa(p) + "/stat"); len(b) > 0 && !strings.Contains(string(b), ") Z") {
				t.Errorf("process %d survived kill --all", p)
			}
		}
	}
}

func TestConsoleSocket(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "console.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	got := make(chan *os.File, 1)
	go func() {
		conn, err := l.AcceptUnix()
		if err != nil {
			got <- nil
			return
		}
		defer conn.Close()
		oob := make([]byte, unix.CmsgSpace(4))
		_, oobn, _, _, err := conn.ReadMsgUnix(make([]byte, 64), oob)
		if err != nil {
			got <- nil
			return
		}
		msgs, _ := unix.ParseSocketControlMessage(oob[:oobn])
		fds, _ := unix.ParseUnixRights(&msgs[0])
		got <- os.NewFile(uintptr(fds[0]), "master")
	}()
	spec := sh(t, "tty; echo bye")
	spec.Process.Terminal = true
	c, _ := createTest(t, spec, func(o *CreateOpts) { o.ConsoleSocket = path })
	if c.Console() != nil {
		t.Fatal("console kept although it went to the socket")
	}
	master := <-got
	if master == nil {
		t.Fatal("no console received")
	}
	defer master.Close()
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	out := readUntil(t, master, "bye")
	if !strings.Contains(out, "/dev/pts/0") {
		t.Fatalf("output %q", out)
	}
	c.Wait()
}
