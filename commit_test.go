package berth_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/berth-run/berth"
	"github.com/berth-run/berth/internal/testutil"
)

// sleeper runs a container of busybox that sleeps (no network), removed
// when the test ends.
func sleeper(t *testing.T, rt *berth.Runtime, spec berth.Spec) *berth.Container {
	t.Helper()
	if spec.Image == "" {
		spec.Image = "busybox"
	}
	if spec.Network == "" {
		spec.Network = "none"
	}
	if spec.Cmd == nil {
		spec.Cmd = []string{"sleep", "1000"}
	}
	c, err := rt.Run(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Remove(context.Background(), berth.RemoveForce()) })
	return c
}

// ctrExec runs sh -c script in c and returns its output; it must exit 0.
func ctrExec(t *testing.T, c *berth.Container, script string) string {
	t.Helper()
	out, code := ctrExecCode(t, c, script)
	if code != 0 {
		t.Fatalf("exec %q: exit %d: %s", script, code, out)
	}
	return out
}

func ctrExecCode(t *testing.T, c *berth.Container, script string) (string, int) {
	t.Helper()
	ctx := context.Background()
	var out lockedBuffer // stdout and stderr are copied by two goroutines
	p, err := c.Exec(ctx, berth.ExecSpec{Cmd: []string{"sh", "-c", script}, Stdout: &out, Stderr: &out})
	if err != nil {
		t.Fatal(err)
	}
	code, err := p.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return out.String(), code
}

// lockedBuffer is a bytes.Buffer safe for concurrent writers.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// runOutput runs spec to its end and returns its output and exit code.
func runOutput(t *testing.T, rt *berth.Runtime, spec berth.Spec) (string, int) {
	t.Helper()
	ctx := context.Background()
	if spec.Network == "" {
		spec.Network = "none"
	}
	var out lockedBuffer
	c, err := rt.Run(ctx, spec, berth.WithStdout(&out), berth.WithStderr(&out))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Remove(ctx, berth.RemoveForce())
	code, err := c.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return out.String(), code
}

// TestCommitSeed is the seed course's commit case (P24-P25, P28): add a
// file in a running container, commit it with -m and -a, run the new
// image: the file is there, the image has one layer more than its base,
// the base layers are shared (same blobs, same layer directories), and the
// history shows the message and the author.
func TestCommitSeed(t *testing.T) {
	testutil.RequiresRoot(t)
	ctx := context.Background()
	rt := newRuntime(t)
	base := importBusybox(t, rt, "busybox")
	c := sleeper(t, rt, berth.Spec{Cmd: []string{"sh", "-c", "sleep 1000"}})
	ctrExec(t, c, "echo hi > /added.txt; rm /etc/group; echo changed >> /etc/passwd")

	im, err := c.Commit(ctx, "zzyyubuntu:1.2", berth.CommitMessage("add ifconfig"), berth.CommitAuthor("zzyy"))
	if err != nil {
		t.Fatal(err)
	}
	// The container runs on, unpaused.
	if st, err := c.State(ctx); err != nil || st.Status != berth.StatusRunning {
		t.Fatalf("container after commit: %+v %v", st, err)
	}
	if got := im.Tags(); len(got) != 1 || got[0] != "zzyyubuntu:1.2" {
		t.Fatalf("tags %v", got)
	}
	bl, nl := base.Layers(), im.Layers()
	if len(nl) != len(bl)+1 {
		t.Fatalf("%d layers, want %d", len(nl), len(bl)+1)
	}
	for i, l := range bl {
		if nl[i].Digest() != l.Digest() || nl[i].DiffID() != l.DiffID() || nl[i].ChainID() != l.ChainID() {
			t.Errorf("layer %d: %s/%s, base has %s/%s", i, nl[i].Digest(), nl[i].ChainID(), l.Digest(), l.ChainID())
		}
	}
	// Shared on disk: one directory per base layer in the store.
	dirs, _ := os.ReadDir(filepath.Join(rt.Root(), "layers"))
	if len(dirs) != len(nl) {
		t.Errorf("%d layer directories for %d distinct layers", len(dirs), len(nl))
	}
	cfg := im.Config()
	if cfg.Author != "zzyy" {
		t.Errorf("author %q", cfg.Author)
	}
	h := im.History()
	if h[0].Comment != "add ifconfig" || h[0].CreatedBy != "sh -c sleep 1000" || h[0].EmptyLayer {
		t.Errorf("newest history entry %+v", h[0])
	}
	if len(h) != len(base.History())+1 {
		t.Errorf("history has %d entries, base %d", len(h), len(base.History()))
	}
	if !slices.Equal(cfg.Config.Cmd, []string{"sh", "-c", "sleep 1000"}) {
		t.Errorf("committed Cmd %q", cfg.Config.Cmd)
	}
	// The new image runs with the change.
	out, code := runOutput(t, rt, berth.Spec{Image: "zzyyubuntu:1.2", Cmd: []string{"sh", "-c", "cat /added.txt; test -e /etc/group || echo nogroup; tail -n1 /etc/passwd"}})
	if code != 0 || out != "hi\nnogroup\nchanged\n" {
		t.Fatalf("run of the committed image: %d %q", code, out)
	}
	// The new layer holds the changes and not the mount points the
	// runtime made (/etc/resolv.conf here).
	if got := layerNames(t, nl[len(nl)-1]); !slices.Equal(got, []string{"added.txt", "etc/", "etc/.wh.group", "etc/passwd"}) {
		t.Errorf("new layer holds %q", got)
	}
	assertConsistent(t, rt)
}

