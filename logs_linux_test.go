package berth_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/berth-run/berth"
)

// execIn runs cmd in c and fails the test unless it exits with 0.
func execIn(t *testing.T, c *berth.Container, cmd ...string) {
	t.Helper()
	ctx := context.Background()
	p, err := c.Exec(ctx, berth.ExecSpec{Cmd: cmd})
	if err != nil {
		t.Fatal(err)
	}
	if code, err := p.Wait(ctx); err != nil || code != 0 {
		st, _ := c.State(ctx)
		t.Fatalf("exec %v: %d, %v; the container is %+v", cmd, code, err, st)
	}
}

func TestLogsFollowStreamsAndEndsWithTheContainer(t *testing.T) {
	rt := detachedRuntime(t)
	ctx := context.Background()
	c := runDetached(t, rt, busybox("sh", "-c", "echo one; while [ ! -e /tmp/go ]; do sleep 0.02; done; echo two; echo three >&2"))
	got := map[string]string{}
	err := c.LogEntries(ctx, berth.LogsOptions{Follow: true}, func(e berth.LogEntry) error {
		got[e.Stream] += string(e.Line)
		if string(e.Line) == "one\n" {
			// "two" is written only after "one" was received.
			execIn(t, c, "touch", "/tmp/go")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The two streams are read apart: each keeps its order.
	if got["stdout"] != "one\ntwo\n" || got["stderr"] != "three\n" {
		t.Fatalf("followed %q", got)
	}
	if st := stateOf(t, c); st.Running {
		t.Fatalf("follow ended while the container runs: %+v", st)
	}
}

var timestamped = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z [abc]\n$`)

func TestLogsOutputShapes(t *testing.T) {
	rt := detachedRuntime(t)
	ctx := context.Background()
	spec := busybox("sh", "-c", "echo a; echo b; echo c; echo e >&2")
	spec.Labels = map[string]string{"team": "blue green", "other": "x"}
	spec.Env = []string{"STAGE=test"}
	spec.LogConfig = berth.LogConfig{Config: map[string]string{"labels": "team", "env": "STAGE"}}
	c := runDetached(t, rt, spec)
	if _, err := c.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	logs := func(o berth.LogsOptions) (string, string) {
		t.Helper()
		var out, errOut syncBuffer
		o.Stdout, o.Stderr = &out, &errOut
		if err := c.Logs(ctx, o); err != nil {
			t.Fatal(err)
		}
		return out.String(), errOut.String()
	}
	if out, errOut := logs(berth.LogsOptions{}); out != "a\nb\nc\n" || errOut != "e\n" {
		t.Fatalf("logs: stdout %q, stderr %q", out, errOut)
	}
	out, _ := logs(berth.LogsOptions{Timestamps: true})
	lines := strings.SplitAfter(out, "\n")
	lines = lines[:len(lines)-1]
	if len(lines) != 3 {
		t.Fatalf("logs -t: %q", out)
	}
	for _, l := range lines {
		if !timestamped.MatchString(l) {
			t.Errorf("logs -t line %q is not docker's shape", l)
		}
	}
	if out, _ := logs(berth.LogsOptions{Details: true}); !strings.HasPrefix(out, "STAGE=test,team=blue+green a\n") {
		t.Fatalf("logs --details: %q", out)
	}
	// Entries of one stream, for --tail, --since and --until.
	c = runDetached(t, rt, busybox("sh", "-c", "echo a; echo b; echo c; echo d"))
	if _, err := c.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	tail := func(n int) *int { return &n }
	var entries []berth.LogEntry
	if err := c.LogEntries(ctx, berth.LogsOptions{}, func(e berth.LogEntry) error {
		entries = append(entries, e)
		return nil
	}); err != nil || len(entries) != 4 {
		t.Fatalf("entries: %d, %v", len(entries), err)
	}
	// --tail counts entries from the end.
	all := func(o berth.LogsOptions) string {
		var sb strings.Builder
		if err := c.LogEntries(ctx, o, func(e berth.LogEntry) error { sb.Write(e.Line); return nil }); err != nil {
			t.Fatal(err)
		}
		return sb.String()
	}
	last := string(entries[3].Line)
	if got := all(berth.LogsOptions{Tail: tail(1)}); got != last {
		t.Errorf("tail 1: %q, want %q", got, last)
	}
	if got := all(berth.LogsOptions{Tail: tail(0)}); got != "" {
		t.Errorf("tail 0: %q", got)
	}
	if got := all(berth.LogsOptions{Tail: tail(100)}); strings.Count(got, "\n") != 4 {
		t.Errorf("tail 100: %q", got)
	}
	// --since is inclusive, --until exclusive.
	if got := all(berth.LogsOptions{Since: entries[1].Time}); got != string(entries[1].Line)+string(entries[2].Line)+last {
		t.Errorf("since: %q", got)
	}
	if got := all(berth.LogsOptions{Until: entries[1].Time}); got != string(entries[0].Line) {
		t.Errorf("until: %q", got)
	}
	// Bad input is refused.
	if err := c.Logs(ctx, berth.LogsOptions{Tail: tail(-1)}); !errors.Is(err, berth.ErrInvalid) {
		t.Errorf("tail -1: %v", err)
	}
	if err := c.Logs(ctx, berth.LogsOptions{Since: entries[2].Time, Until: entries[0].Time}); !errors.Is(err, berth.ErrInvalid) {
		t.Errorf("until before since: %v", err)
	}
}

// logLines are the container's log lines, in order.
func logLines(t *testing.T, c *berth.Container) []string {
	t.Helper()
	return strings.Fields(logText(t, c))
}

func TestLogRotation(t *testing.T) {
	rt := detachedRuntime(t)
	ctx := context.Background()
	spec := busybox("sh", "-c", "i=0; while [ $i -lt 200 ]; do echo line-$i; i=$((i+1)); done")
	spec.LogConfig = berth.LogConfig{Type: berth.LogDriverJSONFile, Config: map[string]string{"max-size": "1k", "max-file": "3"}}
	c := runDetached(t, rt, spec)
	if _, err := c.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(rt.Root(), "containers", c.ID(), "container-json.log*"))
	if len(files) != 3 {
		t.Fatalf("log files %v, want the current one and 2 rotated", files)
	}
	for _, f := range files {
		if fi, err := os.Stat(f); err != nil || fi.Size() > 1024 {
			t.Errorf("%s: %v bytes, over max-size (%v)", f, fi.Size(), err)
		}
	}
	lines := logLines(t, c)
	if len(lines) == 0 || len(lines) >= 200 || lines[len(lines)-1] != "line-199" {
		t.Fatalf("kept %d lines ending %q", len(lines), lines[len(lines)-1])
	}
	first := 200 - len(lines)
	for i, l := range lines {
		if l != fmt.Sprintf("line-%d", first+i) {
			t.Fatalf("line %d is %q: the kept lines are not consecutive", i, l)
		}
	}
}

func TestLogsFollowAcrossRotation(t *testing.T) {
	rt := detachedRuntime(t)
	ctx := context.Background()
	spec := busybox("sh", "-c", "echo ready; while [ ! -e /tmp/go ]; do sleep 0.02; done; i=0; while [ $i -lt 100 ]; do echo line-$i; i=$((i+1)); done")
	spec.LogConfig = berth.LogConfig{Config: map[string]string{"max-size": "1k", "max-file": "50"}}
	c := runDetached(t, rt, spec)
	var got []string
	err := c.LogEntries(ctx, berth.LogsOptions{Follow: true}, func(e berth.LogEntry) error {
		got = append(got, strings.TrimSpace(string(e.Line)))
		if len(got) == 1 {
			execIn(t, c, "touch", "/tmp/go")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 101 || got[0] != "ready" {
		t.Fatalf("followed %d lines: %q", len(got), got)
	}
	for i, l := range got[1:] {
		if l != fmt.Sprintf("line-%d", i) {
			t.Fatalf("line %d is %q", i, l)
		}
	}
	files, _ := filepath.Glob(filepath.Join(rt.Root(), "containers", c.ID(), "container-json.log.*"))
	if len(files) < 2 {
		t.Fatalf("the log rotated into %d files only", len(files))
	}
}

func TestLogConfigIsChecked(t *testing.T) {
	rt := detachedRuntime(t)
	ctx := context.Background()
	for _, cfg := range []berth.LogConfig{
		{Type: "syslog"},
		{Config: map[string]string{"max-size": "big"}},
		{Config: map[string]string{"max-file": "0"}},
		{Config: map[string]string{"nonsense": "1"}},
		{Type: berth.LogDriverNone, Config: map[string]string{"max-size": "1m"}},
	} {
		spec := busybox("true")
		spec.LogConfig = cfg
		if _, err := rt.Create(ctx, spec); !errors.Is(err, berth.ErrInvalid) {
			t.Errorf("create with %+v: %v, want ErrInvalid", cfg, err)
		}
	}
	if cs, err := rt.Containers(ctx); err != nil || len(cs) != 0 {
		t.Fatalf("refused creates left %d containers (%v)", len(cs), err)
	}
	spec := busybox("echo", "hidden")
	spec.LogConfig.Type = berth.LogDriverNone
	c := runDetached(t, rt, spec)
	if _, err := c.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Logs(ctx, berth.LogsOptions{}); !errors.Is(err, berth.ErrNotSupported) {
		t.Fatalf("logs of a none driver: %v", err)
	}
	if _, err := os.Stat(filepath.Join(rt.Root(), "containers", c.ID(), "container-json.log")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the none driver wrote a log: %v", err)
	}
}
