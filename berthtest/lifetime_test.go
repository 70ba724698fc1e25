package berthtest_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/berth-run/berth"
	"github.com/berth-run/berth/berthtest"
	"github.com/berth-run/berth/internal/testutil"
)

// workerEnv makes the test binary a worker of a test that runs it as a
// child process: the Test*Worker tests act only when it is set.
const workerEnv = "BERTHTEST_TEST_WORKER"

func TestShared(t *testing.T) {
	useFixtures(t)
	var ids []string
	for i := range 2 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			ids = append(ids, berthtest.Redis(t, berthtest.Shared()).ID())
		})
	}
	other := berthtest.Redis(t, berthtest.Shared(), berthtest.WithPassword("x"))
	if ids[0] != ids[1] {
		t.Fatalf("two Shared() Redis: %s and %s", ids[0], ids[1])
	}
	if other.ID() == ids[0] {
		t.Fatal("Shared() Redis with other options got the same container")
	}
	// Still there after the subtests ended.
	c, err := store(t).Container(context.Background(), ids[0])
	if err != nil {
		t.Fatal(err)
	}
	if st, err := c.State(context.Background()); err != nil || !st.Running {
		t.Fatalf("the shared container after its tests: %+v, %v", st, err)
	}
}

// startWorker runs this test binary's test name as a worker and returns
// it with its standard output.
func startWorker(t *testing.T, name, mode string) (*exec.Cmd, *bufio.Scanner) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+name+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), workerEnv+"="+mode)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, bufio.NewScanner(out)
}

// TestKillWorker starts a Redis of its own and a shared one, prints
// their IDs and waits to be killed.
func TestKillWorker(t *testing.T) {
	if os.Getenv(workerEnv) != "killed" {
		return // run by TestKilledTestBinary
	}
	own := berthtest.Redis(t)
	shared := berthtest.Redis(t, berthtest.Shared())
	fmt.Printf("CONTAINERS %s %s\n", own.ID(), shared.ID())
	select {}
}

func TestKilledTestBinary(t *testing.T) {
	useFixtures(t)
	cmd, out := startWorker(t, "TestKillWorker", "killed")
	var ids []string
	for out.Scan() {
		if f := strings.Fields(out.Text()); len(f) == 3 && f[0] == "CONTAINERS" {
			ids = f[1:]
			break
		}
	}
	if ids == nil {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatal("the worker printed no containers")
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()

	// The next Open removes the worker's own container; the store's
	// monitor removes the shared one once its creator is gone.
	rt, err := berth.Open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	containerGone(t, rt, ids[0])
	deadline := time.Now().Add(time.Minute)
	for {
		if _, err := rt.Container(context.Background(), ids[1]); err != nil {
			break
		}
		if time.Now().After(deadline) {
			containerGone(t, rt, ids[1])
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestParallelWorker uses a Redis and a MariaDB of its own.
func TestParallelWorker(t *testing.T) {
	if os.Getenv(workerEnv) != "parallel" {
		return // run by TestParallelTestBinaries
	}
	rdb := berthtest.Redis(t)
	client := redis.NewClient(&redis.Options{Addr: rdb.Addr()})
	defer client.Close()
	if err := client.Set(context.Background(), "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	m := berthtest.MariaDB(t)
	db := openDB(t, m.DSN())
	if _, err := db.Exec("CREATE TABLE t (a INT)"); err != nil {
		t.Fatal(err)
	}
	fmt.Println("WORKER OK")
}

func TestParallelTestBinaries(t *testing.T) {
	useFixtures(t)
	const n = 4
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		cmd, out := startWorker(t, "TestParallelWorker", "parallel")
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok := false
			for out.Scan() {
				ok = ok || out.Text() == "WORKER OK"
			}
			if err := cmd.Wait(); err != nil || !ok {
				errs[i] = fmt.Errorf("worker %d: %v (ok=%v)", i, err, ok)
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	ctrs, err := store(t).Containers(context.Background(), berth.ListFilter("label", "run.berth.test=TestParallelWorker"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ctrs) != 0 {
		t.Errorf("%d containers of the workers are left", len(ctrs))
	}
}

// TestOtherModule runs the tests of examples/berthtest, a module of its
// own that uses berthtest as a user would, with several test packages
// run in parallel against this store. It runs a copy, whose go.mod
// points at this checkout, with -mod=mod: the dependencies berth adds
// later must not need an edit of the example's go.sum first.
func TestOtherModule(t *testing.T) {
	useFixtures(t)
	goBin := testutil.RequiresCommand(t, "go")
	repo, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "berthtest")
	if err := os.CopyFS(dir, os.DirFS(filepath.Join(repo, "examples", "berthtest"))); err != nil {
		t.Fatal(err)
	}
	edit := exec.Command(goBin, "mod", "edit", "-replace", "github.com/berth-run/berth="+repo)
	edit.Dir = dir
	if out, err := edit.CombinedOutput(); err != nil {
		t.Fatalf("go mod edit: %v\n%s", err, out)
	}
	cmd := exec.Command(goBin, "test", "-mod=mod", "-count=1", "-p", "4", "./...")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "BERTH_TEST_STRICT=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go test in examples/berthtest: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}