// layerNames lists the entries of a layer's tar.
func layerNames(t *testing.T, l *berth.Layer) []string {
	t.Helper()
	rc, err := l.Uncompressed(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var names []string
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
	}
}

// TestCommitReplacesTag: committing to a tag another image has leaves that
// image dangling; --change applies; the -c CMD runs; a container without
// changes commits to an empty history entry; bad input changes nothing.
func TestCommitReplacesTag(t *testing.T) {
	testutil.RequiresRoot(t)
	ctx := context.Background()
	rt := newRuntime(t)
	importBusybox(t, rt, "busybox")
	c := sleeper(t, rt, berth.Spec{Env: []string{"FOO=bar"}, Labels: map[string]string{"a": "b"}})

	first, err := c.Commit(ctx, "app:v1")
	if err != nil {
		t.Fatal(err)
	}
	if h := first.History(); !h[0].EmptyLayer || len(first.Layers()) != 1 {
		t.Fatalf("unchanged container: %d layers, history %+v", len(first.Layers()), h[0])
	}
	ctrExec(t, c, "mkdir -p /opt/app && echo 1 > /opt/app/v")
	second, err := c.Commit(ctx, "app:v1", berth.CommitChanges(`CMD ["cat", "/opt/app/v"]`, "ENV BAR=baz"), berth.CommitPause(false))
	if err != nil {
		t.Fatal(err)
	}
	old, err := rt.Image(ctx, first.ID())
	if err != nil {
		t.Fatal(err)
	}
	if !old.Dangling() || len(second.Tags()) != 1 {
		t.Fatalf("old image tags %v, new %v", old.Tags(), second.Tags())
	}
	cfg := second.Config().Config
	if !slices.Contains(cfg.Env, "FOO=bar") || !slices.Contains(cfg.Env, "BAR=baz") || cfg.Labels["a"] != "b" {
		t.Errorf("config %+v", cfg)
	}
	if out, code := runOutput(t, rt, berth.Spec{Image: "app:v1"}); code != 0 || out != "1\n" {
		t.Errorf("run: %d %q", code, out)
	}

	before := storeSnapshot(t, rt)
	for _, bad := range []struct {
		ref  string
		opts []berth.CommitOption
	}{
		{"UPPER:case", nil},
		{"app@sha256:" + strings.Repeat("a", 64), nil},
		{"app:v2", []berth.CommitOption{berth.CommitChanges("FROBNICATE x")}},
		{"app:v2", []berth.CommitOption{berth.CommitChanges("ONBUILD RUN x")}},
	} {
		if _, err := c.Commit(ctx, bad.ref, bad.opts...); !errors.Is(err, berth.ErrInvalid) {
			t.Errorf("commit %q: %v, want ErrInvalid", bad.ref, err)
		}
	}
	if st, _ := c.State(ctx); st.Status != berth.StatusRunning {
		t.Errorf("status after refused commits: %s", st.Status)
	}
	if after := storeSnapshot(t, rt); !slices.Equal(before, after) {
		t.Errorf("a refused commit changed the store:\n%v\n%v", before, after)
	}
	assertConsistent(t, rt)
}

// TestCommitStopped commits a container that has exited.
func TestCommitStopped(t *testing.T) {
	testutil.RequiresRoot(t)
	ctx := context.Background()
	rt := newRuntime(t)
	importBusybox(t, rt, "busybox")
	out, code := runOutput(t, rt, berth.Spec{Image: "busybox", Name: "done", Cmd: []string{"sh", "-c", "echo x > /x"}})
	_ = out
	if code != 0 {
		t.Fatal(code)
	}
	// runOutput removed it: run one that stays.
	c, err := rt.Run(ctx, berth.Spec{Image: "busybox", Network: "none", Cmd: []string{"sh", "-c", "echo y > /y"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Remove(ctx, berth.RemoveForce()) })
	if _, err := c.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	im, err := c.Commit(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if !im.Dangling() {
		t.Errorf("tags %v", im.Tags())
	}
	if out, code := runOutput(t, rt, berth.Spec{Image: im.ID(), Cmd: []string{"cat", "/y"}}); code != 0 || out != "y\n" {
		t.Errorf("run: %d %q", code, out)
	}
}
