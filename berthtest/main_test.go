package berthtest_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/berth-run/berth"
	"github.com/berth-run/berth/internal/fixtures"
	"github.com/berth-run/berth/internal/testutil"
)

// The tests share one scratch store (BERTH_ROOT, BERTH_RUNROOT), made by
// TestMain and removed after the tests; the worker processes that some
// tests start inherit it. Images come from berth's fixtures (built, or
// loaded from the machine's fixture cache), named to berthtest through
// its environment variables, as CI does.
func TestMain(m *testing.M) {
	if os.Getenv(workerEnv) != "" { // a worker: the store is its parent's
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "berthtest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv("BERTH_ROOT", filepath.Join(dir, "root"))
	os.Setenv("BERTH_RUNROOT", filepath.Join(dir, "run"))
	code := m.Run()
	if err := removeStore(dir); err != nil {
		fmt.Fprintln(os.Stderr, "berthtest tests: leaving the scratch store:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// removeStore removes the scratch store once no container is left in it
// and nothing is mounted below it. The shared containers, which the
// store's monitor would remove once this process has exited, it removes
// itself first.
func removeStore(dir string) error {
	if os.Geteuid() == 0 {
		ctx := context.Background()
		rt, err := berth.Default(ctx)
		if err != nil {
			return err
		}
		shared, err := rt.Containers(ctx, berth.ListFilter("label", "run.berth.test=shared"))
		if err != nil {
			return err
		}
		for _, c := range shared { // the monitor may be removing them too
			if err := c.Remove(ctx, berth.RemoveForce(), berth.RemoveVolumes()); err != nil && !errors.Is(err, berth.ErrNotFound) {
				return err
			}
		}
		ctrs, err := rt.Containers(ctx)
		rt.Close()
		if err != nil {
			return err
		}
		if len(ctrs) > 0 {
			return fmt.Errorf("%d containers left in %s", len(ctrs), dir)
		}
	}
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err == nil && strings.Contains(string(mi), " "+dir+"/") {
		return fmt.Errorf("mounts left below %s", dir)
	}
	return os.RemoveAll(dir)
}

var fixtureRefs struct {
	mu   sync.Mutex
	refs map[string]string
}

// fixture makes fixture name present in the scratch store and returns
// its reference.
func fixture(t testing.TB, name string) string {
	t.Helper()
	testutil.RequiresRoot(t)
	testutil.RequiresCommand(t, "debootstrap")
	fixtureRefs.mu.Lock()
	defer fixtureRefs.mu.Unlock()
	if ref, ok := fixtureRefs.refs[name]; ok {
		return ref
	}
	ctx := context.Background()
	rt, err := berth.Default(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fixtures.Ensure(ctx, rt, name, fixtures.Options{}); err != nil {
		t.Fatalf("fixture %s: %v", name, err)
	}
	ref, _ := fixtures.Ref(name)
	if fixtureRefs.refs == nil {
		fixtureRefs.refs = map[string]string{}
	}
	fixtureRefs.refs[name] = ref
	return ref
}

// useFixtures points berthtest's image variables at the fixtures, for
// the test.
func useFixtures(t *testing.T) {
	t.Helper()
	t.Setenv("BERTHTEST_REDIS_IMAGE", fixture(t, fixtures.Redis))
	t.Setenv("BERTHTEST_MYSQL_IMAGE", fixture(t, fixtures.MariaDB))
	t.Setenv("BERTHTEST_MARIADB_IMAGE", fixture(t, fixtures.MariaDB))
}

var busyboxOnce struct {
	sync.Once
	err error
}

// busybox imports the busybox test image as "busybox:test" into the
// scratch store.
func busybox(t testing.TB) string {
	t.Helper()
	testutil.RequiresRoot(t)
	tarPath := testutil.BusyboxTar(t)
	busyboxOnce.Do(func() {
		ctx := context.Background()
		rt, err := berth.Default(ctx)
		if err != nil {
			busyboxOnce.err = err
			return
		}
		f, err := os.Open(tarPath)
		if err != nil {
			busyboxOnce.err = err
			return
		}
		defer f.Close()
		_, busyboxOnce.err = rt.Import(ctx, f, "busybox:test", berth.WithChanges(`CMD ["sh"]`))
	})
	if busyboxOnce.err != nil {
		t.Fatal(busyboxOnce.err)
	}
	return "busybox:test"
}

// store is the store berthtest uses in this process.
func store(t testing.TB) *berth.Runtime {
	t.Helper()
	rt, err := berth.Default(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return rt
}

// containerGone fails the test unless no container of the store has id.
func containerGone(t testing.TB, rt *berth.Runtime, id string) {
	t.Helper()
	ctrs, err := rt.Containers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range ctrs {
		if c.ID() == id {
			st, _ := c.State(context.Background())
			t.Fatalf("container %s is still in the store (%s)", c.Name(), st.Status)
		}
	}
}
