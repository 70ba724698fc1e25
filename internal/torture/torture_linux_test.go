package torture

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/berth-run/berth"
	"github.com/berth-run/berth/cgroup"
	"github.com/berth-run/berth/internal/testutil"
)

// The suite's size: reduced by default (CI), full with -torture.full
// (`make torture`).
var fullRun = flag.Bool("torture.full", false, "run the full torture suite (make torture)")

// scale picks the CI or the full count.
func scale(ci, full int) int {
	if *fullRun {
		return full
	}
	return ci
}

// Environment of the processes the suite starts.
const (
	coordinatorEnv = "BERTH_TORTURE_COORDINATOR" // "1": this test process runs the suite in its own netns
	workerEnv      = "BERTH_TORTURE_WORKER"      // the operation a worker runs
	rootEnv        = "BERTH_TORTURE_ROOT"
	runRootEnv     = "BERTH_TORTURE_RUNROOT"
	cgroupEnv      = "BERTH_TORTURE_CGROUP"
	argEnv         = "BERTH_TORTURE_ARG"
)

func TestMain(m *testing.M) {
	if kind := os.Getenv(workerEnv); kind != "" {
		os.Exit(runWorker(kind))
	}
	os.Exit(m.Run())
}

// coordinate runs the calling test in a new process with its own network
// namespace (so that bridges, addresses and nftables rules are all the
// suite's) in which it is the child subreaper (so that every process a
// killed worker leaves becomes its child and is seen). It returns true in
// that process, which then runs the test's body, and false in the test
// process, after the coordinator finished. timeout bounds the whole run: a
// deadlock fails the test with the goroutines of every process dumped.
func coordinate(t *testing.T, timeout time.Duration) bool {
	t.Helper()
	testutil.RequiresRoot(t)
	if os.Getenv(coordinatorEnv) == "1" {
		lo, err := netlink.LinkByName("lo")
		if err != nil {
			t.Fatal(err)
		}
		if err := netlink.LinkSetUp(lo); err != nil {
			t.Fatal(err)
		}
		if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
			t.Fatal(err)
		}
		return true
	}
	args := []string{"-test.run=^" + t.Name() + "$", "-test.v", "-test.timeout=" + (timeout + time.Minute).String()}
	if *fullRun {
		args = append(args, "-torture.full")
	}
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), coordinatorEnv+"=1")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("torture coordinator: %v", err)
		}
	case <-time.After(timeout):
		// Every process of the suite prints its goroutines on SIGQUIT.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGQUIT)
		time.Sleep(5 * time.Second)
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		t.Fatalf("torture: not done after %v: deadlock or hang (goroutines dumped above)", timeout)
	}
	return false
}

// suite is one torture run's store, registry and images, in the
// coordinator.
type suite struct {
	t      *testing.T
	ctx    context.Context
	dir    string
	rt     *berth.Runtime
	opts   []berth.Option
	scope  Scope
	reg    *testutil.Registry
	rng    *rand.Rand
	pullRf string // the image pulls fetch
	net    string // the network containers use
	// base is the audit's baseline, taken once the suite is set up.
	base *Snapshot
}

// newSuite makes a store with busybox imported and a registry holding a
// three-layer image for pulls.
func newSuite(t *testing.T) *suite {
	ctx := context.Background()
	dir := t.TempDir()
	parent := fmt.Sprintf("berth-torture-%d", os.Getpid())
	s := &suite{t: t, ctx: ctx, dir: dir, rng: rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))}
	s.scope = Scope{Root: filepath.Join(dir, "root"), RunRoot: filepath.Join(dir, "run"), CgroupParent: parent}
	s.opts = []berth.Option{berth.WithRoot(s.scope.Root), berth.WithRunRoot(s.scope.RunRoot), berth.WithCgroupParent(parent)}
	rt, err := berth.Open(ctx, s.opts...)
	if err != nil {
		t.Fatal(err)
	}
	s.rt = rt
	t.Cleanup(func() {
		ctx := context.Background()
		if cs, err := s.rt.Containers(ctx); err == nil {
			for _, c := range cs {
				_ = c.Remove(ctx, berth.RemoveForce(), berth.RemoveVolumes())
			}
		}
		s.rt.Close()
		if cg, err := cgroup.New(parent); err == nil {
			_ = cg.Delete()
		}
	})
	f, err := os.Open(testutil.BusyboxTar(t))
	if err != nil {
		t.Fatal(err)
	}
	_, err = rt.Import(ctx, f, "busybox:latest", berth.WithChanges(`CMD ["sh"]`))
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	s.reg = testutil.StartRegistry(t, testutil.RegistryOptions{})
	img := testutil.BuildImage(t, testutil.TestImage{Layers: []testutil.TestLayer{
		{RandomBytes: 6 << 20, Seed: 1},
		{RandomBytes: 6 << 20, Seed: 2, Compression: "zstd"},
		{Files: map[string]string{"etc/": "", "etc/torture": "pulled\n", "bin/": ""}},
	}})
	testutil.PushRaw(t, s.reg.Addr, "torture/big", "v1", img.Blobs(), img.Manifest, img.MediaType)
	s.pullRf = s.reg.Addr + "/torture/big:v1"
	s.net = s.defaultNetwork()
	return s
}

