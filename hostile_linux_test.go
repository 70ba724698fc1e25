package berth_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"

	"github.com/berth-run/berth"
	"github.com/berth-run/berth/internal/testutil"
)

// Hostile layers through every entry point that takes one: import, load
// and pull. Each is refused with an ErrInvalid error naming what is wrong
// and changes nothing — in the store or outside it — or, for what docker
// accepts (absolute names, device nodes, setuid files), is kept inside the
// layer as data and never used on the host.

// hostileEntry is one tar entry of a hostile layer.
type hostileEntry struct {
	hdr  tar.Header
	body string
}

func reg(name, body string) hostileEntry {
	return hostileEntry{hdr: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(body))}, body: body}
}
func dirEnt(name string) hostileEntry {
	return hostileEntry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755}}
}
func sym(name, target string) hostileEntry {
	return hostileEntry{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777}}
}
func hard(name, target string) hostileEntry {
	return hostileEntry{hdr: tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: target, Mode: 0o644}}
}

func hostileTar(t testing.TB, entries []hostileEntry) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range entries {
		h := e.hdr
		h.Format = tar.FormatPAX
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// bombTar is a tar of one file of n zero bytes; gzip'd (as every entry
// point gets it) it is about a thousandth of that.
func bombTar(t testing.TB, n int64) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "zeros", Mode: 0o644, Size: n}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(make([]byte, n)); err != nil {
		t.Fatal(err)
	}
	tw.Close()
	return b.Bytes()
}

func gzipped(t testing.TB, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&out, gzip.BestCompression)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	zw.Close()
	return out.Bytes()
}

// hostileLayers are the layers every entry point must refuse; sentinel is
// a host directory outside the store that they aim at.
func hostileLayers(t testing.TB, sentinel string) []struct {
	name, mention string
	layer         []byte
} {
	up := strings.Repeat("../", 30)
	mk := func(e ...hostileEntry) []byte { return hostileTar(t, e) }
	return []struct {
		name, mention string
		layer         []byte
	}{
		{"dotdot", "escapes", mk(reg(up+sentinel[1:]+"/dotdot", "pwned"))},
		{"absolute-dotdot", "escapes", mk(reg("/"+up+sentinel[1:]+"/absdotdot", "pwned"))},
		{"symlink-parent", `"l/x"`, mk(sym("l", sentinel), reg("l/x", "pwned"))},
		{"symlink-parent-relative", `"rel/x"`, mk(sym("rel", up+sentinel[1:]), reg("rel/x", "pwned"))},
		{"dir-swapped-for-symlink", `"d/x"`, mk(dirEnt("d"), sym("d", sentinel), reg("d/x", "pwned"))},
		{"hardlink-absolute", "not in the layer", mk(hard("h", sentinel+"/file"))},
		{"hardlink-dotdot", `"h"`, mk(hard("h", up+sentinel[1:]+"/file"))},
		{"hardlink-through-symlink", `"h"`, mk(sym("l", sentinel), hard("h", "l/file"))},
		{"whiteout-dotdot", "escapes", mk(reg(up+".wh.file", ""))},
		{"whiteout-through-symlink", `"l/.wh.file"`, mk(sym("l", sentinel), reg("l/.wh.file", ""))},
		{"opaque-through-symlink", `"l/.wh..wh..opq"`, mk(sym("l", sentinel), reg("l/.wh..wh..opq", ""))},
		{"bomb", "limit of 16777216 bytes", bombTar(t, 64<<20)},
		{"bomb-many-files", "limit of 16777216 bytes", func() []byte {
			var e []hostileEntry
			for i := range 8 {
				e = append(e, reg(fmt.Sprintf("f%d", i), strings.Repeat("\x00", 4<<20)))
			}
			return mk(e...)
		}()},
	}
}

// hostileSandbox is a host directory hostile layers aim at, and the store.
type hostileSandbox struct {
	rt       *berth.Runtime
	sentinel string
}

func newHostileSandbox(t *testing.T) *hostileSandbox {
	t.Helper()
	d := t.TempDir()
	rt, err := berth.Open(context.Background(), berth.WithRoot(filepath.Join(d, "root")), berth.WithRunRoot(filepath.Join(d, "run")),
		berth.WithMaxLayerSize(16<<20))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	s := &hostileSandbox{rt: rt, sentinel: filepath.Join(d, "sentinel")}
	if err := os.Mkdir(s.sentinel, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.sentinel, "file"), []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	return s
}

// untouched fails the test if anything but the sentinel's own file is in
// the sentinel directory, or that file changed.
func (s *hostileSandbox) untouched(t *testing.T) {
	t.Helper()
	ents, err := os.ReadDir(s.sentinel)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 || ents[0].Name() != "file" {
		t.Errorf("the sentinel directory outside the store changed: %v", ents)
	}
	if b, _ := os.ReadFile(filepath.Join(s.sentinel, "file")); string(b) != "precious" {
		t.Errorf("the file outside the store changed: %q", b)
	}
}

