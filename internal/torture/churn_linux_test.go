package torture

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/berth-run/berth"
)

// TestTortureRunRm runs `run --rm` (with the default network) a thousand
// times (fewer in CI) in this process, then audits: no mount, cgroup,
// network namespace, veth, nftables rule, process, IPAM lease or file of
// those containers may be left, and this process's fd count must be what
// it was.
func TestTortureRunRm(t *testing.T) {
	if !coordinate(t, time.Duration(scale(10, 60))*time.Minute) {
		return
	}
	s := newSuite(t)
	n := scale(60, 1000)
	runOnce := func(i int) error {
		c, err := s.rt.Run(s.ctx, berth.Spec{Image: "busybox", Cmd: []string{"true"}, Network: s.net, AutoRemove: true})
		if err != nil {
			return fmt.Errorf("run %d: %w", i, err)
		}
		code, err := c.Wait(s.ctx)
		if err != nil || code != 0 {
			return fmt.Errorf("run %d: exit %d, %v", i, code, err)
		}
		return nil
	}
	// One run first, so that what the runtime opens once per process (a
	// netlink socket, say) is in the baseline.
	if err := runOnce(0); err != nil {
		t.Fatal(err)
	}
	base, err := baseline(s.scope)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	failures := 0
	for i := 1; i <= n; i++ {
		if err := runOnce(i); err != nil {
			failures++
			t.Error(err)
			if failures > 10 {
				t.FailNow()
			}
		}
	}
	elapsed := time.Since(start)
	reapOrphans()
	leaks, after, err := settle(base, s.scope)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range leaks {
		t.Errorf("leak after %d runs: %s", n, l)
	}
	probs, err := s.rt.Check(s.ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range probs {
		t.Errorf("check: %s", p)
	}
	network := s.net
	if network == "" {
		network = "bridge"
	}
	sum := fmt.Sprintf("TORTURE run --rm: %d runs (network %s) in %v, %d failures, %d leaks, %d check problems; fds %d before, %d after\n",
		n, network, elapsed.Round(time.Millisecond), failures, len(leaks), len(probs), base.FDs, after.FDs)
	fmt.Fprint(os.Stdout, sum)
	t.Log(sum)
}
