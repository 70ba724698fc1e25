package berth_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-run/berth"
	"github.com/berth-run/berth/internal/testutil"
)

// Volume tests that need no container: the volume store itself.

func volumeNames(t *testing.T, rt *berth.Runtime, filters ...string) []string {
	t.Helper()
	vols, err := rt.Volumes(context.Background(), filters...)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, v := range vols {
		out = append(out, v.Name())
	}
	return out
}

// volStoreEntries lists the containers and volumes of a store, to show that
// a refused operation created nothing.
func volStoreEntries(t *testing.T, rt *berth.Runtime) []string {
	t.Helper()
	var out []string
	for _, d := range []string{"containers", "volumes", "tmp"} {
		ents, err := os.ReadDir(filepath.Join(rt.Root(), d))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			out = append(out, d+"/"+e.Name())
		}
	}
	sort.Strings(out)
	return out
}

func TestVolumeCreateInspectRemove(t *testing.T) {
	ctx := context.Background()
	rt := newRuntime(t)
	v, err := rt.CreateVolume(ctx, "mydata", berth.WithVolumeLabels(map[string]string{"app": "db", "tier": ""}))
	if err != nil {
		t.Fatal(err)
	}
	in := v.Inspect()
	if in.Name != "mydata" || in.Driver != "local" || in.Scope != "local" || in.Labels["app"] != "db" ||
		in.Mountpoint != filepath.Join(rt.Root(), "volumes", "mydata", "_data") || in.Options == nil {
		t.Fatalf("inspect: %+v", in)
	}
	if ts, err := time.Parse(time.RFC3339, in.CreatedAt); err != nil || time.Since(ts) > time.Hour {
		t.Fatalf("CreatedAt %q: %v", in.CreatedAt, err)
	}
	if fi, err := os.Stat(in.Mountpoint); err != nil || !fi.IsDir() {
		t.Fatalf("mountpoint: %v", err)
	}
	// Creating it again returns it, unchanged, as docker does.
	again, err := rt.CreateVolume(ctx, "mydata", berth.WithVolumeLabels(map[string]string{"other": "x"}))
	if err != nil || again.Labels()["app"] != "db" || again.Labels()["other"] != "" {
		t.Fatalf("create again: %v %v", again.Labels(), err)
	}
	anon, err := rt.CreateVolume(ctx, "")
	if err != nil || !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(anon.Name()) {
		t.Fatalf("random name: %v %v", anon, err)
	}
	if _, err := rt.CreateVolume(ctx, "other", berth.WithVolumeOptions(map[string]string{"type": "tmpfs", "device": "tmpfs", "o": "size=1m"})); err != nil {
		t.Fatal(err)
	}
	got, err := rt.Volume(ctx, "other")
	if err != nil || got.Options()["o"] != "size=1m" || got.Inspect().Options["type"] != "tmpfs" {
		t.Fatalf("options: %v %v", got, err)
	}

	if names := volumeNames(t, rt); len(names) != 3 || names[0] != anon.Name() || names[1] != "mydata" || names[2] != "other" {
		t.Fatalf("ls: %v", names)
	}
	for _, c := range []struct {
		filters []string
		want    string
	}{
		{[]string{"name=myd"}, "mydata"},
		{[]string{"name=^oth"}, "other"},
		{[]string{"label=app=db"}, "mydata"},
		{[]string{"label=tier"}, "mydata"},
		{[]string{"label=app=web"}, ""},
		{[]string{"driver=local", "name=mydata"}, "mydata"},
		{[]string{"dangling=false"}, ""},
		{[]string{"dangling=true", "name=other"}, "other"},
	} {
		if got := strings.Join(volumeNames(t, rt, c.filters...), ","); got != c.want {
			t.Errorf("ls %v = %q, want %q", c.filters, got, c.want)
		}
	}
	for _, bad := range [][]string{{"color=red"}, {"dangling=maybe"}, {"name"}} {
		if _, err := rt.Volumes(ctx, bad...); !errors.Is(err, berth.ErrInvalid) {
			t.Errorf("ls %v: %v, want ErrInvalid", bad, err)
		}
	}

	if err := v.Remove(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(in.Mountpoint); !os.IsNotExist(err) {
		t.Fatalf("data left after rm: %v", err)
	}
	if _, err := rt.Volume(ctx, "mydata"); !errors.Is(err, berth.ErrNotFound) {
		t.Fatalf("after rm: %v", err)
	}
	if err := v.Remove(ctx); !errors.Is(err, berth.ErrNotFound) {
		t.Fatalf("rm twice: %v", err)
	}
	if err := v.Remove(ctx, berth.RemoveForce()); err != nil {
		t.Fatalf("rm -f of a removed volume: %v", err)
	}
}

func TestVolumeBadInput(t *testing.T) {
	ctx := context.Background()
	rt := newRuntime(t)
	before := volStoreEntries(t, rt)
	for _, name := range []string{"a", "-x", "a/b", "..", "../x", "with space", "x:y", "/abs"} {
		if _, err := rt.CreateVolume(ctx, name); !errors.Is(err, berth.ErrInvalid) || !strings.Contains(err.Error(), "invalid characters for a local volume name") {
			t.Errorf("create %q: %v, want ErrInvalid", name, err)
		}
	}
	if _, err := rt.CreateVolume(ctx, "x1", berth.WithVolumeDriver("nfs")); !errors.Is(err, berth.ErrNotFound) {
		t.Errorf("driver nfs: %v", err)
	}
	if _, err := rt.CreateVolume(ctx, "x1", berth.WithVolumeOptions(map[string]string{"color": "red"})); !errors.Is(err, berth.ErrInvalid) {
		t.Errorf("unknown option: %v", err)
	}
	if _, err := rt.CreateVolume(ctx, "x1", berth.WithVolumeOptions(map[string]string{"type": "tmpfs"})); !errors.Is(err, berth.ErrInvalid) {
		t.Errorf("type without device: %v", err)
	}
	for _, name := range []string{"nope", "..", "a/b", ""} {
		if _, err := rt.Volume(ctx, name); !errors.Is(err, berth.ErrNotFound) {
			t.Errorf("volume %q: %v", name, err)
		}
	}
	if after := volStoreEntries(t, rt); strings.Join(after, " ") != strings.Join(before, " ") {
		t.Fatalf("bad input changed the store: %v -> %v", before, after)
	}
}

func TestVolumePrune(t *testing.T) {
	ctx := context.Background()
	rt := newRuntime(t)
	for _, n := range []string{"keep1", "keep2"} {
		if _, err := rt.CreateVolume(ctx, n, berth.WithVolumeLabels(map[string]string{"n": n})); err != nil {
			t.Fatal(err)
		}
	}
	anon, err := rt.CreateVolume(ctx, "", berth.WithVolumeLabels(map[string]string{berth.AnonymousVolumeLabel: ""}))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(anon.Mountpoint(), "f"), make([]byte, 1000), 0o644); err != nil {
		t.Fatal(err)
	}
	// docker >= 23: only anonymous volumes by default.
	names, reclaimed, err := rt.PruneVolumes(ctx)
	if err != nil || len(names) != 1 || names[0] != anon.Name() || reclaimed != 1000 {
		t.Fatalf("prune: %v %d %v", names, reclaimed, err)
	}
	if _, _, err := rt.PruneVolumes(ctx, berth.PruneVolumeFilters("color=red")); !errors.Is(err, berth.ErrInvalid) {
		t.Fatalf("bad prune filter: %v", err)
	}
	names, _, err = rt.PruneVolumes(ctx, berth.PruneAllVolumes(), berth.PruneVolumeFilters("label!=n=keep2"))
	if err != nil || strings.Join(names, ",") != "keep1" {
		t.Fatalf("prune -a label!=: %v %v", names, err)
	}
	names, _, err = rt.PruneVolumes(ctx, berth.PruneVolumeFilters("all=true", "label=n"))
	if err != nil || strings.Join(names, ",") != "keep2" {
		t.Fatalf("prune all=true: %v %v", names, err)
	}
	if left := volumeNames(t, rt); len(left) != 0 {
		t.Fatalf("left: %v", left)
	}
	assertConsistent(t, rt)
}