// refused checks err is a clear refusal and that nothing changed.
func (s *hostileSandbox) refused(t *testing.T, err error, mention string, before []string) {
	t.Helper()
	t.Logf("refused: %v", err)
	if !errors.Is(err, berth.ErrInvalid) || !strings.Contains(err.Error(), mention) {
		t.Errorf("got %v, want an ErrInvalid error mentioning %s", err, mention)
	}
	if after := storeSnapshot(t, s.rt); !equalStrings(before, after) {
		t.Errorf("the store changed:\n%v\n%v", before, after)
	}
	assertConsistent(t, s.rt)
	s.untouched(t)
}

// hostileImage wraps one layer in an image (gzip-compressed).
func hostileImage(t *testing.T, layer []byte) *testutil.BuiltImage {
	p := filepath.Join(t.TempDir(), "layer.tar")
	if err := os.WriteFile(p, layer, 0o644); err != nil {
		t.Fatal(err)
	}
	return testutil.BuildImage(t, testutil.TestImage{Layers: []testutil.TestLayer{{TarFile: p}}, Cmd: []string{"sh"}})
}

func TestHostileLayersImport(t *testing.T) {
	testutil.RequiresRoot(t)
	s := newHostileSandbox(t)
	for _, tc := range hostileLayers(t, s.sentinel) {
		t.Run(tc.name, func(t *testing.T) {
			before := storeSnapshot(t, s.rt)
			_, err := s.rt.Import(context.Background(), bytes.NewReader(gzipped(t, tc.layer)), "hostile:"+tc.name)
			s.refused(t, err, tc.mention, before)
		})
	}
}

func TestHostileLayersLoad(t *testing.T) {
	testutil.RequiresRoot(t)
	s := newHostileSandbox(t)
	for _, tc := range hostileLayers(t, s.sentinel) {
		t.Run(tc.name, func(t *testing.T) {
			img := hostileImage(t, tc.layer)
			archive := testutil.OCIArchive(t, map[string]*testutil.BuiltImage{"docker.io/library/hostile:" + tc.name: img})
			before := storeSnapshot(t, s.rt)
			_, err := s.rt.Load(context.Background(), bytes.NewReader(archive))
			s.refused(t, err, tc.mention, before)
		})
	}
}

func TestHostileLayersPull(t *testing.T) {
	testutil.RequiresRoot(t)
	s := newHostileSandbox(t)
	reg := testutil.StartRegistry(t, testutil.RegistryOptions{})
	for _, tc := range hostileLayers(t, s.sentinel) {
		t.Run(tc.name, func(t *testing.T) {
			img := hostileImage(t, tc.layer)
			testutil.PushRaw(t, reg.Addr, "hostile/"+tc.name, "latest", img.Blobs(), img.Manifest, img.MediaType)
			before := storeSnapshot(t, s.rt)
			_, err := s.rt.Pull(context.Background(), reg.Addr+"/hostile/"+tc.name+":latest")
			s.refused(t, err, tc.mention, before)
		})
	}
}

