package berth_test

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"slices"
	"syscall"
	"testing"

	"github.com/berth-run/berth"
	"github.com/berth-run/berth/internal/testutil"
)

// TestDiffAndExport: diff shows A/C/D for an added, a modified and a
// deleted file (and nothing for a fresh container, whose mount points are
// no change); export's tar holds the filesystem with the changes, running
// or stopped.
func TestDiffAndExport(t *testing.T) {
	testutil.RequiresRoot(t)
	ctx := context.Background()
	rt := newRuntime(t)
	importBusybox(t, rt, "busybox")
	c := sleeper(t, rt, berth.Spec{})
	diff := func() []string {
		t.Helper()
		chs, err := c.Diff(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, ch := range chs {
			out = append(out, ch.String())
		}
		return out
	}
	if got := diff(); len(got) != 0 {
		t.Errorf("fresh container: %q", got)
	}
	ctrExec(t, c, "echo new > /added.txt; echo more >> /etc/passwd; rm /etc/group; mkdir -p /opt/x/y")
	want := []string{"A /added.txt", "C /etc", "D /etc/group", "C /etc/passwd", "A /opt", "A /opt/x", "A /opt/x/y"}
	if got := diff(); !slices.Equal(got, want) {
		t.Errorf("diff: %q, want %q", got, want)
	}
	export := func() map[string]string {
		t.Helper()
		var b bytes.Buffer
		if err := c.Export(ctx, &b); err != nil {
			t.Fatal(err)
		}
		files := map[string]string{}
		tr := tar.NewReader(&b)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				return files
			}
			if err != nil {
				t.Fatal(err)
			}
			data, _ := io.ReadAll(tr)
			files[h.Name] = string(data)
		}
	}
	for _, running := range []bool{true, false} {
		files := export()
		if files["added.txt"] != "new\n" || !bytes.HasSuffix([]byte(files["etc/passwd"]), []byte("more\n")) {
			t.Errorf("export (running %v): added %q passwd %q", running, files["added.txt"], files["etc/passwd"])
		}
		if _, ok := files["etc/group"]; ok {
			t.Errorf("export (running %v) has the deleted /etc/group", running)
		}
		if _, ok := files["bin/busybox"]; !ok {
			t.Errorf("export (running %v) lacks the image's files", running)
		}
		if _, ok := files["proc/self"]; ok {
			t.Errorf("export (running %v) went into /proc", running)
		}
		if running {
			if err := c.Kill(ctx, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			c.Wait(ctx)
			if got := diff(); !slices.Equal(got, want) {
				t.Errorf("diff of the stopped container: %q", got)
			}
		}
	}
}
