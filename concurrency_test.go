package berth_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"testing"

	"github.com/berth-run/berth"
	"github.com/berth-run/berth/internal/testutil"
)

func TestMain(m *testing.M) {
	if w := os.Getenv("BERTH_TEST_WORKER"); w != "" {
		os.Exit(runWorker(w))
	}
	os.Exit(m.Run())
}

// runWorker is the body of a worker process the tests start by running
// the test binary again.
func runWorker(kind string) int {
	ctx := context.Background()
	rt, err := berth.Open(ctx, berth.WithRoot(os.Getenv("BERTH_TEST_ROOT")), berth.WithRunRoot(os.Getenv("BERTH_TEST_RUNROOT")))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer rt.Close()
	switch kind {
	case "images":
		if err := imageChurn(ctx, rt, os.Getenv("BERTH_TEST_NAME"), os.Getenv("BERTH_TEST_TAR")); err != nil {
			fmt.Fprintln(os.Stderr, "worker:", err)
			return 1
		}
		return 0
	case "netrun": // network_test.go: containers on one network at once
		if err := netRunWorker(ctx, rt); err != nil {
			fmt.Fprintln(os.Stderr, "worker:", err)
			return 1
		}
		return 0
	case "pull": // pull_test.go: pull BERTH_TEST_REF
		if _, err := rt.Pull(ctx, os.Getenv("BERTH_TEST_REF")); err != nil {
			fmt.Fprintln(os.Stderr, "worker:", err)
			return 1
		}
		return 0
	case "detach", "die-with-creator": // monitor_linux_test.go
		return monitorWorker(ctx, rt, kind)
	}
	fmt.Fprintln(os.Stderr, "unknown worker", kind)
	return 2
}

// imageChurn imports, tags, retags and removes images in a loop. Races
// with other workers may make a name vanish or an image be shared; those
// give ErrNotFound or ErrConflict and are fine. Anything else is not.
func imageChurn(ctx context.Context, rt *berth.Runtime, me, tarPath string) error {
	benign := func(err error) bool {
		return err == nil || errors.Is(err, berth.ErrNotFound) || errors.Is(err, berth.ErrConflict)
	}
	for i := 0; i < 15; i++ {
		f, err := os.Open(tarPath)
		if err != nil {
			return err
		}
		name := me + ":" + strconv.Itoa(i)
		_, err = rt.Import(ctx, f, name)
		f.Close()
		if err != nil {
			return fmt.Errorf("import %s: %w", name, err)
		}
		if err := rt.Tag(ctx, name, "shared:latest"); !benign(err) {
			return fmt.Errorf("tag: %w", err)
		}
		if i > 0 {
			if _, err := rt.RemoveImage(ctx, me+":"+strconv.Itoa(i-1)); !benign(err) {
				return fmt.Errorf("rmi: %w", err)
			}
		}
		if i%5 == 4 {
			if _, _, err := rt.PruneImages(ctx, false); !benign(err) {
				return fmt.Errorf("prune: %w", err)
			}
		}
		if _, err := rt.Images(ctx); err != nil {
			return fmt.Errorf("images: %w", err)
		}
	}
	return nil
}

func TestConcurrentProcessesShareOneStore(t *testing.T) {
	testutil.RequiresRoot(t)
	rt := newRuntime(t)
	tarPath := testutil.BusyboxTar(t)
	var cmds []*exec.Cmd
	for i := 0; i < 2; i++ {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "BERTH_TEST_WORKER=images", "BERTH_TEST_ROOT="+rt.Root(),
			"BERTH_TEST_RUNROOT="+rt.RunRoot(), "BERTH_TEST_NAME=w"+strconv.Itoa(i), "BERTH_TEST_TAR="+tarPath)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	for _, c := range cmds {
		if err := c.Wait(); err != nil {
			t.Errorf("worker: %v", err)
		}
	}
	assertConsistent(t, rt)
	images, err := rt.Images(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// Each worker keeps its last import; "shared" points at one of them.
	names := map[string]bool{}
	for _, im := range images {
		for _, tag := range im.Tags() {
			names[tag] = true
		}
	}
	for _, want := range []string{"w0:14", "w1:14", "shared:latest"} {
		if !names[want] {
			t.Errorf("tag %s missing; have %v", want, names)
		}
	}
}
