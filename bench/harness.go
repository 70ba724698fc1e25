package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	"github.com/berth-run/berth"
	"github.com/berth-run/berth/bench/pull"
	"github.com/berth-run/berth/internal/store"
	"github.com/berth-run/berth/internal/testutil"
)

// harness holds what the scenarios share: the scratch directory, berth's
// CLI and store, the local registry with the images, and the peers (set
// up on first use, torn down at the end).
type harness struct {
	ctx  context.Context
	opts options
	work string
	repo string // the berth repository (the main module's directory)
	tb   *tb    // the run's scope

	berth     *engine
	berthBin  string
	berthRoot string
	reg       *testutil.Registry
	// Images in the local registry, pushed by berth: busybox and the
	// four-layer Debian+Redis image of the pull scenario.
	busybox, redis string
	bundleDir      string // the bare runtimes' bundle (bundle())

	mu    sync.Mutex
	peers map[string]*peer
}

func newHarness(ctx context.Context, o options) (_ *harness, err error) {
	h := &harness{ctx: ctx, opts: o, peers: map[string]*peer{}}
	if h.repo, err = repoDir(); err != nil {
		return nil, err
	}
	if o.work != "" {
		h.work = o.work
		err = os.MkdirAll(h.work, 0o755)
	} else {
		h.work, err = os.MkdirTemp("", "berth-bench-")
	}
	if err != nil {
		return nil, err
	}
	h.tb = newTB(ctx, "setup", h.work, os.Stdout)
	if !o.keep {
		h.tb.Cleanup(func() { store.RemoveAll(h.work) })
	}
	if o.install {
		if err := installPeers(h.logf); err != nil {
			h.logf("installing peers: %v (the missing ones are skipped)", err)
		}
	}
	if err := h.tb.do(h.setup); err != nil {
		h.close()
		return nil, err
	}
	return h, nil
}

// setup builds the berth CLI, starts the registry and pushes the images.
func (h *harness) setup() {
	t := h.tb
	bin := h.opts.berth
	if bin == "" {
		bin = filepath.Join(h.work, "bin", "berth")
		h.logf("building berth (CGO_ENABLED=0 go build ./examples/berth)")
		cmd := exec.Command("go", "build", "-o", bin, "./examples/berth")
		cmd.Dir = h.repo
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("build berth: %v\n%s", err, out)
		}
	}
	h.berthBin = bin
	root, run := filepath.Join(h.work, "berth", "root"), filepath.Join(h.work, "berth", "run")
	h.berthRoot = root
	// The library in this process (berth.Default, which berthtest uses)
	// opens the same store.
	t.Setenv("BERTH_ROOT", root)
	t.Setenv("BERTH_RUNROOT", run)
	h.berth = &engine{name: "berth", command: func(args ...string) *exec.Cmd {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "BERTH_ROOT="+root, "BERTH_RUNROOT="+run)
		return cmd
	}}
	t.Cleanup(func() {
		// Whatever a failed scenario left.
		if ids, err := h.berth.try("ps", "-aq"); err == nil && strings.TrimSpace(ids) != "" {
			h.berth.try(append([]string{"rm", "-f"}, strings.Fields(ids)...)...)
		}
	})

	h.reg = testutil.StartRegistry(t, testutil.RegistryOptions{})
	h.logf("registry on %s", h.reg.Addr)
	h.busybox = h.reg.Addr + "/bench/busybox:latest"
	h.berth.run(t, "import", testutil.BusyboxTar(t), h.busybox)
	h.berth.run(t, "push", "-q", h.busybox)

	// The pull fixture is made through the library, in a store of its
	// own (the redis fixture it starts from is built or loaded there).
	h.logf("the Debian+Redis image (made once, cached)")
	src := filepath.Join(h.work, "fixture")
	rt, err := berth.Open(h.ctx, berth.WithRoot(filepath.Join(src, "root")), berth.WithRunRoot(filepath.Join(src, "run")))
	if err != nil {
		t.Fatal(err)
	}
	archive, err := pull.Fixture(h.ctx, rt)
	rt.Close()
	store.RemoveAll(src)
	if err != nil {
		t.Fatalf("pull fixture: %v", err)
	}
	h.redis = h.reg.Addr + "/" + pull.Ref
	h.berth.run(t, "load", "-q", "-i", archive)
	h.berth.run(t, "tag", pull.Ref, h.redis)
	h.berth.run(t, "push", "-q", h.redis)
	h.berth.run(t, "rmi", pull.Ref)
}

func (h *harness) close() { h.tb.close() }

func (h *harness) logf(format string, args ...any) {
	fmt.Printf(format+"\n", args...)
}

// repoDir finds the berth repository: the nearest directory up from the
// working directory whose go.mod is the main module's.
func repoDir() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.HasPrefix(b, []byte("module github.com/berth-run/berth\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run bench from the berth repository (no go.mod of github.com/berth-run/berth above the working directory)")
		}
		dir = parent
	}
}

// engine is a docker-like command line: berth's, podman's or docker's.
type engine struct {
	name    string
	command func(args ...string) *exec.Cmd
	// pull are the flags its pull needs to use the local registry.
	pull []string
}

// try runs the engine with args and returns its standard output, or an
// error with its standard error.
func (e *engine) try(args ...string) (string, error) {
	cmd := e.command(args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %w: %s", e.name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// run is try that fails the scenario on an error.
func (e *engine) run(t *tb, args ...string) string {
	out, err := e.try(args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// time runs the engine with args and returns how long it took in ms.
func (e *engine) time(t *tb, args ...string) float64 {
	var err error
	d := timed(func() { _, err = e.try(args...) })
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// ensure makes image ref present in the engine's store (pulled from the
// local registry).
func (e *engine) ensure(t *tb, ref string) {
	if _, err := e.try("image", "inspect", ref); err == nil {
		return
	}
	e.run(t, append(append([]string{"pull", "-q"}, e.pull...), ref)...)
}
