// Package network_test measures `run --rm IMAGE true` of busybox with
// berth's command line and with podman's, alternated in one run, for
// --network none, the default bridge network, and the bridge with a
// published port (-p 80: a random host port), and the same three through
// the library in-process (Run, Wait, removal by AutoRemove).
//
//	./bench/network/run.sh          (in a network namespace of its own)
//	BERTH_TEST_STRICT=1 go test -run '^$' -bench RunRm -benchtime 1x ./bench/network/
//
// BERTH_BENCH_ROUNDS (default 15) rounds; each round runs every variant
// with both engines, who goes first alternating (ABBA...). Medians and
// their ratios are reported. berth's store and podman's live under $TMPDIR.
// Both engines' bridges and rules stay in the namespace of the run: use
// run.sh to keep them off the host's.
package network_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-run/berth"
	"github.com/berth-run/berth/internal/testutil"
)

type variant struct {
	name string
	args []string // run options of both CLIs
	spec func(*berth.Spec)
}

var variants = []variant{
	{"none", []string{"--network", "none"}, func(s *berth.Spec) { s.Network = "none" }},
	{"bridge", nil, func(s *berth.Spec) {}},
	{"-p", []string{"-p", "80"}, func(s *berth.Spec) { s.Ports = []berth.PortBinding{{ContainerPort: 80}} }},
}

func BenchmarkRunRmVsPodman(b *testing.B) {
	testutil.RequiresRoot(b)
	testutil.RequiresCommand(b, "go")
	pm := testutil.NewPodman(b)
	ctx := context.Background()
	dir := b.TempDir()
	rounds, _ := strconv.Atoi(os.Getenv("BERTH_BENCH_ROUNDS"))
	if rounds <= 0 {
		rounds = 15
	}

	// The CLI, built once (statically, as a user would install it).
	cli := filepath.Join(dir, "berth")
	build := exec.Command("go", "build", "-o", cli, "github.com/berth-run/berth/examples/berth")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("build the CLI: %v\n%s", err, out)
	}
	root, runRoot := filepath.Join(dir, "root"), filepath.Join(dir, "run")
	rt, err := berth.Open(ctx, berth.WithRoot(root), berth.WithRunRoot(runRoot))
	if err != nil {
		b.Fatal(err)
	}
	defer rt.Close()
	b.Cleanup(func() { testutil.RemoveBerthNetworking(b, root) })
	f, err := os.Open(testutil.BusyboxTar(b))
	if err != nil {
		b.Fatal(err)
	}
	_, err = rt.Import(ctx, f, "bench-busybox", berth.WithChanges(`CMD ["sh"]`, "EXPOSE 80"))
	f.Close()
	if err != nil {
		b.Fatal(err)
	}
	// podman's image is a podman load of berth's save.
	archive := filepath.Join(dir, "busybox.tar")
	out, err := os.Create(archive)
	if err != nil {
		b.Fatal(err)
	}
	if err := rt.Save(ctx, out, []string{"bench-busybox"}); err != nil {
		b.Fatal(err)
	}
	out.Close()
	// "Loaded image: docker.io/library/bench-busybox:latest"
	loaded := strings.TrimSpace(pm.Run("load", "-q", "-i", archive))
	_, image, ok := strings.Cut(loaded[strings.LastIndex(loaded, "\n")+1:], ": ")
	if !ok {
		b.Fatalf("podman load said %q", loaded)
	}

	berthCLI := func(args ...string) {
		cmd := exec.Command(cli, append([]string{"--root", root, "--runroot", runRoot}, args...)...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			b.Fatalf("berth %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
		}
	}
	runArgs := func(v variant, img string) []string {
		return append(append([]string{"run", "--rm"}, v.args...), img, "true")
	}
	library := func(v variant) {
		spec := berth.Spec{Image: "bench-busybox", Cmd: []string{"true"}, AutoRemove: true}
		v.spec(&spec)
		c, err := rt.Run(ctx, spec)
		if err != nil {
			b.Fatal(err)
		}
		if code, err := c.Wait(ctx); err != nil || code != 0 {
			b.Fatalf("library run: %d %v", code, err)
		}
	}
	// Warm up: the first run of each makes the networks and fills caches.
	for _, v := range variants {
		berthCLI(runArgs(v, "bench-busybox")...)
		pm.Run(runArgs(v, image)...)
		library(v)
	}

	times := map[string][]time.Duration{}
	timed := func(key string, fn func()) {
		start := time.Now()
		fn()
		times[key] = append(times[key], time.Since(start))
	}
	b.ResetTimer()
	for i := 0; i < rounds; i++ {
		for _, v := range variants {
			berthRun := func() { timed("berth "+v.name, func() { berthCLI(runArgs(v, "bench-busybox")...) }) }
			podmanRun := func() { timed("podman "+v.name, func() { pm.Run(runArgs(v, image)...) }) }
			if i%2 == 0 {
				berthRun()
				podmanRun()
			} else {
				podmanRun()
				berthRun()
			}
			timed("library "+v.name, func() { library(v) })
		}
	}
	b.StopTimer()
	b.Logf("%d rounds, GOMAXPROCS %d", rounds, runtime.GOMAXPROCS(0))
	for _, v := range variants {
		bm, pmed, lm := median(times["berth "+v.name]), median(times["podman "+v.name]), median(times["library "+v.name])
		b.Logf("run --rm %-6s berth %6.1f ms  podman %6.1f ms  ratio %.3f  (library in-process %.1f ms)",
			v.name, ms(bm), ms(pmed), float64(bm)/float64(pmed), ms(lm))
		name := strings.TrimPrefix(v.name, "-")
		b.ReportMetric(ms(bm), name+"-berth-ms")
		b.ReportMetric(ms(pmed), name+"-podman-ms")
		b.ReportMetric(float64(bm)/float64(pmed), name+"-ratio")
		b.ReportMetric(ms(lm), name+"-library-ms")
	}
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