// Helpers for the container tests.

// volBuffer is a bytes.Buffer safe for a container's output pump and
// the test to share.
type volBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *volBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *volBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// volCleanup removes c (and its anonymous volumes) when the test ends.
func volCleanup(t *testing.T, c *berth.Container) {
	t.Cleanup(func() {
		if err := c.Remove(context.Background(), berth.RemoveForce(), berth.RemoveVolumes()); err != nil && !errors.Is(err, berth.ErrNotFound) {
			t.Errorf("remove %s: %v", c.Name(), err)
		}
	})
}

// volRun runs spec to its end (network "none" unless set) and returns its
// container, output, error output and exit code.
func volRun(t *testing.T, rt *berth.Runtime, spec berth.Spec) (*berth.Container, string, string, int) {
	t.Helper()
	if spec.Network == "" {
		spec.Network = "none"
	}
	var out, errOut volBuffer
	c, err := rt.Run(context.Background(), spec, berth.WithStdout(&out), berth.WithStderr(&errOut))
	if err != nil {
		t.Fatalf("run %v: %v", spec.Cmd, err)
	}
	if !spec.AutoRemove {
		volCleanup(t, c)
	}
	code, err := c.Wait(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return c, out.String(), errOut.String(), code
}

// volStart starts an existing container to its end and returns its
// output, its error output and its exit code.
func volStart(t *testing.T, c *berth.Container) (string, string, int) {
	t.Helper()
	var out, errOut volBuffer
	if err := c.Start(context.Background(), berth.WithStdout(&out), berth.WithStderr(&errOut)); err != nil {
		t.Fatal(err)
	}
	code, err := c.Wait(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return out.String(), errOut.String(), code
}

func volSh(script string) []string { return []string{"sh", "-c", script} }

func volParse(t *testing.T, parse func(string) (berth.Mount, error), values ...string) []berth.Mount {
	t.Helper()
	var out []berth.Mount
	for _, v := range values {
		m, err := parse(v)
		if err != nil {
			t.Fatalf("parse %q: %v", v, err)
		}
		out = append(out, m)
	}
	return out
}

// volEntry is a file, directory or symlink added to the busybox image.
type volEntry struct {
	name, body, link string
	mode             int64
	uid, gid         int
	dir              bool
}

// volImage imports busybox plus extra entries, with --change
// instructions, as name.
func volImage(t *testing.T, rt *berth.Runtime, name string, extra []volEntry, changes ...string) *berth.Image {
	t.Helper()
	base, err := os.Open(testutil.BusyboxTar(t))
	if err != nil {
		t.Fatal(err)
	}
	defer base.Close()
	var buf bytes.Buffer
	tr, tw := tar.NewReader(base), tar.NewWriter(&buf)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(tw, tr); err != nil {
			t.Fatal(err)
		}
	}
	for _, e := range extra {
		hdr := &tar.Header{Name: e.name, Mode: e.mode, Uid: e.uid, Gid: e.gid, ModTime: time.Unix(1700000000, 0), Format: tar.FormatPAX}
		switch {
		case e.dir:
			hdr.Typeflag = tar.TypeDir
		case e.link != "":
			hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, e.link
		default:
			hdr.Typeflag, hdr.Size = tar.TypeReg, int64(len(e.body))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	im, err := rt.Import(context.Background(), &buf, name, berth.WithChanges(append([]string{`CMD ["sh"]`}, changes...)...))
	if err != nil {
		t.Fatal(err)
	}
	return im
}

func volRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func volWrite(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func volMounts(t *testing.T, c *berth.Container) map[string]berth.MountPoint {
	t.Helper()
	in, err := c.Inspect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]berth.MountPoint{}
	for _, m := range in.Mounts {
		out[m.Destination] = m
	}
	return out
}
