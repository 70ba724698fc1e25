package torture

import (
	"fmt"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-run/berth"
)

// opStats counts one operation's trials.
type opStats struct {
	trials, killed, completed, failures, leaks int
	est                                        time.Duration
}

// TestTortureKill SIGKILLs a worker at a random point of every operation
// that changes the store (uniformly over the operation's measured
// duration), then checks the store (Open's repair, then Check with every
// blob verified: no problem may be left), runs the operation again (it
// must succeed), removes what it made and audits the host and the store
// against the baseline: no mount, cgroup, link, address, nftables object,
// IPAM lease, process, file or fd may be left.
func TestTortureKill(t *testing.T) {
	if !coordinate(t, time.Duration(scale(20, 240))*time.Minute) {
		return
	}
	s := newSuite(t)
	if err := s.ensureBox(); err != nil {
		t.Fatal(err)
	}
	var err error
	if s.base, err = baseline(s.scope); err != nil {
		t.Fatal(err)
	}
	t.Logf("baseline: %s", s.base.Summary())
	perOp := scale(3, 16)
	if n, err := strconv.Atoi(os.Getenv("BERTH_TORTURE_TRIALS")); err == nil {
		perOp = n
	}
	stats := map[string]*opStats{}
	var failures []string
	fail := func(o *op, trial int, format string, a ...any) {
		stats[o.name].failures++
		msg := fmt.Sprintf("%s #%d: %s", o.name, trial, fmt.Sprintf(format, a...))
		failures = append(failures, msg)
		t.Error(msg)
	}
	// BERTH_TORTURE_OPS=exec,commit limits the run to these operations.
	selected := ops
	if only := os.Getenv("BERTH_TORTURE_OPS"); only != "" {
		selected = nil
		for _, name := range strings.Split(only, ",") {
			if o, ok := opByName(name); ok {
				selected = append(selected, o)
			}
		}
	}
	// Calibrate: how long each operation takes, uninterrupted (the
	// median of three runs, from "begin" to "done").
	for _, o := range selected {
		st := &opStats{}
		stats[o.name] = st
		var took []time.Duration
		for range 3 {
			if o.prepare != nil {
				if err := o.prepare(s); err != nil {
					t.Fatalf("%s: prepare: %v", o.name, err)
				}
			}
			w := s.startWorker(o.name, o.arg(s))
			<-w.begun
			start := time.Now()
			if err := <-w.done; err != nil || w.finished.IsZero() {
				t.Fatalf("%s, not killed: %v\n%s", o.name, err, w.out.String())
			}
			took = append(took, w.finished.Sub(start))
			s.afterTrial(o, 0, func(format string, a ...any) { fail(o, 0, format, a...) })
		}
		slices.Sort(took)
		st.est = max(took[1], time.Millisecond)
	}
	for trial := 1; trial <= perOp; trial++ {
		for _, o := range selected {
			st := stats[o.name]
			st.trials++
			f := func(format string, a ...any) { fail(o, trial, format, a...) }
			if o.prepare != nil {
				if err := o.prepare(s); err != nil {
					f("prepare: %v", err)
					continue
				}
			}
			arg := o.arg(s)
			w := s.startWorker(o.name, arg)
			<-w.begun
			delay := time.Duration(s.rng.Float64() * float64(st.est))
			select {
			case err := <-w.done:
				if err != nil {
					f("failed without being killed: %v: %s", err, w.out.String())
				}
			case <-time.After(delay):
				_ = w.cmd.Process.Kill()
				<-w.done
			}
			if w.finished.IsZero() {
				st.killed++
			} else {
				st.completed++
			}
			reapOrphans()
			// Open repairs what the kill left; Check must then find nothing.
			rt2, err := berth.Open(s.ctx, s.opts...)
			if err != nil {
				f("open after the kill: %v", err)
				continue
			}
			rt2.Close()
			probs, err := s.rt.Check(s.ctx, berth.WithBlobVerification(true))
			if err != nil {
				f("check: %v", err)
			}
			for _, p := range probs {
				f("after the kill at %v: %s", ms(delay), p)
			}
			again := o.again
			if again == nil {
				again = func(s *suite, arg string) error { return o.run(s.ctx, s.rt, arg) }
			}
			if err := again(s, arg); err != nil {
				f("again after the kill at %v: %v", ms(delay), short(err))
			}
			st.leaks += s.afterTrial(o, trial, f)
		}
	}
	total := &opStats{}
	var names []string
	for name, st := range stats {
		names = append(names, name)
		total.trials += st.trials
		total.killed += st.killed
		total.completed += st.completed
		total.failures += st.failures
		total.leaks += st.leaks
	}
	sort.Strings(names)
	var sum strings.Builder
	fmt.Fprintf(&sum, "TORTURE kill: %d trials (%d killed mid-operation, %d completed first), %d failures, %d leaks\n",
		total.trials, total.killed, total.completed, total.failures, total.leaks)
	for _, n := range names {
		st := stats[n]
		fmt.Fprintf(&sum, "  %-7s %3d trials %3d killed %3d completed %3d failures %3d leaks (op takes ~%s)\n",
			n, st.trials, st.killed, st.completed, st.failures, st.leaks, ms(st.est))
	}
	fmt.Fprint(os.Stdout, sum.String())
	t.Log("\n" + sum.String())
}

