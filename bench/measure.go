package main

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"time"
)

// scenario is one thing every engine does, measured side by side.
type scenario struct {
	name  string // short, for -only and the report ("run-none")
	title string // what is measured
	unit  string // "ms" (lower is better) or "MiB"
	// rounds, when set, caps the rounds (scenarios whose one measurement
	// takes long); noWarmup skips the warm-up measurement.
	rounds   int
	noWarmup bool
	// setup prepares the scenario in t's scope (closed when the scenario
	// ends) and returns its contenders, berth first.
	setup func(h *harness, t *tb) []*contender
}

// contender is one engine in a scenario.
type contender struct {
	name string
	// measure takes one measurement in the scenario's unit; untimed
	// preparation and clean-up happen inside it. It reports failures with
	// t.Fatal.
	measure func(t *tb) float64
	// skip, when set, is why this engine cannot run the scenario here;
	// fail, that its preparation failed.
	skip, fail string
}

// result is a scenario's outcome.
type result struct {
	s    *scenario
	rows []*row
	err  string // the scenario could not be set up
}

// row is one contender's measurements.
type row struct {
	name    string
	samples []float64
	err     string // a failure, or why it was skipped
	skipped bool
}

func (r *row) ok() bool { return r.err == "" && len(r.samples) > 0 }

func (r *row) min() float64    { return slices.Min(r.samples) }
func (r *row) max() float64    { return slices.Max(r.samples) }
func (r *row) median() float64 { return median(r.samples) }

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// berth is the result's berth row (the first), if any.
func (res *result) berth() *row {
	if len(res.rows) > 0 && res.rows[0].name == "berth" {
		return res.rows[0]
	}
	return nil
}

// failed reports whether berth could not do the scenario: the harness
// exits non-zero then. A peer's failure is reported but does not fail
// the run.
func (res *result) failed() bool {
	if res.err != "" {
		return true
	}
	b := res.berth()
	return b == nil || (b.err != "" && !b.skipped)
}

// runScenario sets s up, measures every contender and tears it down.
func (h *harness) runScenario(s *scenario) *result {
	res := &result{s: s}
	h.logf("== %s: %s", s.name, s.title)
	t := newTB(h.ctx, s.name, h.work, os.Stdout)
	defer t.close()
	var cs []*contender
	if err := t.do(func() { cs = s.setup(h, t) }); err != nil {
		res.err = err.Error()
		h.logf("   %s", res.err)
		return res
	}
	var live []int // indexes of the contenders that run
	for _, c := range cs {
		r := &row{name: c.name}
		res.rows = append(res.rows, r)
		if c.skip != "" {
			r.err, r.skipped = c.skip, true
			h.logf("   %-14s skipped: %s", c.name, c.skip)
			continue
		}
		if c.fail != "" {
			r.err = c.fail
			h.logf("   %-14s failed: %s", c.name, firstLine(c.fail))
			continue
		}
		live = append(live, len(res.rows)-1)
	}
	once := func(i int, keep bool) {
		c, r := cs[i], res.rows[i]
		if r.err != "" || h.ctx.Err() != nil {
			return
		}
		var v float64
		if err := t.do(func() { v = c.measure(t) }); err != nil {
			r.err = err.Error()
			h.logf("   %-14s failed: %s", c.name, firstLine(r.err))
			return
		}
		if keep {
			r.samples = append(r.samples, v)
		}
	}
	rounds := h.opts.rounds
	if s.rounds > 0 && rounds > s.rounds {
		rounds = s.rounds
	}
	if !h.opts.quick && !s.noWarmup {
		for _, i := range live {
			once(i, false)
		}
	}
	started := time.Now()
	for round := 0; round < rounds; round++ {
		order := slices.Clone(live)
		if round%2 == 1 {
			slices.Reverse(order)
		}
		for _, i := range order {
			once(i, true)
		}
	}
	for _, r := range res.rows {
		if r.ok() {
			h.logf("   %-14s median %s (min %s, max %s, n=%d)", r.name, format(r.median(), s.unit),
				format(r.min(), s.unit), format(r.max(), s.unit), len(r.samples))
		}
	}
	h.logf("   (%d rounds in %s)", rounds, time.Since(started).Round(time.Millisecond))
	return res
}

// format prints a value in unit with a precision that suits its size.
func format(v float64, unit string) string {
	switch {
	case unit == "MiB":
		return fmt.Sprintf("%.3f MiB", v)
	case v >= 10000:
		return fmt.Sprintf("%.1f s", v/1000)
	case v >= 100:
		return fmt.Sprintf("%.0f ms", v)
	default:
		return fmt.Sprintf("%.1f ms", v)
	}
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " ..."
	}
	return s
}

// ms is d in milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// timed returns how long fn took, in milliseconds.
func timed(fn func()) float64 {
	start := time.Now()
	fn()
	return ms(time.Since(start))
}
