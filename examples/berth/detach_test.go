package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/berth-run/berth"
	"github.com/berth-run/berth/internal/testutil"
)

// TestMain lets the tests run this package's binary as the berth command
// line (BERTH_CLI_MAIN=1), as a user at a terminal does.
func TestMain(m *testing.M) {
	if os.Getenv("BERTH_CLI_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// cliStore is a scratch store with busybox; its containers are removed
// and its monitor stopped at the end of the test.
type cliStore struct {
	t   *testing.T
	dir string
	rt  *berth.Runtime
}

func newCLIStore(t *testing.T) *cliStore {
	t.Helper()
	testutil.RequiresRoot(t)
	dir := t.TempDir()
	ctx := context.Background()
	rt, err := berth.Open(ctx, berth.WithRoot(filepath.Join(dir, "root")), berth.WithRunRoot(filepath.Join(dir, "run")))
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(testutil.BusyboxTar(t))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := rt.Import(ctx, f, "busybox", berth.WithChanges(`CMD ["sh"]`)); err != nil {
		t.Fatal(err)
	}
	s := &cliStore{t: t, dir: dir, rt: rt}
	t.Cleanup(func() {
		cs, _ := rt.Containers(ctx)
		for _, c := range cs {
			if err := c.Remove(ctx, berth.RemoveForce()); err != nil && !errors.Is(err, berth.ErrNotFound) {
				t.Errorf("cleanup: %v", err)
			}
		}
		s.stopMonitor()
		rt.Close()
	})
	return s
}

// stopMonitor runs until the store's monitor has exited.
func (s *cliStore) stopMonitor() {
	sock := filepath.Join(s.dir, "run", "monitor.sock")
	deadline := time.Now().Add(time.Minute)
	for {
		if _, err := os.Stat(sock); err != nil {
			return // gone: it removes its socket before it exits
		}
		if time.Now().After(deadline) {
			s.t.Errorf("the monitor did not exit")
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// command is the berth command line on the store.
func (s *cliStore) command(args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], append([]string{"--root", filepath.Join(s.dir, "root"), "--runroot", filepath.Join(s.dir, "run")}, args...)...)
	cmd.Env = append(os.Environ(), "BERTH_CLI_MAIN=1", "TERM=xterm")
	return cmd
}

// run runs the command line with stdin and returns its output and exit
// code.
func (s *cliStore) run(stdin string, args ...string) (string, string, int) {
	s.t.Helper()
	cmd := s.command(args...)
	var out, errOut bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader(stdin), &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		s.t.Fatal(err)
	}
	return out.String(), errOut.String(), cmd.ProcessState.ExitCode()
}

func (s *cliStore) state(name string) berth.State {
	s.t.Helper()
	ctx := context.Background()
	c, err := s.rt.Container(ctx, name)
	if err != nil {
		s.t.Fatal(err)
	}
	st, err := c.State(ctx)
	if err != nil {
		s.t.Fatal(err)
	}
	return st
}

// terminal is a berth command running in a pseudo-terminal.
type terminal struct {
	t    *testing.T
	cmd  *exec.Cmd
	pty  *os.File
	done chan struct{} // closed when the command has ended
	err  error         // its Wait's, after done
	read chan struct{} // closed when all the terminal showed is read
	mu   sync.Mutex
	out  bytes.Buffer // everything the terminal showed
}

func (s *cliStore) terminal(args ...string) *terminal {
	s.t.Helper()
	cmd := s.command(args...)
	p, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 24, Cols: 80})
	if err != nil {
		s.t.Fatal(err)
	}
	tm := &terminal{t: s.t, cmd: cmd, pty: p, done: make(chan struct{}), read: make(chan struct{})}
	go func() {
		tm.err = cmd.Wait()
		close(tm.done)
	}()
	go func() {
		// The master reads EIO once the command (the last holder of the
		// other side) has exited and everything it wrote is read.
		defer close(tm.read)
		buf := make([]byte, 4096)
		for {
			n, err := p.Read(buf)
			tm.mu.Lock()
			tm.out.Write(buf[:n])
			tm.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	s.t.Cleanup(func() {
		select {
		case <-tm.done:
		default:
			_ = cmd.Process.Kill()
			<-tm.done
		}
		p.Close()
	})
	return tm
}

// expect waits until the terminal has shown text after position from,
// and returns the position after it.
func (tm *terminal) expect(from int, text string) int {
	tm.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		tm.mu.Lock()
		seen := tm.out.String()
		tm.mu.Unlock()
		if from > len(seen) {
			from = len(seen)
		}
		if i := strings.Index(seen[from:], text); i >= 0 {
			return from + i + len(text)
		}
		select {
		case <-tm.read:
			tm.mu.Lock()
			seen = tm.out.String()
			tm.mu.Unlock()
			if !strings.Contains(seen[from:], text) {
				tm.t.Fatalf("the command ended (%v) without showing %q; it showed %q", tm.err, text, seen)
			}
			continue
		default:
		}
		if time.Now().After(deadline) {
			tm.t.Fatalf("the terminal never showed %q; it shows %q", text, seen)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (tm *terminal) send(s string) {
	tm.t.Helper()
	if _, err := tm.pty.Write([]byte(s)); err != nil {
		tm.t.Fatal(err)
	}
}

// exitCode waits for the command to end.
func (tm *terminal) exitCode() int {
	tm.t.Helper()
	<-tm.done
	var ee *exec.ExitError
	if tm.err != nil && !errors.As(tm.err, &ee) {
		tm.t.Fatal(tm.err)
	}
	return tm.cmd.ProcessState.ExitCode()
}

func TestRunInteractiveDetachAttachExit(t *testing.T) {
	s := newCLIStore(t)
	tm := s.terminal("run", "-it", "--network", "none", "--name", "box", "busybox", "sh")
	pos := tm.expect(0, "/ # ")
	tm.send("echo hi-$((40+2))\r")
	pos = tm.expect(pos, "hi-42")
	tm.send("\x10\x11") // ctrl-p ctrl-q
	if code := tm.exitCode(); code != 0 {
		t.Fatalf("run -it after the detach keys exited with %d", code)
	}
	if st := s.state("box"); !st.Running {
		t.Fatalf("detaching stopped the container: %+v", st)
	}

	// start -ai on a running container attaches, with other detach keys.
	tm = s.terminal("attach", "--detach-keys", "ctrl-a,d", "box")
	pos = tm.expect(0, "/ # ")
	tm.send("echo back-$((1+1))\r")
	pos = tm.expect(pos, "back-2")
	tm.send("\x01d")
	if code := tm.exitCode(); code != 1 {
		t.Fatalf("attach after the detach keys exited with %d, want docker's 1", code)
	}
	tm.expect(pos, "read escape sequence")

	// exit in the attached shell stops the container; attach returns its code.
	tm = s.terminal("attach", "box")
	pos = tm.expect(0, "/ # ")
	tm.send("exit 3\r")
	if code := tm.exitCode(); code != 3 {
		t.Fatalf("attach after exit 3 exited with %d", code)
	}
	if st := s.state("box"); st.Running || st.ExitCode != 3 {
		t.Fatalf("after exit: %+v", st)
	}

	// start -ai runs it again in this terminal.
	tm = s.terminal("start", "-ai", "box")
	tm.expect(0, "/ # ")
	tm.send("exit\r")
	if code := tm.exitCode(); code != 0 {
		t.Fatalf("start -ai then exit: %d", code)
	}
}

func TestRunInteractiveWithoutTerminal(t *testing.T) {
	s := newCLIStore(t)
	out, errOut, code := s.run("hello\nworld\n", "run", "-i", "--rm", "--network", "none", "busybox", "sh", "-c", "cat; echo done >&2; exit 5")
	if out != "hello\nworld\n" || errOut != "done\n" || code != 5 {
		t.Fatalf("run -i: stdout %q, stderr %q, exit %d", out, errOut, code)
	}
	if cs, _ := s.rt.Containers(context.Background()); len(cs) != 0 {
		t.Fatalf("--rm left %d containers", len(cs))
	}
	// -t needs a terminal for its input.
	_, errOut, code = s.run("", "run", "-it", "--network", "none", "busybox", "true")
	if code != 125 || !strings.Contains(errOut, "the input device is not a TTY") {
		t.Fatalf("run -it without a terminal: %d %q", code, errOut)
	}
}

var fullID = regexp.MustCompile(`^[0-9a-f]{64}\n$`)

func TestRunDetachedStartRestart(t *testing.T) {
	s := newCLIStore(t)
	out, errOut, code := s.run("", "run", "-d", "--network", "none", "--name", "web", "busybox", "sleep", "1000")
	if code != 0 || !fullID.MatchString(out) {
		t.Fatalf("run -d: %q %q %d", out, errOut, code)
	}
	first := s.state("web")
	if out, _, code := s.run("", "restart", "-t", "1", "web"); code != 0 || out != "web\n" {
		t.Fatalf("restart: %q %d", out, code)
	}
	st := s.state("web")
	if !st.Running || st.Pid == first.Pid || !st.StartedAt.After(first.StartedAt) {
		t.Fatalf("after restart: %+v (before %+v)", st, first)
	}
	if _, _, code := s.run("", "stop", "-t", "1", "web"); code != 0 {
		t.Fatalf("stop: %d", code)
	}
	if out, _, code := s.run("", "start", "web"); code != 0 || out != "web\n" || !s.state("web").Running {
		t.Fatalf("start: %q %d", out, code)
	}
	// An unknown container fails like docker.
	if _, errOut, code := s.run("", "restart", "nope"); code != 1 || !strings.Contains(errOut, "no such container: nope") {
		t.Fatalf("restart of an unknown container: %q %d", errOut, code)
	}
	// A bad --log-opt changes nothing.
	if _, errOut, code := s.run("", "run", "-d", "--network", "none", "--log-opt", "max-size=big", "busybox", "true"); code != 125 || !strings.Contains(errOut, "max-size") {
		t.Fatalf("bad --log-opt: %q %d", errOut, code)
	}
	if cs, _ := s.rt.Containers(context.Background()); len(cs) != 1 {
		t.Fatalf("a refused run left a container: %d", len(cs))
	}
}

var tsLine = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z (one|two)$`)

func TestLogsCLI(t *testing.T) {
	s := newCLIStore(t)
	if _, errOut, code := s.run("", "run", "-d", "--network", "none", "--name", "talk", "busybox", "sh", "-c", "echo one; echo two; echo oops >&2"); code != 0 {
		t.Fatalf("run -d: %q", errOut)
	}
	if out, _, code := s.run("", "wait", "talk"); code != 0 || out != "0\n" {
		t.Fatalf("wait: %q %d", out, code)
	}
	if out, errOut, code := s.run("", "logs", "talk"); code != 0 || out != "one\ntwo\n" || errOut != "oops\n" {
		t.Fatalf("logs: %q %q %d", out, errOut, code)
	}
	out, _, _ := s.run("", "logs", "-t", "talk")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 2 || !tsLine.MatchString(lines[0]) || !tsLine.MatchString(lines[1]) {
		t.Fatalf("logs -t: %q", out)
	}
	// The two streams are read apart, so which line is last varies.
	if out, errOut, _ := s.run("", "logs", "--tail", "1", "talk"); strings.Count(out+errOut, "\n") != 1 {
		t.Fatalf("logs --tail 1: %q %q", out, errOut)
	}
	if out, errOut, _ := s.run("", "logs", "-n", "0", "talk"); out+errOut != "" {
		t.Fatalf("logs -n 0: %q %q", out, errOut)
	}
	if out, errOut, _ := s.run("", "logs", "--since", "2099-01-01", "talk"); out+errOut != "" {
		t.Fatalf("logs --since the future: %q %q", out, errOut)
	}
	if out, _, _ := s.run("", "logs", "--until", "1h", "talk"); out != "" {
		t.Fatalf("logs --until an hour ago: %q", out)
	}
	if out, _, _ := s.run("", "logs", "--since", "1h", "-f", "talk"); out != "one\ntwo\n" {
		t.Fatalf("logs --since 1h -f of a stopped container: %q", out)
	}
	if _, errOut, code := s.run("", "logs", "--since", "yesterday", "talk"); code == 0 || !strings.Contains(errOut, "since") {
		t.Fatalf("bad --since: %q %d", errOut, code)
	}
	if _, errOut, code := s.run("", "logs", "--tail", "x", "talk"); code == 0 || !strings.Contains(errOut, "tail") {
		t.Fatalf("bad --tail: %q %d", errOut, code)
	}
}

func TestLogsFollowCLI(t *testing.T) {
	s := newCLIStore(t)
	if _, errOut, code := s.run("", "run", "-d", "--network", "none", "--name", "slow", "busybox", "sh", "-c",
		"echo ready; while [ ! -e /tmp/go ]; do sleep 0.02; done; echo after"); code != 0 {
		t.Fatalf("run -d: %q", errOut)
	}
	cmd := s.command("logs", "-f", "slow")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(stdout)
	if line, err := r.ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("first line %q, %v", line, err)
	}
	// Only now does the container write its next line.
	ctx := context.Background()
	c, err := s.rt.Container(ctx, "slow")
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.Exec(ctx, berth.ExecSpec{Cmd: []string{"touch", "/tmp/go"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(r)
	if err != nil || string(rest) != "after\n" {
		t.Fatalf("rest %q, %v", rest, err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("logs -f did not end cleanly when the container stopped: %v", err)
	}
}
