package cgroup

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The tests' processes are this test binary run again with childEnv set:
// TestMain sees the marker and plays the part, so no external tool is
// needed. A child waits for one byte on stdin before it starts, so that
// the test can put it into a cgroup first.
const childEnv = "BERTH_CGROUP_TEST_CHILD"

func TestMain(m *testing.M) {
	if role := os.Getenv(childEnv); role != "" {
		os.Exit(runChild(role))
	}
	os.Exit(m.Run())
}

func runChild(role string) int {
	var go1 [1]byte
	if _, err := os.Stdin.Read(go1[:]); err != nil {
		return 3
	}
	switch {
	case role == "spin":
		for {
		}
	case role == "sleep":
		time.Sleep(time.Hour)
		return 0
	case strings.HasPrefix(role, "alloc:"):
		n, _ := strconv.Atoi(strings.TrimPrefix(role, "alloc:"))
		var chunks [][]byte
		for got := 0; got < n; got += 1 << 20 {
			c := make([]byte, 1<<20)
			for i := 0; i < len(c); i += 4096 {
				c[i] = 1
			}
			chunks = append(chunks, c)
		}
		fmt.Println("survived", len(chunks))
		return 0
	case role == "forkbomb":
		return forkBomb()
	case strings.HasPrefix(role, "open:"):
		f, err := os.OpenFile(strings.TrimPrefix(role, "open:"), os.O_RDONLY, 0)
		if err != nil {
			fmt.Println("error", err)
			return 0
		}
		f.Close()
		fmt.Println("ok")
		return 0
	}
	return 2
}

// forkBomb forks single-threaded copies of itself that only wait, until
// fork fails, and reports how it went: "forked N eagain M". Raw clone(2)
// is used because a Go program cannot fork(2) safely otherwise and os/exec
// children are multi-threaded Go programs too; the copies run only
// nosplit code that makes raw system calls, so they never need the
// runtime. After reporting, the bomb waits the same way.
func forkBomb() int {
	runtime.LockOSThread()
	forked, eagain := 0, 0
	var other syscall.Errno
	for i := 0; i < 64 && eagain < 8; i++ {
		pid, errno := rawFork()
		switch {
		case errno == syscall.EAGAIN:
			eagain++
		case errno != 0:
			other = errno
		case pid == 0:
			waitForever()
		default:
			forked++
		}
	}
	fmt.Printf("forked %d eagain %d other %d\n", forked, eagain, int(other))
	os.Stdout.Sync()
	waitForever()
	return 0
}

// child is a re-executed test binary in a role.
type child struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *bufio.Reader
	done   chan struct{}
	err    error // Wait's result, once done is closed
}

// startChild starts the test binary in role; it waits for release. The
// child is killed and reaped at the end of the test.
func startChild(t *testing.T, role string, env ...string) *child {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(append(os.Environ(), childEnv+"="+role), env...)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	// Our own pipe rather than StdoutPipe: Wait (in the goroutine below)
	// must not close what the test still reads.
	out, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = w
	err = cmd.Start()
	w.Close()
	if err != nil {
		out.Close()
		t.Fatal(err)
	}
	c := &child{cmd: cmd, stdin: in, stdout: bufio.NewReader(out), done: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-c.done
		out.Close()
	})
	return c
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// release lets the child start its part.
func (c *child) release(t *testing.T) {
	t.Helper()
	if _, err := c.stdin.Write([]byte{1}); err != nil {
		t.Fatalf("release child: %v", err)
	}
}

// line reads one line the child printed.
func (c *child) line(t *testing.T) string {
	t.Helper()
	s, err := c.stdout.ReadString('\n')
	if err != nil && s == "" {
		t.Fatalf("read child output: %v", err)
	}
	return strings.TrimSpace(s)
}

// wait waits for the child to exit and returns its wait status.
func (c *child) wait(t *testing.T, d time.Duration) syscall.WaitStatus {
	t.Helper()
	select {
	case <-c.done:
	case <-time.After(d):
		t.Fatalf("child %d did not exit within %v", c.pid(), d)
	}
	return c.cmd.ProcessState.Sys().(syscall.WaitStatus)
}

// exited reports whether the child has exited.
func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// cpuTicks is the user+system time of process pid in clock ticks.
func cpuTicks(t *testing.T, pid int) uint64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	fs := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	// fields after the command: state(0) ... utime(11) stime(12)
	u, _ := strconv.ParseUint(fs[11], 10, 64)
	st, _ := strconv.ParseUint(fs[12], 10, 64)
	return u + st
}

// uniqueName is a fresh cgroup name for a test.
func uniqueName(t *testing.T) string {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return "berth-test-" + hex.EncodeToString(b[:])
}
