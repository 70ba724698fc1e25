package torture

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-run/berth"
)

// raceKinds are the jobs of the processes TestTortureConcurrent runs at
// once, two of each.
var raceKinds = []string{"run", "pull", "commit", "remove"}

// TestTortureConcurrent runs 8 processes on one store at once — running
// containers, pulling, committing, removing and pruning — and fails if
// they do not all finish within the deadline (a deadlock), if any sees an
// error that is not a benign race (a name taken or removed by another),
// or if the store is then inconsistent or anything leaked.
func TestTortureConcurrent(t *testing.T) {
	if !coordinate(t, time.Duration(scale(15, 60))*time.Minute) {
		return
	}
	s := newSuite(t)
	if _, err := s.rt.Push(s.ctx, "busybox", s.reg.Addr+"/torture/busybox:v1"); err != nil {
		t.Fatal(err)
	}
	s.warmUp()
	base, err := baseline(s.scope)
	if err != nil {
		t.Fatal(err)
	}
	iterations := scale(15, 100)
	deadline := time.Duration(scale(5, 40)) * time.Minute
	var workers []*worker
	for i := 0; i < 8; i++ {
		kind := raceKinds[i%len(raceKinds)]
		arg := strings.Join([]string{strconv.Itoa(i), strconv.Itoa(iterations), s.net, s.pullRf, s.reg.Addr + "/torture/busybox:v1"}, ",")
		workers = append(workers, s.startWorker("race-"+kind, arg))
	}
	start := time.Now()
	timeout := time.After(deadline)
	failures := 0
	for i, w := range workers {
		select {
		case err := <-w.done:
			if err != nil {
				failures++
				t.Errorf("worker %d (%s): %v\n%s", i, raceKinds[i%len(raceKinds)], err, w.out.String())
			}
		case <-timeout:
			for _, w := range workers {
				_ = w.cmd.Process.Signal(syscall.SIGQUIT)
			}
			time.Sleep(3 * time.Second)
			for j, w := range workers {
				_ = w.cmd.Process.Kill()
				t.Logf("worker %d:\n%s", j, w.out.String())
			}
			t.Fatalf("8 processes on one store: not done after %v: deadlock or hang (their goroutines are above)", deadline)
		}
	}
	elapsed := time.Since(start)
	reapOrphans()
	probs, err := s.rt.Check(s.ctx, berth.WithBlobVerification(true))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range probs {
		t.Errorf("check: %s", p)
	}
	// Remove what the workers left, then audit.
	if _, _, err := s.rt.PruneContainers(s.ctx); err != nil {
		t.Error(err)
	}
	images, err := s.rt.Images(s.ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, im := range images {
		keep := false
		for _, tag := range im.Tags() {
			keep = keep || tag == "busybox:latest"
		}
		if !keep {
			if _, err := im.Remove(s.ctx); err != nil {
				t.Errorf("remove image %s: %v", im.ID(), err)
			}
		}
	}
	leaks, _, err := settle(base, s.scope)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range leaks {
		t.Errorf("leak: %s", l)
	}
	sum := fmt.Sprintf("TORTURE concurrent: 8 processes x %d iterations in %v, %d failures, %d check problems, %d leaks\n",
		iterations, elapsed.Round(time.Millisecond), failures, len(probs), len(leaks))
	fmt.Fprint(os.Stdout, sum)
	t.Log(sum)
}

// raceWorker is one of the racing processes: arg is
// "index,iterations,network,pullRef,pullRef2".
func raceWorker(ctx context.Context, rt *berth.Runtime, kind, arg string) int {
	a := strings.Split(arg, ",")
	if len(a) != 5 {
		fmt.Fprintln(os.Stderr, "race worker: bad argument", arg)
		return 2
	}
	me, _ := strconv.Atoi(a[0])
	n, _ := strconv.Atoi(a[1])
	network, refs := a[2], []string{a[3], a[4]}
	check := func(what string, err error) bool {
		if benign(err) {
			return true
		}
		fmt.Fprintf(os.Stderr, "race %s %d: %s: %v\n", kind, me, what, err)
		return false
	}
	runIt := func(name string, rm bool, cmd ...string) (*berth.Container, bool) {
		c, err := rt.Run(ctx, berth.Spec{Image: "busybox", Name: name, Cmd: cmd, Network: network, AutoRemove: rm})
		if err != nil {
			return nil, check("run", err)
		}
		if code, err := c.Wait(ctx); err != nil || code != 0 {
			return nil, check("wait", err) && code == 0
		}
		return c, true
	}
	for i := 0; i < n; i++ {
		tag := fmt.Sprintf("race/%s-%d:%d", kind, me, i)
		switch kind {
		case "run":
			if _, ok := runIt("", true, "sh", "-c", "echo run > /f"); !ok {
				return 1
			}
			if c, ok := runIt("", false, "true"); !ok {
				return 1
			} else if c != nil && !check("rm", c.Remove(ctx)) {
				return 1
			}
		case "pull":
			ref := refs[i%2]
			if _, err := rt.Pull(ctx, ref); !check("pull "+ref, err) {
				return 1
			}
			if !check("tag", rt.Tag(ctx, ref, tag)) {
				return 1
			}
			if _, err := rt.RemoveImage(ctx, tag); !check("rmi "+tag, err) {
				return 1
			}
			if i%2 == 1 {
				if _, err := rt.RemoveImage(ctx, ref); !check("rmi "+ref, err) {
					return 1
				}
			}
		case "commit":
			c, ok := runIt("", false, "sh", "-c", "echo commit > /c")
			if !ok {
				return 1
			}
			if c == nil {
				continue
			}
			if _, err := c.Commit(ctx, tag); !check("commit", err) {
				return 1
			}
			if !check("rm", c.Remove(ctx)) {
				return 1
			}
			if i > 0 {
				if _, err := rt.RemoveImage(ctx, fmt.Sprintf("race/%s-%d:%d", kind, me, i-1)); !check("rmi", err) {
					return 1
				}
			}
		case "remove":
			c, err := rt.Create(ctx, berth.Spec{Image: "busybox", Cmd: []string{"true"}, Network: network})
			if !check("create", err) {
				return 1
			}
			if c != nil && !check("rm", c.Remove(ctx)) {
				return 1
			}
			if _, _, err := rt.PruneContainers(ctx); !check("container prune", err) {
				return 1
			}
			if _, _, err := rt.PruneImages(ctx, false); !check("image prune", err) {
				return 1
			}
			if _, err := rt.Check(ctx); !check("check", err) {
				return 1
			}
		default:
			fmt.Fprintln(os.Stderr, "race worker: unknown kind", kind)
			return 2
		}
	}
	return 0
}
