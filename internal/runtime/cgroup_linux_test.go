package runtime

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-run/berth/cgroup"
	"github.com/berth-run/berth/internal/testutil"
)

func TestCgroupPlacementAndRemoval(t *testing.T) {
	c := running(t)
	cgPath := c.State().CgroupPath
	if cgPath != "berth/"+c.ID() {
		t.Fatalf("cgroup path %q", cgPath)
	}
	m, err := cgroup.New(cgPath)
	if err != nil {
		t.Fatal(err)
	}
	p, err := Exec(context.Background(), c.State(), execProc(c.State().Config, "sleep", "100"), ExecOpts{})
	if err != nil {
		t.Fatal(err)
	}
	pids, err := m.Procs()
	if err != nil {
		t.Fatal(err)
	}
	in := map[int]bool{}
	for _, pid := range pids {
		in[pid] = true
	}
	if !in[c.Pid()] || !in[p.Pid] {
		t.Fatalf("cgroup holds %v; init %d, exec %d", pids, c.Pid(), p.Pid)
	}
	// Every hierarchy, as /proc says.
	own, _ := os.ReadFile("/proc/" + strconv.Itoa(p.Pid) + "/cgroup")
	for _, line := range strings.Split(strings.TrimSpace(string(own)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if parts[1] == "" {
			continue // the hybrid's unified tree is not managed
		}
		if !strings.HasSuffix(parts[2], "/berth/"+c.ID()) {
			t.Errorf("exec'd process outside the container's cgroup: %s", line)
		}
	}
	p.Signal(9)
	p.Wait()
	if err := c.Delete(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	if m.Exists() {
		t.Fatalf("cgroup %s left behind", cgPath)
	}
}

func TestCgroupMemoryOOM(t *testing.T) {
	spec := sh(t, "tail /dev/zero")
	limit := int64(32 << 20)
	spec.Linux.Resources = &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit}}
	c, _ := createTest(t, spec, nil)
	m, err := cgroup.New(c.State().CgroupPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	st, _ := c.Wait()
	if st.Code != 137 {
		t.Fatalf("status %+v, want 137", st)
	}
	n, err := m.OOMKillCount()
	if err != nil || n < 1 {
		t.Fatalf("oom kill count %d, %v", n, err)
	}
}

func TestCgroupPidsAndCPU(t *testing.T) {
	// A fork loop stops at the pids limit; the shell reports the failure.
	spec := sh(t, `(i=0; while [ $i -lt 20 ]; do sleep 5 & i=$((i+1)); done) 2>/dev/null; cat /sys/fs/cgroup/pids/pids.current /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us`)
	pids := int64(8)
	quota := int64(50000)
	period := uint64(100000)
	spec.Linux.Resources = &specs.LinuxResources{
		Pids: &specs.LinuxPids{Limit: &pids},
		CPU:  &specs.LinuxCPU{Quota: &quota, Period: &period},
	}
	r := run(t, spec)
	lines := strings.Fields(r.out)
	if len(lines) != 4 {
		t.Fatalf("status %+v output %q, stderr %q", r.status, r.out, r.err)
	}
	if n, _ := strconv.Atoi(lines[0]); n > 8 || n < 3 {
		t.Errorf("%s processes under pids.max 8", lines[0])
	}
	if lines[1] != "8" || lines[2] != "50000" || lines[3] != "100000" {
		t.Errorf("limits seen inside: %q", lines[1:])
	}
}

func TestNoCgroups(t *testing.T) {
	spec := sh(t, "cat /proc/self/cgroup")
	c, output := createTest(t, spec, func(o *CreateOpts) { o.Cgroups = NoCgroups })
	if c.State().CgroupPath != "" {
		t.Fatalf("cgroup path %q", c.State().CgroupPath)
	}
	c.Start(context.Background())
	c.Wait()
	out, _ := output()
	own, _ := os.ReadFile("/proc/self/cgroup")
	if out != string(own) {
		t.Fatalf("container cgroups\n%s\nhost\n%s", out, own)
	}
}

// pathless is a CgroupManager that cannot tell its directories.
type pathless struct{ CgroupManager }

func TestTargetHierarchies(t *testing.T) {
	testutil.RequiresRoot(t)
	m, err := cgroup.New("berth/target-" + testID(t)) // not created: only its paths are used
	if err != nil {
		t.Fatal(err)
	}
	own, err := readHierarchies()
	if err != nil {
		t.Fatal(err)
	}
	target, tasks, ok := targetHierarchies(m)
	if !ok || len(target) != len(own) {
		t.Fatalf("targetHierarchies = %v, %v; own %v", target, ok, own)
	}
	var wantTasks []string
	for i, h := range own {
		got := filepath.Join(target[i].Mountpoint, target[i].Path)
		want := m.Path(h.controller)
		if want == "" { // not managed: the caller's cgroup stays
			want = filepath.Join(h.mountpoint, h.path)
		} else {
			wantTasks = append(wantTasks, filepath.Join(want, "tasks"))
		}
		if got != want || target[i].Unified != h.unified {
			t.Errorf("hierarchy %s (%q): %s, want %s", h.mountpoint, h.controller, got, want)
		}
	}
	// A thread moves itself only on cgroup v1.
	if m.Mode() == cgroup.Unified {
		wantTasks = nil
	}
	if strings.Join(tasks, " ") != strings.Join(wantTasks, " ") {
		t.Errorf("tasks files %v, want %v", tasks, wantTasks)
	}
	if _, _, ok := targetHierarchies(pathless{m}); ok {
		t.Error("a manager without Path gave target hierarchies")
	}
}