// afterTrial removes what the operation made and audits against the
// baseline; it returns the number of leaks found (each also reported
// through f).
func (s *suite) afterTrial(o *op, trial int, f func(string, ...any)) int {
	if o.name == "exec" || o.name == "commit" {
		if why := s.boxState(); why != "" {
			f("%s after the operation", why)
			s.unpauseBox()
		}
	}
	if o.cleanup != nil {
		if err := o.cleanup(s); err != nil {
			f("cleanup: %v", err)
		}
	}
	leaks, err := s.audit()
	if err != nil {
		f("audit: %v", err)
		return 0
	}
	for _, l := range leaks {
		f("leak: %s%s", l, describe(l))
	}
	return len(leaks)
}

// audit compares the host and the store with the baseline.
func (s *suite) audit() ([]Leak, error) {
	leaks, _, err := settle(s.base, s.scope)
	return leaks, err
}

// describe adds what /proc says about a leaked process.
func describe(l Leak) string {
	if l.Kind != "process" {
		return ""
	}
	pid, _, _ := strings.Cut(l.What, " ")
	status, _ := os.ReadFile("/proc/" + pid + "/status")
	cg, _ := os.ReadFile("/proc/" + pid + "/cgroup")
	cmd, _ := os.ReadFile("/proc/" + pid + "/cmdline")
	var keep []string
	for _, line := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(line, "State:") || strings.HasPrefix(line, "PPid:") || strings.HasPrefix(line, "NSpid:") {
			keep = append(keep, line)
		}
	}
	first, _, _ := strings.Cut(string(cg), "\n")
	var tasks []string
	if ents, err := os.ReadDir("/proc/" + pid + "/task"); err == nil {
		for _, e := range ents {
			wchan, _ := os.ReadFile("/proc/" + pid + "/task/" + e.Name() + "/wchan")
			sc, _ := os.ReadFile("/proc/" + pid + "/task/" + e.Name() + "/syscall")
			tasks = append(tasks, fmt.Sprintf("%s:%s:%s", e.Name(), wchan, strings.Fields(string(sc) + " ?")[0]))
		}
	}
	return fmt.Sprintf(" [%s; cgroup %s; cmdline %q; tasks %v]", strings.Join(keep, "; "), first, strings.ReplaceAll(string(cmd), "\x00", " "), tasks)
}

// allowed are the differences that are not leaks: lock files of content
// (layers and blobs, which stay valid for the next pull of the same
// content), and the containers the operations keep (the exec/commit
// target and the trial's rm targets are made afresh).
func allowed(l Leak) bool {
	if l.Kind == "file" && strings.HasPrefix(l.What, "root/locks/") && !strings.HasPrefix(l.What, "root/locks/ctr-") {
		return true
	}
	return false
}
