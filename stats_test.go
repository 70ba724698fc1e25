package berth_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/berth-run/berth"
	"github.com/berth-run/berth/internal/testutil"
)

// cgroupFile reads a file of pid's cgroup in the v1 controller's
// hierarchy (or the v2 one).
func cgroupFile(t *testing.T, pid int, controller, file string) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.SplitN(line, ":", 3)
		if len(f) == 3 && (strings.Contains(","+f[1]+",", ","+controller+",")) {
			v, err := os.ReadFile("/sys/fs/cgroup/" + f[1] + f[2] + "/" + file)
			if err != nil {
				t.Fatal(err)
			}
			return strings.TrimSpace(string(v))
		}
	}
	for _, line := range strings.Split(string(b), "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok {
			v, err := os.ReadFile("/sys/fs/cgroup" + p + "/" + file)
			if err == nil {
				return strings.TrimSpace(string(v))
			}
		}
	}
	t.Fatalf("no %s cgroup for %d", controller, pid)
	return ""
}

// TestStatsAndUpdate: stats has sane numbers; update changes the cgroup's
// limit files of a running container and the record of any; bad values
// change nothing.
func TestStatsAndUpdate(t *testing.T) {
	testutil.RequiresRoot(t)
	ctx := context.Background()
	rt := newRuntime(t)
	importBusybox(t, rt, "busybox")
	c := sleeper(t, rt, berth.Spec{Resources: berth.Resources{Memory: 64 << 20},
		Cmd: []string{"sh", "-c", "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; sleep 1000"}})
	st, _ := c.State(ctx)

	s1, err := c.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ctrExec(t, c, "i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done")
	s2, err := c.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !s2.Running || s2.CPUNanos <= s1.CPUNanos || s2.SystemNanos <= s1.SystemNanos || s2.OnlineCPUs < 1 {
		t.Fatalf("cpu: %+v then %+v", s1, s2)
	}
	// The machine's CPU time comes from /proc/stat in 10 ms ticks, so over
	// this short interval the percentage is off by up to a tick per CPU
	// at each end (docker's has the same error): a quarter over the
	// full use of every CPU is allowed.
	if p := s2.CPUPercent(s1); p <= 0 || p > 1.25*float64(100*s2.OnlineCPUs) {
		t.Errorf("cpu percent %f", p)
	}
	if s2.MemoryUsage == 0 || s2.MemoryLimit != 64<<20 || s2.MemoryPercent() <= 0 || s2.MemoryPercent() > 100 {
		t.Errorf("memory %d / %d", s2.MemoryUsage, s2.MemoryLimit)
	}
	if s2.Pids < 1 {
		t.Errorf("pids %d", s2.Pids)
	}
	if rx, tx := s2.NetIO(); rx != 0 || tx != 0 || len(s2.Networks) != 0 {
		t.Errorf("network none has traffic: %v", s2.Networks)
	}

	// update: the limit files change.
	up := berth.Update{Resources: berth.Resources{Memory: 128 << 20, MemorySwap: -1, PidsLimit: 50, CPUShares: 512, NanoCPUs: 5e8}}
	if err := c.Update(ctx, up); err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct{ ctl, file, want string }{
		{"memory", "memory.limit_in_bytes", fmt.Sprint(128 << 20)},
		{"pids", "pids.max", "50"},
		{"cpu", "cpu.shares", "512"},
		{"cpu", "cpu.cfs_quota_us", "50000"},
	} {
		if got := cgroupFile(t, st.Pid, f.ctl, f.file); got != f.want {
			t.Errorf("%s: %s, want %s", f.file, got, f.want)
		}
	}
	in, err := c.Inspect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if in.HostConfig.Memory != 128<<20 || *in.HostConfig.PidsLimit != 50 || in.HostConfig.NanoCpus != 5e8 {
		t.Errorf("inspect after update: %+v", in.HostConfig)
	}
	if s, _ := c.Stats(ctx); s.MemoryLimit != 128<<20 {
		t.Errorf("stats limit after update: %d", s.MemoryLimit)
	}
	rp := berth.RestartPolicy{Name: berth.RestartOnFailure, MaximumRetryCount: 2}
	if err := c.Update(ctx, berth.Update{RestartPolicy: &rp}); err != nil {
		t.Fatal(err)
	}
	if in, _ := c.Inspect(ctx); in.HostConfig.RestartPolicy != rp {
		t.Errorf("restart policy %+v", in.HostConfig.RestartPolicy)
	}
	// Refused, changing nothing.
	for _, bad := range []berth.Update{
		{Resources: berth.Resources{Memory: 1024}},
		{Resources: berth.Resources{CpusetCpus: "999"}},
		{Resources: berth.Resources{BlkioWeight: 5}},
		{Resources: berth.Resources{CPUQuota: 20000}}, // conflicts with --cpus
		{RestartPolicy: &berth.RestartPolicy{Name: "sometimes"}},
		{RestartPolicy: &berth.RestartPolicy{Name: berth.RestartAlways, MaximumRetryCount: 3}},
	} {
		if err := c.Update(ctx, bad); !errors.Is(err, berth.ErrInvalid) {
			t.Errorf("update %+v: %v, want ErrInvalid", bad, err)
		}
	}
	if got := cgroupFile(t, st.Pid, "memory", "memory.limit_in_bytes"); got != fmt.Sprint(128<<20) {
		t.Errorf("memory limit after refused updates: %s", got)
	}
	if in, _ := c.Inspect(ctx); in.HostConfig.Memory != 128<<20 || in.HostConfig.RestartPolicy != rp {
		t.Errorf("record after refused updates: %+v", in.HostConfig)
	}

	// A stopped container: zero stats, and update changes the record.
	if err := c.Kill(ctx, 9); err != nil {
		t.Fatal(err)
	}
	c.Wait(ctx)
	if s, err := c.Stats(ctx); err != nil || s.Running || s.MemoryUsage != 0 {
		t.Errorf("stats of a stopped container: %+v %v", s, err)
	}
	if err := c.Update(ctx, berth.Update{Resources: berth.Resources{Memory: 32 << 20}}); err != nil {
		t.Fatal(err)
	}
	if in, _ := c.Inspect(ctx); in.HostConfig.Memory != 32<<20 {
		t.Errorf("record after updating a stopped container: %d", in.HostConfig.Memory)
	}
	auto := sleeper(t, rt, berth.Spec{AutoRemove: true})
	if err := auto.Update(ctx, berth.Update{RestartPolicy: &berth.RestartPolicy{Name: berth.RestartAlways}}); !errors.Is(err, berth.ErrInvalid) {
		t.Errorf("restart policy on a --rm container: %v", err)
	}
}
