package berth_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/berth-run/berth"
	"github.com/berth-run/berth/internal/testutil"
)

func names(cs []*berth.Container) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Name())
	}
	return out
}

// TestListFilters: docker ps's default (running only), -a, -n and each
// --filter kind; bad filters are ErrInvalid.
func TestListFilters(t *testing.T) {
	testutil.RequiresRoot(t)
	ctx := context.Background()
	rt := newRuntime(t)
	importBusybox(t, rt, "busybox")
	if _, err := rt.Image(ctx, "busybox"); err != nil {
		t.Fatal(err)
	}
	// Created first, then an exited one, then two running.
	created, err := rt.Create(ctx, berth.Spec{Image: "busybox", Name: "created", Network: "none", Labels: map[string]string{"tier": "db"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { created.Remove(ctx) })
	exited, err := rt.Run(ctx, berth.Spec{Image: "busybox", Name: "exited", Network: "none", Cmd: []string{"sh", "-c", "exit 3"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { exited.Remove(ctx) })
	if code, _ := exited.Wait(ctx); code != 3 {
		t.Fatalf("exit %d", code)
	}
	web := sleeper(t, rt, berth.Spec{Name: "web", Labels: map[string]string{"tier": "front"}})
	sleeper(t, rt, berth.Spec{Name: "worker"})

	list := func(opts ...berth.ListOption) []string {
		t.Helper()
		cs, err := rt.Containers(ctx, opts...)
		if err != nil {
			t.Fatal(err)
		}
		return names(cs)
	}
	for _, tc := range []struct {
		opts []berth.ListOption
		want []string
	}{
		{nil, []string{"worker", "web", "exited", "created"}},
		{[]berth.ListOption{berth.ListRunning()}, []string{"worker", "web"}},
		{[]berth.ListOption{berth.ListRunning(), berth.ListLimit(3)}, []string{"worker", "web", "exited"}},
		{[]berth.ListOption{berth.ListRunning(), berth.ListFilter("status", "exited")}, []string{"exited"}},
		{[]berth.ListOption{berth.ListFilter("status", "created"), berth.ListFilter("status", "running")}, []string{"worker", "web", "created"}},
		{[]berth.ListOption{berth.ListFilter("name", "^/w")}, []string{"worker", "web"}},
		{[]berth.ListOption{berth.ListFilter("name", "eb")}, []string{"web"}},
		{[]berth.ListOption{berth.ListFilter("id", web.ID()[:6])}, []string{"web"}},
		{[]berth.ListOption{berth.ListFilter("label", "tier")}, []string{"web", "created"}},
		{[]berth.ListOption{berth.ListFilter("label", "tier=db")}, []string{"created"}},
		{[]berth.ListOption{berth.ListFilter("exited", "3")}, []string{"exited"}},
		{[]berth.ListOption{berth.ListFilter("exited", "0")}, nil},
		{[]berth.ListOption{berth.ListFilter("ancestor", "busybox")}, []string{"worker", "web", "exited", "created"}},
		{[]berth.ListOption{berth.ListFilter("ancestor", "nosuchimage")}, nil},
		{[]berth.ListOption{berth.ListFilter("before", "web")}, []string{"exited", "created"}},
		{[]berth.ListOption{berth.ListFilter("since", "exited")}, []string{"worker", "web"}},
	} {
		if got := list(tc.opts...); !slices.Equal(got, tc.want) {
			t.Errorf("list %d options: %q, want %q", len(tc.opts), got, tc.want)
		}
	}
	for _, bad := range [][2]string{{"status", "sleeping"}, {"exited", "x"}, {"name", "("}, {"color", "red"}} {
		if _, err := rt.Containers(ctx, berth.ListFilter(bad[0], bad[1])); !errors.Is(err, berth.ErrInvalid) {
			t.Errorf("filter %s=%s: %v, want ErrInvalid", bad[0], bad[1], err)
		}
	}
	if _, err := rt.Containers(ctx, berth.ListFilter("before", "nosuch")); !errors.Is(err, berth.ErrNotFound) {
		t.Errorf("before=nosuch: %v", err)
	}
	if got := exited.CommandLine(); got != "sh -c 'exit 3'" {
		t.Errorf("command line %q", got)
	}
	rw, all, err := web.Size(ctx)
	if err != nil || rw != 0 || all <= 0 {
		t.Errorf("size %d %d %v", rw, all, err)
	}
	ctrExec(t, web, "echo 12345 > /f")
	if rw, _, _ := web.Size(ctx); rw != 6 {
		t.Errorf("size after writing 6 bytes: %d", rw)
	}
}

// TestPauseTopRename: pause freezes the processes (state "paused"),
// unpause resumes them; docker's errors for the wrong states; top lists
// the processes with docker's columns; rename checks names.
func TestPauseTopRename(t *testing.T) {
	testutil.RequiresRoot(t)
	ctx := context.Background()
	rt := newRuntime(t)
	importBusybox(t, rt, "busybox")
	c := sleeper(t, rt, berth.Spec{Name: "p1", Cmd: []string{"sh", "-c", "sleep 1000 & i=0; while true; do i=$((i+1)); echo $i > /tmp/count; sleep 0.01; done"}})
	// The counter runs.
	readCount := func() string {
		out, _ := ctrExecCode(t, c, "cat /tmp/count 2>/dev/null")
		return out
	}
	first := readCount()
	for readCount() == first {
	}

	top, err := c.Top(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(top.Titles, []string{"UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"}) {
		t.Fatalf("titles %q", top.Titles)
	}
	st, _ := c.State(ctx)
	var cmds []string
	for _, p := range top.Processes {
		if len(p) != 8 {
			t.Fatalf("row %q", p)
		}
		cmds = append(cmds, p[7])
		if p[1] == strconv.Itoa(st.Pid) && (p[0] != "root" || p[5] != "?" || !strings.HasPrefix(p[7], "sh -c sleep 1000 &")) {
			t.Errorf("init row %q", p)
		}
	}
	if !slices.Contains(cmds, "sleep 1000") {
		t.Errorf("top commands %q", cmds)
	}
	aux, err := c.Top(ctx, "aux")
	if err != nil || len(aux.Titles) != 11 || aux.Titles[2] != "%CPU" || len(aux.Processes) != len(top.Processes) {
		t.Errorf("top aux: %+v %v", aux, err)
	}
	custom, err := c.Top(ctx, "-eo", "pid,comm")
	if err != nil || !slices.Equal(custom.Titles, []string{"PID", "COMMAND"}) {
		t.Errorf("top -eo pid,comm: %+v %v", custom, err)
	}
	if _, err := c.Top(ctx, "--forest"); !errors.Is(err, berth.ErrInvalid) {
		t.Errorf("top --forest: %v", err)
	}

	if err := c.Unpause(ctx); !errors.Is(err, berth.ErrConflict) {
		t.Errorf("unpause of a running container: %v", err)
	}
	if err := c.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	if st, _ := c.State(ctx); st.Status != berth.StatusPaused || !st.Paused || !st.Running {
		t.Fatalf("state after pause: %+v", st)
	}
	if in, _ := c.Inspect(ctx); in.State.Status != "paused" || !in.State.Paused {
		t.Errorf("inspect after pause: %+v", in.State)
	}
	if err := c.Pause(ctx); !errors.Is(err, berth.ErrConflict) {
		t.Errorf("pause of a paused container: %v", err)
	}
	// Frozen: the kernel says so for the init's cgroup.
	if got := frozen(t, st.Pid); !got {
		t.Error("the container's cgroup is not frozen while paused")
	}
	if err := c.Unpause(ctx); err != nil {
		t.Fatal(err)
	}
	if st, _ := c.State(ctx); st.Status != berth.StatusRunning {
		t.Fatalf("state after unpause: %+v", st)
	}
	if frozen(t, st.Pid) {
		t.Error("the container's cgroup is frozen after unpause")
	}
	again := readCount()
	for readCount() == again {
	}

	if err := c.Rename(ctx, "p2"); err != nil {
		t.Fatal(err)
	}
	if _, err := rt.Container(ctx, "p1"); !errors.Is(err, berth.ErrNotFound) {
		t.Errorf("old name still resolves: %v", err)
	}
	if got, err := rt.Container(ctx, "p2"); err != nil || got.ID() != c.ID() {
		t.Errorf("new name: %v", err)
	}
	other := sleeper(t, rt, berth.Spec{Name: "other"})
	for _, bad := range []struct {
		name string
		kind error
	}{{"p2", berth.ErrInvalid}, {"other", berth.ErrConflict}, {"bad name!", berth.ErrInvalid}, {"", berth.ErrInvalid}} {
		if err := c.Rename(ctx, bad.name); !errors.Is(err, bad.kind) {
			t.Errorf("rename to %q: %v, want %v", bad.name, err, bad.kind)
		}
	}
	_ = other

	// A stopped container can be neither paused nor listed by top.
	if err := c.Kill(ctx, 9); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Pause(ctx); !errors.Is(err, berth.ErrNotRunning) {
		t.Errorf("pause of a stopped container: %v", err)
	}
	if _, err := c.Top(ctx); !errors.Is(err, berth.ErrNotRunning) {
		t.Errorf("top of a stopped container: %v", err)
	}
}

// frozen reports whether the freezer says pid's cgroup is frozen (v1
// freezer.state, v2 cgroup.events).
func frozen(t *testing.T, pid int) bool {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 {
			continue
		}
		if f[1] == "freezer" {
			st, err := os.ReadFile("/sys/fs/cgroup/freezer" + f[2] + "/freezer.state")
			if err != nil {
				t.Fatal(err)
			}
			return strings.TrimSpace(string(st)) == "FROZEN"
		}
		if f[0] == "0" && f[1] == "" {
			if ev, err := os.ReadFile("/sys/fs/cgroup" + f[2] + "/cgroup.events"); err == nil && strings.Contains(string(ev), "frozen 1") {
				return true
			}
		}
	}
	return false
}
