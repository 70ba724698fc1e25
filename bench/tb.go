package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// tb is the testing.TB the harness hands to the helpers it shares with
// berth's tests (internal/testutil's peers and registry, berthtest's
// services). Fatal and Skip unwind the scenario with a panic that
// (*tb).do recovers; cleanups run, last first, when the scope closes.
type tb struct {
	testing.TB // nil; present for TB's unexported method only: every method is implemented below

	name string
	dir  string // parent of TempDir's directories
	ctx  context.Context
	log  io.Writer

	mu       sync.Mutex
	cleanups []func()
	failed   bool
	skipped  bool
	ntemp    int
}

// stop is what Fatal and Skip panic with.
type stop struct {
	skip bool
	msg  string
}

func newTB(ctx context.Context, name, dir string, log io.Writer) *tb {
	return &tb{name: name, dir: dir, ctx: ctx, log: log}
}

// do runs fn and returns its Fatal or Skip as an error (a skip's error is
// a *skipError).
func (t *tb) do(fn func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			s, ok := r.(stop)
			if !ok {
				panic(r)
			}
			if s.skip {
				err = &skipError{s.msg}
			} else {
				err = fmt.Errorf("%s", s.msg)
			}
		}
	}()
	fn()
	return nil
}

// skipError is a scenario or contender that cannot run here.
type skipError struct{ why string }

func (e *skipError) Error() string { return "skipped: " + e.why }

// close runs the cleanups, last registered first.
func (t *tb) close() {
	for {
		t.mu.Lock()
		n := len(t.cleanups)
		if n == 0 {
			t.mu.Unlock()
			return
		}
		f := t.cleanups[n-1]
		t.cleanups = t.cleanups[:n-1]
		t.mu.Unlock()
		if err := t.do(f); err != nil {
			t.Logf("cleanup: %v", err)
		}
	}
}

func (t *tb) ArtifactDir() string    { return t.TempDir() }
func (t *tb) Attr(key, value string) {}
func (t *tb) Cleanup(f func()) {
	t.mu.Lock()
	t.cleanups = append(t.cleanups, f)
	t.mu.Unlock()
}
func (t *tb) Error(args ...any)                 { t.Log(args...); t.Fail() }
func (t *tb) Errorf(format string, args ...any) { t.Logf(format, args...); t.Fail() }
func (t *tb) Fail()                             { t.mu.Lock(); t.failed = true; t.mu.Unlock() }
func (t *tb) FailNow()                          { t.Fail(); panic(stop{msg: "failed"}) }
func (t *tb) Failed() bool                      { t.mu.Lock(); defer t.mu.Unlock(); return t.failed }
func (t *tb) Fatal(args ...any)                 { t.Fail(); panic(stop{msg: fmt.Sprint(args...)}) }
func (t *tb) Fatalf(format string, args ...any) {
	t.Fail()
	panic(stop{msg: fmt.Sprintf(format, args...)})
}
func (t *tb) Helper()                         {}
func (t *tb) Log(args ...any)                 { fmt.Fprintf(t.log, "  %s: %s\n", t.name, fmt.Sprint(args...)) }
func (t *tb) Logf(format string, args ...any) { t.Log(fmt.Sprintf(format, args...)) }
func (t *tb) Name() string                    { return t.name }
func (t *tb) Setenv(key, value string) {
	old, had := os.LookupEnv(key)
	os.Setenv(key, value)
	t.Cleanup(func() {
		if had {
			os.Setenv(key, old)
		} else {
			os.Unsetenv(key)
		}
	})
}
func (t *tb) Chdir(dir string) { panic("bench: Chdir is not supported") }
func (t *tb) Skip(args ...any) { t.skipped = true; panic(stop{skip: true, msg: fmt.Sprint(args...)}) }
func (t *tb) SkipNow()         { t.Skip("skipped") }
func (t *tb) Skipf(format string, args ...any) {
	t.Skip(fmt.Sprintf(format, args...))
}
func (t *tb) Skipped() bool { return t.skipped }
func (t *tb) TempDir() string {
	t.mu.Lock()
	t.ntemp++
	d := filepath.Join(t.dir, fmt.Sprintf("%s-%d", t.name, t.ntemp))
	t.mu.Unlock()
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}
func (t *tb) Context() context.Context { return t.ctx }
func (t *tb) Output() io.Writer        { return t.log }