// defaultNetwork is "" (docker's default, the bridge) when bridge
// networking works in this tree, or "none" until it lands.
func (s *suite) defaultNetwork() string {
	c, err := s.rt.Run(s.ctx, berth.Spec{Image: "busybox", Cmd: []string{"true"}, AutoRemove: true})
	if err == nil {
		_, _ = c.Wait(s.ctx)
		return ""
	}
	if !errors.Is(err, berth.ErrNotSupported) {
		s.t.Fatalf("run with the default network: %v", err)
	}
	s.t.Logf("bridge networking is not available in this tree (%v): containers use --network none", err)
	return "none"
}

// warmUp runs one container, so that what berth makes once per store
// and keeps (the cgroup parent, run-time directories) is in a baseline.
func (s *suite) warmUp() {
	c, err := s.rt.Run(s.ctx, berth.Spec{Image: "busybox", Cmd: []string{"true"}, Network: s.net, AutoRemove: true})
	if err != nil {
		s.t.Fatal(err)
	}
	if _, err := c.Wait(s.ctx); err != nil {
		s.t.Fatal(err)
	}
}

// workerEnviron is the environment of a worker running kind with arg.
func (s *suite) workerEnviron(kind, arg string) []string {
	return append(os.Environ(), workerEnv+"="+kind, rootEnv+"="+s.scope.Root, runRootEnv+"="+s.scope.RunRoot,
		cgroupEnv+"="+s.scope.CgroupParent, argEnv+"="+arg, coordinatorEnv+"=")
}

// worker is a running worker process.
type worker struct {
	cmd   *exec.Cmd
	begun chan struct{} // closed when the worker starts its operation
	done  chan error    // the worker's exit
	// finished is when the worker said its operation was done (zero:
	// it did not); valid once done delivered.
	finished time.Time
	out      strings.Builder
}

// startWorker starts a worker running kind with arg.
func (s *suite) startWorker(kind, arg string) *worker {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = s.workerEnviron(kind, arg)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		s.t.Fatal(err)
	}
	w := &worker{cmd: cmd, begun: make(chan struct{}), done: make(chan error, 1)}
	cmd.Stderr = &w.out
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		begun := false
		for sc.Scan() {
			switch sc.Text() {
			case "begin":
				if !begun {
					begun = true
					close(w.begun)
				}
			case "done":
				w.finished = time.Now()
			}
		}
		if !begun {
			close(w.begun)
		}
		w.done <- cmd.Wait()
	}()
	return w
}

// reapOrphans reaps the zombies of processes that were reparented to
// this process (the child subreaper) when a worker died. Only called when
// no operation of this process is under way.
func reapOrphans() {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG|unix.WALL, nil)
		if pid <= 0 || err != nil {
			return
		}
	}
}

// baseline snapshots scope once what recent operations left in flight
// (fds a finishing goroutine closes) is gone: the snapshot with the
// fewest fds of those taken until two agree.
func baseline(scope Scope) (*Snapshot, error) {
	var best *Snapshot
	for i := 0; i < 20; i++ {
		reapOrphans()
		snap, err := Take(scope)
		if err != nil {
			return nil, err
		}
		if best != nil && snap.FDs == best.FDs {
			return snap, nil
		}
		if best == nil || snap.FDs < best.FDs {
			best = snap
		}
		time.Sleep(100 * time.Millisecond)
	}
	return best, nil
}

// settle audits scope against base. A killed worker's children (a
// runtime stage that was starting) see their parent gone and exit on
// their own, and goroutines finishing a removal (the veth deletion that
// waits for the kernel) close their fds a moment later: processes and fds
// are given a few seconds to go.
func settle(base *Snapshot, scope Scope) ([]Leak, *Snapshot, error) {
	for wait := 0; ; wait++ {
		reapOrphans()
		snap, err := Take(scope)
		if err != nil {
			return nil, nil, err
		}
		leaks := Diff(base, snap, allowed)
		transient := len(leaks) > 0
		for _, l := range leaks {
			transient = transient && (l.Kind == "process" || l.Kind == "fd")
		}
		if !transient || wait == 50 {
			return leaks, snap, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// workerOpen opens the runtime a worker uses.
func workerOpen(ctx context.Context) (*berth.Runtime, error) {
	return berth.Open(ctx, berth.WithRoot(os.Getenv(rootEnv)), berth.WithRunRoot(os.Getenv(runRootEnv)),
		berth.WithCgroupParent(os.Getenv(cgroupEnv)))
}

// runWorker is a worker process: it runs one operation (or, for the
// race test, a loop of them) and exits 0 when it succeeded.
func runWorker(kind string) int {
	ctx := context.Background()
	rt, err := workerOpen(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "worker: open:", err)
		return 1
	}
	defer rt.Close()
	arg := os.Getenv(argEnv)
	if strings.HasPrefix(kind, "race-") {
		return raceWorker(ctx, rt, strings.TrimPrefix(kind, "race-"), arg)
	}
	op, ok := opByName(kind)
	if !ok {
		fmt.Fprintln(os.Stderr, "worker: unknown operation", kind)
		return 2
	}
	fmt.Println("begin")
	if err := op.run(ctx, rt, arg); err != nil {
		fmt.Fprintf(os.Stderr, "worker %s: %v\n", kind, err)
		return 1
	}
	fmt.Println("done")
	return 0
}

// since formats a duration for the summary.
func ms(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) + "ms" }

// discard reads r to its end.
func discard(r io.Reader) { _, _ = io.Copy(io.Discard, r) }
