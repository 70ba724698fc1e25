package runtime

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/berth-run/berth/internal/testutil"
)

// median runs fn n times and returns the median duration.
func median(n int, fn func() error) (time.Duration, error) {
	ds := make([]time.Duration, 0, n)
	for i := 0; i < n; i++ {
		t0 := time.Now()
		if err := fn(); err != nil {
			return 0, err
		}
		ds = append(ds, time.Since(t0))
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds[len(ds)/2], nil
}

// BenchmarkRunTrue measures Create+Start+Wait(+Delete) of /bin/true in
// busybox (docker's default namespaces, caps, masked paths and cgroup),
// and reports the median of 100 runs next to runc's and crun's `run` of
// the same bundle when they are installed.
func BenchmarkRunTrue(b *testing.B) {
	testutil.RequiresRoot(b)
	rootfs := testutil.BusyboxRootfs(b)
	spec := testSpec(rootfs, "/bin/true")
	spec.Mounts = spec.Mounts[:len(spec.Mounts)-1]
	runOnce := func(del bool) func() error {
		return func() error {
			id := testID(b)
			c, err := Create(context.Background(), CreateOpts{ID: id, Spec: spec, StateDir: filepath.Join(stateRoot(b), id), TieToParent: true})
			if err != nil {
				return err
			}
			if err := c.Start(context.Background()); err != nil {
				return err
			}
			st, err := c.Wait()
			if err != nil || st.Code != 0 {
				return fmt.Errorf("wait: %+v %v", st, err)
			}
			if del {
				return c.Delete(context.Background(), false)
			}
			go c.Delete(context.Background(), false)
			return nil
		}
	}
	for i := 0; i < b.N; i++ {
		if err := runOnce(true)(); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	n := 100
	berth, err := median(n, runOnce(true))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(berth.Microseconds()), "berth-median-µs")
	b.Logf("berth Create+Start+Wait+Delete /bin/true: median %v of %d", berth, n)

	// The same bundle for the peers.
	bundle := b.TempDir()
	peer := *spec
	peer.Linux = &(*spec.Linux)
	peer.Version = "1.0.2" // crun 1.8 refuses newer versions
	cfg, _ := json.Marshal(&peer)
	os.WriteFile(filepath.Join(bundle, "config.json"), cfg, 0o644)
	if p, err := exec.LookPath("runc"); err == nil {
		root := b.TempDir()
		d, err := median(n, func() error {
			return exec.Command(p, "--root", root, "run", "--bundle", bundle, testID(b)).Run()
		})
		if err != nil {
			b.Fatalf("runc: %v", err)
		}
		b.ReportMetric(float64(d.Microseconds()), "runc-median-µs")
		b.Logf("runc run: median %v of %d", d, n)
	}
	if p, err := exec.LookPath("crun"); err == nil {
		root := b.TempDir()
		// crun refuses the v1/v2 hybrid: hide the unified mount in a
		// private mount namespace (PEERS.md).
		script := fmt.Sprintf("umount /sys/fs/cgroup/unified; for i in $(seq %d); do s=$(date +%%s%%N); %s --root %s run --bundle %s c$i >&2 || exit 1; e=$(date +%%s%%N); echo $((e-s)); done", n, p, root, bundle)
		ds := make([]time.Duration, 0, n)
		cmd := exec.Command("unshare", "-m", "sh", "-c", script)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			b.Logf("crun: %v: %s", err, stderr.String())
			return
		}
		for _, l := range splitLines(string(out)) {
			var ns int64
			fmt.Sscan(l, &ns)
			ds = append(ds, time.Duration(ns))
		}
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		if len(ds) > 0 {
			b.ReportMetric(float64(ds[len(ds)/2].Microseconds()), "crun-median-µs")
			b.Logf("crun run: median %v of %d (timed inside a shell loop)", ds[len(ds)/2], len(ds))
		}
	}
}

func splitLines(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			if i > start {
				out = append(out, s[start:i])
			}
			start = i + 1
		}
	}
	return out
}
