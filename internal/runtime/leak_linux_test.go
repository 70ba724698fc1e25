package runtime

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-run/berth/cgroup"
	"github.com/berth-run/berth/internal/testutil"
)

func countFds(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// childPids lists the children of every thread of this process.
func childPids(t *testing.T) []string {
	var all []string
	tasks, _ := os.ReadDir("/proc/self/task")
	for _, task := range tasks {
		b, _ := os.ReadFile("/proc/self/task/" + task.Name() + "/children")
		all = append(all, strings.Fields(string(b))...)
	}
	return all
}

func TestNoLeaks(t *testing.T) {
	spec := sh(t, "true")
	spec.Process.Args = []string{"true"}
	// Warm up (lazy runtime fds such as the netpoller).
	r := run(t, spec)
	if r.status.Code != 0 {
		t.Fatal(r.err)
	}
	fds := countFds(t)
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	n := 200
	if testing.Short() {
		n = 20
	}
	var ids []string
	for i := 0; i < n; i++ {
		id := testID(t)
		ids = append(ids, id)
		c, err := Create(context.Background(), CreateOpts{ID: id, Spec: spec, StateDir: filepath.Join(stateRoot(t), id), TieToParent: true})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		if st, err := c.Wait(); err != nil || st.Code != 0 {
			t.Fatalf("wait: %+v %v", st, err)
		}
		if err := c.Delete(context.Background(), false); err != nil {
			t.Fatal(err)
		}
	}
	if got := countFds(t); got != fds {
		ents, _ := os.ReadDir("/proc/self/fd")
		var links []string
		for _, e := range ents {
			l, _ := os.Readlink("/proc/self/fd/" + e.Name())
			links = append(links, e.Name()+"->"+l)
		}
		t.Errorf("fds: %d before, %d after: %v", fds, got, links)
	}
	// Other tests on the machine may mount things meanwhile: look for
	// mounts of ours (the rootfs, the state dirs).
	if after, _ := os.ReadFile("/proc/self/mountinfo"); string(after) != string(mounts) {
		for _, l := range strings.Split(string(after), "\n") {
			if strings.Contains(l, testutil.BusyboxRootfs(t)) || strings.Contains(l, stateRoot(t)) {
				t.Errorf("mount left: %s", l)
			}
		}
	}
	if kids := childPids(t); len(kids) != 0 {
		t.Errorf("processes left: %v", kids)
	}
	for _, id := range ids {
		if _, err := os.Stat(filepath.Join(stateRoot(t), id)); !os.IsNotExist(err) {
			t.Errorf("state dir of %s left: %v", id, err)
		}
		m, err := cgroup.New("berth/" + id)
		if err != nil {
			t.Fatal(err)
		}
		if m.Exists() {
			t.Errorf("cgroup of %s left", id)
		}
	}
}
