package runtime

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-run/berth/internal/testutil"
)

// BenchmarkRunTrue measures Create+Start+Wait(+Delete) of /bin/true in
// busybox (docker's default namespaces, caps, masked paths and cgroup),
// and reports medians of 100 runs of it, of runc's and of crun's `run` of
// the same bundle when they are installed, interleaved so that the load of
// the machine hits all alike.
func BenchmarkRunTrue(b *testing.B) {
	testutil.RequiresRoot(b)
	rootfs := testutil.BusyboxRootfs(b)
	spec := testSpec(rootfs, "/bin/true")
	spec.Mounts = spec.Mounts[:len(spec.Mounts)-1]
	berth := func() error {
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
		return c.Delete(context.Background(), false)
	}
	for i := 0; i < b.N; i++ {
		if err := berth(); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()

	// The same bundle for the peers.
	bundle := b.TempDir()
	peer := *spec
	peer.Version = "1.0.2" // crun 1.8 refuses newer versions
	cfg, _ := json.Marshal(&peer)
	os.WriteFile(filepath.Join(bundle, "config.json"), cfg, 0o644)
	type peerRun struct {
		name string
		run  func() error
	}
	runners := []peerRun{{"berth", berth}}
	if p, err := exec.LookPath("runc"); err == nil {
		root := b.TempDir()
		runners = append(runners, peerRun{"runc", func() error {
			return exec.Command(p, "--root", root, "run", "--bundle", bundle, testID(b)).Run()
		}})
	}
	if p, err := exec.LookPath("crun"); err == nil {
		// crun refuses the v1/v2 hybrid: it runs from a thread whose mount
		// namespace lacks /sys/fs/cgroup/unified (PEERS.md).
		reqs := make(chan chan error)
		ready := make(chan error)
		go func() {
			runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
			err := unix.Unshare(unix.CLONE_FS | unix.CLONE_NEWNS)
			if err == nil {
				err = unix.Mount("", "/", "", unix.MS_SLAVE|unix.MS_REC, "")
			}
			if err == nil {
				err = unix.Unmount("/sys/fs/cgroup/unified", unix.MNT_DETACH)
			}
			ready <- err
			if err != nil {
				return
			}
			root := b.TempDir()
			for done := range reqs {
				done <- exec.Command(p, "--root", root, "run", "--bundle", bundle, testID(b)).Run()
			}
		}()
		if err := <-ready; err != nil {
			b.Logf("crun: %v", err)
		} else {
			defer close(reqs)
			runners = append(runners, peerRun{"crun", func() error {
				done := make(chan error)
				reqs <- done
				return <-done
			}})
		}
	}
	const n = 100
	times := make([][]time.Duration, len(runners))
	for i := 0; i < n; i++ {
		for j, r := range runners {
			t0 := time.Now()
			if err := r.run(); err != nil {
				b.Fatalf("%s: %v", r.name, err)
			}
			times[j] = append(times[j], time.Since(t0))
		}
	}
	for j, r := range runners {
		ds := times[j]
		sort.Slice(ds, func(a, c int) bool { return ds[a] < ds[c] })
		med := ds[len(ds)/2]
		b.ReportMetric(float64(med.Microseconds()), r.name+"-median-µs")
		b.Logf("%s /bin/true: median %v of %d (min %v)", r.name, med, n, ds[0])
	}
}
