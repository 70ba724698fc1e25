package berth_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/berth-run/berth"
)

// syncBuffer is a bytes.Buffer safe for a writer and a reader at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestAttachToDetachedContainer(t *testing.T) {
	rt := detachedRuntime(t)
	ctx := context.Background()
	spec := busybox("cat")
	spec.OpenStdin = true
	c := runDetached(t, rt, spec)

	// Detach with the keys: the container keeps running.
	in, inW := io.Pipe()
	var out syncBuffer
	a, err := c.Attach(ctx, berth.AttachOptions{Stdin: in, Stdout: &out, DetachKeys: "ctrl-a,d"})
	if err != nil {
		t.Fatal(err)
	}
	go inW.Write([]byte("hello\n"))
	eventually(t, "the echo", func() bool { return out.String() == "hello\n" })
	go inW.Write([]byte("x\x01d"))
	if err := a.Wait(ctx); !errors.Is(err, berth.ErrDetached) {
		t.Fatalf("wait after the detach keys: %v", err)
	}
	if a.ExitCode() != -1 {
		t.Fatalf("exit code of a detached attachment: %d", a.ExitCode())
	}
	if st := stateOf(t, c); !st.Running {
		t.Fatalf("after detaching: %+v", st)
	}

	// Attach again: input reaches it, and the end of our input with
	// CloseStdin ends cat, whose exit code the attachment reports.
	var out2 syncBuffer
	a2, err := c.Attach(ctx, berth.AttachOptions{Stdin: strings.NewReader("again\n"), Stdout: &out2, CloseStdin: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := a2.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	// "x" went to the container before the detach keys; whether its echo
	// comes before the second attachment or not is a race. The log has it.
	if got := out2.String(); got != "again\n" && got != "xagain\n" {
		t.Fatalf("second attachment read %q", got)
	}
	if a2.ExitCode() != 0 {
		t.Fatalf("exit code %d", a2.ExitCode())
	}
	if got := logText(t, c); got != "hello\nxagain\n" {
		t.Fatalf("log %q", got)
	}
}

func TestAttachBeforeStartSeesAllOutput(t *testing.T) {
	rt := detachedRuntime(t)
	ctx := context.Background()
	c, err := rt.Create(ctx, busybox("sh", "-c", "echo out; echo err >&2; exit 4"))
	if err != nil {
		t.Fatal(err)
	}
	var out, errOut syncBuffer
	a, err := c.Attach(ctx, berth.AttachOptions{Stdout: &out, Stderr: &errOut})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx, berth.WithDetach()); err != nil {
		t.Fatal(err)
	}
	if err := a.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if out.String() != "out\n" || errOut.String() != "err\n" || a.ExitCode() != 4 {
		t.Fatalf("stdout %q, stderr %q, exit %d", out.String(), errOut.String(), a.ExitCode())
	}

	// Input sent before the start reaches the container once it runs.
	spec := busybox("cat")
	spec.OpenStdin = true
	c, err = rt.Create(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	var echoed syncBuffer
	a, err = c.Attach(ctx, berth.AttachOptions{Stdin: strings.NewReader("early\n"), Stdout: &echoed, CloseStdin: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx, berth.WithDetach()); err != nil {
		t.Fatal(err)
	}
	if err := a.Wait(ctx); err != nil || echoed.String() != "early\n" || a.ExitCode() != 0 {
		t.Fatalf("early input: %q, exit %d, %v", echoed.String(), a.ExitCode(), err)
	}
}

func TestAttachToForegroundContainer(t *testing.T) {
	rt := detachedRuntime(t)
	ctx := context.Background()
	spec := busybox("cat")
	spec.OpenStdin = true
	c, err := rt.Run(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	var out syncBuffer
	a, err := c.Attach(ctx, berth.AttachOptions{Stdin: strings.NewReader("local\n"), Stdout: &out, CloseStdin: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if out.String() != "local\n" || a.ExitCode() != 0 {
		t.Fatalf("read %q, exit %d", out.String(), a.ExitCode())
	}
	// Another handle in another process cannot reach its streams.
	c2, err := rt.Run(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	other, err := rt.Container(ctx, c2.ID())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Attach(ctx, berth.AttachOptions{Stdout: &out}); !errors.Is(err, berth.ErrNotSupported) {
		t.Fatalf("attach through another handle: %v", err)
	}
}

func TestAttachBadInput(t *testing.T) {
	rt := detachedRuntime(t)
	ctx := context.Background()
	c, err := rt.Create(ctx, busybox("true"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Attach(ctx, berth.AttachOptions{DetachKeys: "ctrl-"}); !errors.Is(err, berth.ErrInvalid) {
		t.Fatalf("bad detach keys: %v", err)
	}
	if err := c.Resize(ctx, 80, 24); !errors.Is(err, berth.ErrNotRunning) {
		t.Fatalf("resize of a created container: %v", err)
	}
}

func TestResizeThroughMonitor(t *testing.T) {
	rt := detachedRuntime(t)
	ctx := context.Background()
	spec := busybox("sh", "-c", "while :; do stty size; sleep 0.05; done")
	spec.Tty = true
	c := runDetached(t, rt, spec)
	if err := c.Resize(ctx, 123, 45); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the new size", func() bool { return strings.Contains(logText(t, c), "45 123") })
	nontty := runDetached(t, rt, busybox("sleep", "1000"))
	if err := nontty.Resize(ctx, 80, 24); !errors.Is(err, berth.ErrInvalid) {
		t.Fatalf("resize without a terminal: %v", err)
	}
}
