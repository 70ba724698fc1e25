package runtime

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// running starts a container that sleeps until the test ends.
func running(t *testing.T) *Container {
	t.Helper()
	c, _ := createTest(t, sh(t, "sleep 1000"), nil)
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return c
}

func execProc(spec *specs.Spec, args ...string) *specs.Process {
	p := *spec.Process
	p.Args = args
	return &p
}

func execOut(t *testing.T, c *Container, proc *specs.Process, stdin io.Reader) (string, ExitStatus) {
	t.Helper()
	r, w, _ := os.Pipe()
	opts := ExecOpts{Stdout: w, Stderr: w}
	var inW *os.File
	if stdin != nil {
		var inR *os.File
		inR, inW, _ = os.Pipe()
		defer inR.Close()
		opts.Stdin = inR
	}
	p, err := Exec(context.Background(), c.State(), proc, opts)
	w.Close()
	if err != nil {
		r.Close()
		t.Fatalf("exec: %v", err)
	}
	if inW != nil {
		go func() { io.Copy(inW, stdin); inW.Close() }()
	}
	out, _ := io.ReadAll(r)
	r.Close()
	st, err := p.Wait()
	if err != nil {
		t.Fatal(err)
	}
	return string(out), st
}

func TestExec(t *testing.T) {
	c := running(t)
	spec := c.State().Config
	out, st := execOut(t, c, execProc(spec, "sh", "-c", `echo $$; hostname; cat /proc/1/cmdline | tr '\0' ' '; echo; cat /etc/hostname; ls /proc | grep -cE '^[0-9]+$'; grep -E '^Cap(Eff)' /proc/self/status`), nil)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if st.Code != 0 || len(lines) != 6 {
		t.Fatalf("exit %d: %q", st.Code, out)
	}
	if lines[0] == "1" {
		t.Errorf("exec'd process is PID 1")
	}
	if lines[1] != "berthtest" || lines[2] != "sleep 1000 " || lines[3] != "busybox" {
		t.Errorf("not in the container: %q", lines)
	}
	if lines[5] != "CapEff:\t00000000a80425fb" {
		t.Errorf("caps %q", lines[5])
	}
	// Exit codes and stdin.
	if _, st := execOut(t, c, execProc(spec, "sh", "-c", "exit 7"), nil); st.Code != 7 {
		t.Errorf("exit %d, want 7", st.Code)
	}
	if s, _ := Load(c.State().StateDir); s.Status != "running" {
		t.Fatalf("container %s after exec", s.Status)
	}
	out, _ = execOut(t, c, execProc(spec, "cat"), strings.NewReader("data through stdin\n"))
	if out != "data through stdin\n" {
		t.Errorf("cat: %q", out)
	}
	// A missing executable fails Exec itself.
	if _, err := Exec(context.Background(), c.State(), execProc(spec, "nosuch"), ExecOpts{}); err == nil || !strings.Contains(err.Error(), "executable file not found") {
		t.Errorf("exec of a missing command: %v", err)
	}
}

func TestExecUser(t *testing.T) {
	c := running(t)
	p := execProc(c.State().Config, "id")
	p.User = specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{1001}}
	out, _ := execOut(t, c, p, nil)
	if out != "uid=1000(berth) gid=1000(berth) groups=1001(extra)\n" {
		t.Fatalf("got %q", out)
	}
}

// readUntil reads from a console until want shows up.
func readUntil(t *testing.T, r io.Reader, want string) string {
	t.Helper()
	var buf bytes.Buffer
	done := make(chan struct{})
	go func() {
		br := bufio.NewReader(r)
		b := make([]byte, 256)
		for {
			n, err := br.Read(b)
			buf.Write(b[:n])
			if strings.Contains(buf.String(), want) || err != nil {
				close(done)
				return
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %q, got %q", want, buf.String())
	}
	return buf.String()
}

func TestExecTerminal(t *testing.T) {
	c := running(t)
	p := execProc(c.State().Config, "sh", "-c", "tty; stty size; echo done")
	p.Terminal = true
	p.ConsoleSize = &specs.Box{Height: 33, Width: 101}
	pr, err := Exec(context.Background(), c.State(), p, ExecOpts{})
	if err != nil {
		t.Fatal(err)
	}
	con := pr.Console()
	if con == nil {
		t.Fatal("no console")
	}
	defer con.Close()
	out := readUntil(t, con, "done")
	if !strings.Contains(out, "/dev/pts/") || !strings.Contains(out, "33 101") {
		t.Fatalf("terminal output %q", out)
	}
	if st, _ := pr.Wait(); st.Code != 0 {
		t.Fatalf("exit %d", st.Code)
	}
}

func TestInitTerminal(t *testing.T) {
	spec := sh(t, "tty; read line; echo got $line")
	spec.Process.Terminal = true
	c, _ := createTest(t, spec, nil)
	con := c.Console()
	if con == nil {
		t.Fatal("no console")
	}
	defer con.Close()
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	readUntil(t, con, "/dev/pts/0")
	con.Write([]byte("hello\n"))
	readUntil(t, con, "got hello")
	if err := c.Resize(80, 25); err != nil {
		t.Fatal(err)
	}
	if st, _ := c.Wait(); st.Code != 0 {
		t.Fatalf("exit %d", st.Code)
	}
}

// TestExecJoinsTheInitsCgroups checks that an exec'd process lands in
// every cgroup of the container's init (moved, on v1, by the exec stage's
// own thread).
func TestExecJoinsTheInitsCgroups(t *testing.T) {
	c := running(t)
	want, err := os.ReadFile("/proc/" + strconv.Itoa(c.Pid()) + "/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	out, st := execOut(t, c, execProc(c.State().Config, "cat", "/proc/self/cgroup"), nil)
	if st.Code != 0 {
		t.Fatalf("exec: %+v %q", st, out)
	}
	if out != string(want) {
		t.Errorf("exec'd process's cgroups:\n%s\ninit's:\n%s", out, want)
	}
	if !strings.Contains(string(want), "/berth/"+c.ID()) {
		t.Errorf("init not in its cgroup:\n%s", want)
	}
}
