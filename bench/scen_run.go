package main

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/berth-run/berth"
)

// runArgs is `run --rm [extra...] IMAGE true`.
func runArgs(image string, extra ...string) []string {
	args := append([]string{"run", "--rm"}, extra...)
	return append(args, image, "true")
}

// runScenario measures `run --rm ARGS busybox true` with each engine's
// command line, and the same through berth's library in this process
// ("berth-lib": Run, Wait, removal by AutoRemove), whose spec edit
// makes it the same container.
func runScenario(name, title string, args []string, edit func(*berth.Spec)) *scenario {
	return &scenario{name: name, title: title, unit: "ms",
		setup: func(h *harness, t *tb) []*contender {
			cs := h.cliContenders(t, func(e *engine) *contender {
				e.ensure(t, h.busybox)
				return &contender{name: e.name, measure: func(t *tb) float64 {
					return e.time(t, runArgs(h.busybox, args...)...)
				}}
			})
			spec := berth.Spec{Image: h.busybox, Cmd: []string{"true"}, AutoRemove: true}
			edit(&spec)
			lib := &contender{name: "berth-lib", measure: func(t *tb) float64 {
				return timed(func() {
					c, err := h.library(t).Run(h.ctx, spec)
					if err != nil {
						t.Fatal(err)
					}
					if code, err := c.Wait(h.ctx); err != nil || code != 0 {
						t.Fatalf("library run: exit %d, %v", code, err)
					}
				})
			}}
			return append(cs[:1], append([]*contender{lib}, cs[1:]...)...)
		}}
}

var runNone = func() *scenario {
	s := runScenario("run-none", "run --rm --network none busybox true",
		[]string{"--network", "none"}, func(s *berth.Spec) { s.Network = "none" })
	cli := s.setup
	s.setup = func(h *harness, t *tb) []*contender {
		return append(cli(h, t), h.bareContenders(t)...)
	}
	return s
}()

var runBridge = runScenario("run-bridge", "run --rm busybox true (the default bridge network)",
	nil, func(*berth.Spec) {})

var runPublish = runScenario("run-publish", "run --rm -p 80 busybox true (bridge, a port published on a random host port)",
	[]string{"-p", "80"}, func(s *berth.Spec) { s.Ports = []berth.PortBinding{{ContainerPort: 80}} })

// bareContenders are runc and crun running the bundle berth's `run
// --network none busybox true` executes (bundle()).
func (h *harness) bareContenders(t *tb) []*contender {
	var cs []*contender
	for _, name := range []string{"runc", "crun"} {
		p := h.peer(name)
		if p.skip != "" {
			cs = append(cs, &contender{name: name, skip: p.skip})
			continue
		}
		cs = append(cs, bareRun(h, p.bare, name))
	}
	return cs
}

var bareSeq atomic.Int64

// bareRun measures `RUNTIME run --bundle B ID` (create, start, wait,
// delete) of the bundle.
func bareRun(h *harness, b *bareRuntime, name string) *contender {
	bundle := h.bundle()
	return &contender{name: name, measure: func(t *tb) float64 {
		id := fmt.Sprintf("bench-%s-%d", b.name, bareSeq.Add(1))
		var err error
		d := timed(func() { err = b.run("run", "--bundle", bundle, id) })
		if err != nil {
			b.run("delete", "-f", id)
			t.Fatal(err)
		}
		return d
	}}
}

var runtimeTrue = &scenario{name: "runtime-true", title: "OCI runtime only: RUNTIME run --bundle B ID (busybox true, berth's spec)", unit: "ms",
	setup: func(h *harness, t *tb) []*contender {
		b := &bareRuntime{name: "berth", argv: []string{h.berthBin, "oci", "--root", t.TempDir()}}
		return append([]*contender{bareRun(h, b, "berth")}, h.bareContenders(t)...)
	}}

var execTrue = &scenario{name: "exec", title: "exec CONTAINER true (a running busybox)", unit: "ms",
	setup: func(h *harness, t *tb) []*contender {
		return h.cliContenders(t, func(e *engine) *contender {
			e.ensure(t, h.busybox)
			name := "bench-exec"
			e.run(t, "run", "-d", "--name", name, "--network", "none", h.busybox, "sleep", "86400")
			t.Cleanup(func() { e.try("rm", "-f", name) })
			return &contender{name: e.name, measure: func(t *tb) float64 {
				return e.time(t, "exec", name, "true")
			}}
		})
	}}

// parallelRuns is how many containers the parallel scenario starts at once.
const parallelRuns = 20

var parallel20 = &scenario{name: "parallel-20", title: fmt.Sprintf("%d × run --rm --network none busybox true at once (wall time)", parallelRuns), unit: "ms",
	setup: func(h *harness, t *tb) []*contender {
		return h.cliContenders(t, func(e *engine) *contender {
			e.ensure(t, h.busybox)
			return &contender{name: e.name, measure: func(t *tb) float64 {
				var wg sync.WaitGroup
				errs := make([]error, parallelRuns)
				d := timed(func() {
					for i := range parallelRuns {
						wg.Add(1)
						go func() {
							defer wg.Done()
							_, errs[i] = e.try(runArgs(h.busybox, "--network", "none")...)
						}()
					}
					wg.Wait()
				})
				for _, err := range errs {
					if err != nil {
						t.Fatal(err)
					}
				}
				return d
			}}
		})
	}}