// TestHostileLayersKeptAsData: what docker accepts in a layer — absolute
// names, device nodes, setuid files — is kept inside the image, through
// every entry point, and never reaches or runs on the host: an absolute
// name lands below the layer, a device node cannot be opened in a
// container (the device cgroup), a setuid file is only data on the host.
func TestHostileLayersKeptAsData(t *testing.T) {
	testutil.RequiresRoot(t)
	ctx := context.Background()
	s := newHostileSandbox(t)
	marker := filepath.Join(s.sentinel, "suid-ran")
	busybox := testutil.BusyboxRootfs(t)
	bb, err := os.ReadFile(filepath.Join(busybox, "bin", "busybox"))
	if err != nil {
		t.Fatal(err)
	}
	layer := hostileTar(t, []hostileEntry{
		dirEnt("bin"), {hdr: tar.Header{Typeflag: tar.TypeReg, Name: "bin/busybox", Mode: 0o755, Size: int64(len(bb))}, body: string(bb)},
		sym("bin/sh", "busybox"), sym("bin/cat", "busybox"), sym("bin/stat", "busybox"), sym("bin/touch", "busybox"),
		reg(s.sentinel+"/absolute", "inside"),
		{hdr: tar.Header{Typeflag: tar.TypeChar, Name: "evil-mem", Mode: 0o666, Devmajor: 1, Devminor: 1}},
		{hdr: tar.Header{Typeflag: tar.TypeBlock, Name: "evil-disk", Mode: 0o666, Devmajor: 7, Devminor: 0}},
		{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "suid", Mode: 0o4755, Size: int64(len("#!/bin/sh\ntouch " + marker + "\n"))},
			body: "#!/bin/sh\ntouch " + marker + "\n"},
	})
	reg := testutil.StartRegistry(t, testutil.RegistryOptions{})
	img := hostileImage(t, layer)
	testutil.PushRaw(t, reg.Addr, "hostile/data", "latest", img.Blobs(), img.Manifest, img.MediaType)
	if _, err := s.rt.Pull(ctx, reg.Addr+"/hostile/data:latest"); err != nil {
		t.Fatalf("pull: %v", err)
	}
	if _, err := s.rt.Load(ctx, bytes.NewReader(testutil.OCIArchive(t, map[string]*testutil.BuiltImage{"docker.io/library/loaded:latest": img}))); err != nil {
		t.Fatalf("load: %v", err)
	}
	if _, err := s.rt.Import(ctx, bytes.NewReader(layer), "imported", berth.WithChanges(`CMD ["sh"]`)); err != nil {
		t.Fatalf("import: %v", err)
	}
	s.untouched(t)
	for _, image := range []string{reg.Addr + "/hostile/data:latest", "loaded", "imported"} {
		var out bytes.Buffer
		script := fmt.Sprintf(`cat %s/absolute; stat -c '%%a %%u' /suid; /suid && echo suid ran in the container
cat /evil-mem >/dev/null 2>&1 && echo OPENED evil-mem; cat /evil-disk >/dev/null 2>&1 && echo OPENED evil-disk; true`, s.sentinel)
		c, err := s.rt.Run(ctx, berth.Spec{Image: image, Cmd: []string{"sh", "-c", script}, Network: "none", AutoRemove: true},
			berth.WithStdout(&out), berth.WithStderr(&out))
		if err != nil {
			t.Fatalf("%s: run: %v", image, err)
		}
		if code, err := c.Wait(ctx); err != nil || code != 0 {
			t.Fatalf("%s: %d %v: %s", image, code, err, out.String())
		}
		if want := "inside4755 0\nsuid ran in the container\n"; out.String() != want {
			t.Errorf("%s: container saw %q, want %q (a device node of the image must not open)", image, out.String(), want)
		}
	}
	s.untouched(t)
	if _, err := os.Stat(marker); err == nil {
		t.Error("the setuid file ran on the host")
	}
	assertConsistent(t, s.rt)
}

// TestCopySymlinkSwapRace: while the container swaps /d between a
// directory and a symlink to a host path (which resolves to nothing in
// the container), copies into and out of /d from the host either work on
// the container's files or fail: nothing is written to or read from the
// host path, whatever the timing.
func TestCopySymlinkSwapRace(t *testing.T) {
	testutil.RequiresRoot(t)
	ctx := context.Background()
	rt := newRuntime(t)
	importBusybox(t, rt, "busybox")
	s := &hostileSandbox{rt: rt, sentinel: filepath.Join(t.TempDir(), "sentinel")}
	if err := os.Mkdir(s.sentinel, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.sentinel, "file"), []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	// /d appears whole (a rename), so that its file always reads "ctr".
	swapper := fmt.Sprintf(`while :; do rm -rf /d /d.new; mkdir /d.new; echo ctr > /d.new/file; mv /d.new /d; rm -rf /d; ln -s %s /d; done`, s.sentinel)
	c := sleeper(t, rt, berth.Spec{Cmd: []string{"sh", "-c", swapper}})
	src := filepath.Join(t.TempDir(), "pwned")
	if err := os.WriteFile(src, []byte("pwned\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	ins, outs := 0, 0
	for i := 0; i < 300; i++ {
		if c.CopyIn(ctx, src, "/d/pwned") == nil {
			ins++
		}
		dst := filepath.Join(out, fmt.Sprint(i))
		if c.CopyOut(ctx, "/d/file", dst) == nil {
			outs++
			if b, _ := os.ReadFile(dst); string(b) != "ctr\n" {
				t.Fatalf("copy out of /d/file read %q: not the container's file", b)
			}
		}
		var tb bytes.Buffer
		tw := tar.NewWriter(&tb)
		tw.WriteHeader(&tar.Header{Name: "pwned2", Typeflag: tar.TypeReg, Mode: 0o644, Size: 2})
		tw.Write([]byte("x\n"))
		tw.Close()
		_ = c.CopyTo(ctx, "/d", &tb)
	}
	t.Logf("%d copies in and %d out got through the swapping directory", ins, outs)
	s.untouched(t)
}

// TestMaxLayerSizeInvalid: a negative limit is refused before anything is
// made.
func TestMaxLayerSizeInvalid(t *testing.T) {
	d := t.TempDir()
	_, err := berth.Open(context.Background(), berth.WithRoot(filepath.Join(d, "root")), berth.WithRunRoot(filepath.Join(d, "run")), berth.WithMaxLayerSize(-1))
	if !errors.Is(err, berth.ErrInvalid) {
		t.Fatalf("open: %v, want ErrInvalid", err)
	}
	if ents, _ := os.ReadDir(d); len(ents) != 0 {
		t.Fatalf("open made %v", ents)
	}
}
