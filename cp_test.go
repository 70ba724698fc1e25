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
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/berth-run/berth"
	"github.com/berth-run/berth/internal/testutil"
)

// hostEtc is what the cp tests must never change: the host's /etc
// listing and its passwd file.
func hostEtc(t *testing.T) string {
	t.Helper()
	ents, err := os.ReadDir("/etc")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	pw, err := os.ReadFile("/etc/passwd")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(names, ",") + "\n" + string(pw)
}

// hostileScript makes symlinks that point at the host's files if they
// were followed outside the container, and marks the container's own.
const hostileScript = `echo ctr-passwd >> /etc/passwd
ln -s /etc /evil; ln -s /etc/passwd /pw; ln -s ../../../../../etc /d-up
mkdir -p /d/sub; echo a > /d/a; echo b > /d/sub/b; ln -s /etc/shadow /d/shadowlink
cp /bin/busybox /d/suid; chmod 4755 /d/suid`

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func treeOf(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || p == dir {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		if d.Type()&os.ModeSymlink != 0 {
			l, _ := os.Readlink(p)
			rel += "->" + l
		} else if d.IsDir() {
			rel += "/"
		}
		out = append(out, rel)
		return nil
	})
	sort.Strings(out)
	return out
}

// TestCopyHostileSymlinks: symlinks in the container that point at /etc
// resolve inside the container, whichever way the copy goes, whether the
// container runs or not.
func TestCopyHostileSymlinks(t *testing.T) {
	testutil.RequiresRoot(t)
	rt := newRuntime(t)
	importBusybox(t, rt, "busybox")
	etc := hostEtc(t)
	for _, running := range []bool{true, false} {
		name := map[bool]string{true: "running", false: "stopped"}[running]
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			c := sleeper(t, rt, berth.Spec{})
			ctrExec(t, c, hostileScript)
			if !running {
				if err := c.Kill(ctx, syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
				if _, err := c.Wait(ctx); err != nil {
					t.Fatal(err)
				}
			}
			host := t.TempDir()
			// Reads through the symlinks give the container's files.
			for _, src := range []string{"/evil/passwd", "/d-up/passwd", "/../../../../etc/passwd", "d-up/../../etc/./passwd"} {
				dst := filepath.Join(host, "out")
				if err := c.CopyOut(ctx, src, dst); err != nil {
					t.Fatalf("copy out %s: %v", src, err)
				}
				if got := readFile(t, dst); !strings.HasSuffix(got, "ctr-passwd\n") {
					t.Fatalf("%s gave %q", src, got)
				}
				os.Remove(dst)
			}
			// Without -L a symlink is copied as a symlink; with -L its
			// target in the container is.
			if err := c.CopyOut(ctx, "/pw", host); err != nil {
				t.Fatal(err)
			}
			if l, err := os.Readlink(filepath.Join(host, "pw")); err != nil || l != "/etc/passwd" {
				t.Fatalf("pw: %q %v", l, err)
			}
			if err := c.CopyOut(ctx, "/pw", filepath.Join(host, "pwL"), berth.CopyFollowLink()); err != nil {
				t.Fatal(err)
			}
			if got := readFile(t, filepath.Join(host, "pwL")); !strings.HasSuffix(got, "ctr-passwd\n") {
				t.Fatalf("-L pw gave %q", got)
			}
			// A whole directory with a symlink to /etc/shadow: the link is
			// copied, never followed on the host.
			if err := c.CopyOut(ctx, "/d", filepath.Join(host, "dcopy")); err != nil {
				t.Fatal(err)
			}
			if got := treeOf(t, filepath.Join(host, "dcopy")); !slices.Equal(got, []string{"a", "shadowlink->/etc/shadow", "sub/", "sub/b", "suid"}) {
				t.Fatalf("copied tree %q", got)
			}
			// A set-uid program of the container is not one on the host.
			if fi, err := os.Stat(filepath.Join(host, "dcopy", "suid")); err != nil || fi.Mode()&os.ModeSetuid != 0 || fi.Mode().Perm() != 0o755 {
				t.Fatalf("suid copied as %v %v", fi.Mode(), err)
			}
			// A trailing slash follows the link to the container's /etc.
			if err := c.CopyOut(ctx, "/evil/", filepath.Join(host, "etccopy")); err != nil {
				t.Fatal(err)
			}
			if got := readFile(t, filepath.Join(host, "etccopy", "passwd")); !strings.HasSuffix(got, "ctr-passwd\n") {
				t.Fatalf("evil/ gave passwd %q", got)
			}

			// Writes through the symlinks land in the container.
			src := filepath.Join(t.TempDir(), "hijack")
			if err := os.WriteFile(src, []byte("in\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			for _, dst := range []string{"/evil/hijack", "/d-up/hijack2", "/../../etc/hijack3"} {
				if err := c.CopyIn(ctx, src, dst); err != nil {
					t.Fatalf("copy in to %s: %v", dst, err)
				}
			}
			// Onto the symlink to /etc/passwd: the container's passwd.
			if err := c.CopyIn(ctx, src, "/pw"); err != nil {
				t.Fatal(err)
			}
			// A tar whose entries climb out or go through a symlink it made.
			var tb bytes.Buffer
			tw := tar.NewWriter(&tb)
			tw.WriteHeader(&tar.Header{Name: "root", Typeflag: tar.TypeSymlink, Linkname: "/"})
			tw.WriteHeader(&tar.Header{Name: "root/etc/hijack4", Typeflag: tar.TypeReg, Mode: 0o644, Size: 3})
			tw.Write([]byte("x4\n"))
			tw.Close()
			if err := c.CopyTo(ctx, "/tmp", &tb); err != nil {
				t.Fatal(err)
			}
			for _, bad := range []string{"../escape", "a/../../escape"} {
				var tb bytes.Buffer
				tw := tar.NewWriter(&tb)
				tw.WriteHeader(&tar.Header{Name: bad, Typeflag: tar.TypeReg, Mode: 0o644})
				tw.Close()
				if err := c.CopyTo(ctx, "/tmp", &tb); !errors.Is(err, berth.ErrInvalid) {
					t.Errorf("tar entry %q: %v, want ErrInvalid", bad, err)
				}
			}
			if got := hostEtc(t); got != etc {
				t.Fatal("the host's /etc changed")
			}
			if err := c.CopyOut(ctx, "/etc", filepath.Join(host, "etc2")); err != nil {
				t.Fatal(err)
			}
			for _, f := range []string{"hijack", "hijack2", "hijack3", "hijack4"} {
				if _, err := os.Stat(filepath.Join(host, "etc2", f)); err != nil {
					t.Errorf("container's /etc/%s: %v", f, err)
				}
			}
			if got := readFile(t, filepath.Join(host, "etc2", "passwd")); got != "in\n" {
				t.Errorf("container's passwd after copying onto /pw: %q", got)
			}
			// Nothing but the destinations appeared on the host.
			ents, _ := os.ReadDir(host)
			var top []string
			for _, e := range ents {
				top = append(top, e.Name())
			}
			if !slices.Equal(top, []string{"dcopy", "etc2", "etccopy", "pw", "pwL"}) {
				t.Errorf("host destination holds %q", top)
			}
		})
	}
	if got := hostEtc(t); got != etc {
		t.Fatal("the host's /etc changed")
	}
}

// TestCopyFilesAndDirs covers docker cp's rules for files, directories,
// "/." and missing destinations, both ways, running and stopped.
func TestCopyFilesAndDirs(t *testing.T) {
	testutil.RequiresRoot(t)
	rt := newRuntime(t)
	importBusybox(t, rt, "busybox")
	ctx := context.Background()
	hostSrc := t.TempDir()
	os.MkdirAll(filepath.Join(hostSrc, "dir", "sub"), 0o755)
	os.WriteFile(filepath.Join(hostSrc, "dir", "f"), []byte("f\n"), 0o640)
	os.WriteFile(filepath.Join(hostSrc, "dir", "sub", "g"), []byte("g\n"), 0o600)
	os.WriteFile(filepath.Join(hostSrc, "file"), []byte("file\n"), 0o644)
	if err := os.Chown(filepath.Join(hostSrc, "file"), 1234, 1234); err != nil {
		t.Fatal(err)
	}
	for _, running := range []bool{true, false} {
		name := map[bool]string{true: "running", false: "stopped"}[running]
		t.Run(name, func(t *testing.T) {
			var c *berth.Container
			if running {
				c = sleeper(t, rt, berth.Spec{})
			} else {
				var err error
				if c, err = rt.Create(ctx, berth.Spec{Image: "busybox", Network: "none", Cmd: []string{"true"}}); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { c.Remove(ctx, berth.RemoveForce()) })
			}
			in := func(src, dst string, opts ...berth.CopyOption) {
				t.Helper()
				if err := c.CopyIn(ctx, hostSrc+"/"+src, dst, opts...); err != nil {
					t.Fatalf("copy in %s %s: %v", src, dst, err)
				}
			}
			in("file", "/tmp")                            // into an existing directory
			in("file", "/tmp/renamed")                    // a new file
			in("file", "/tmp/renamed")                    // replacing a file
			in("dir", "/tmp")                             // a directory into a directory
			in("dir", "/tmp/newdir")                      // a new directory
			in("dir/.", "/tmp/contents")                  // the contents, new directory
			in("dir/.", "/tmp/dir")                       // the contents into an existing one
			in("file", "/tmp/owned", berth.CopyArchive()) // -a keeps the owner

			out := t.TempDir()
			if err := c.CopyOut(ctx, "/tmp", filepath.Join(out, "tmp"), berth.CopyArchive()); err != nil {
				t.Fatal(err)
			}
			want := []string{"contents/", "contents/f", "contents/sub/", "contents/sub/g", "dir/", "dir/f", "dir/sub/", "dir/sub/g",
				"file", "newdir/", "newdir/f", "newdir/sub/", "newdir/sub/g", "owned", "renamed"}
			if got := treeOf(t, filepath.Join(out, "tmp")); !slices.Equal(got, want) {
				t.Fatalf("container's /tmp: %q", got)
			}
			st := func(p string) *syscall.Stat_t {
				fi, err := os.Lstat(filepath.Join(out, "tmp", p))
				if err != nil {
					t.Fatal(err)
				}
				return fi.Sys().(*syscall.Stat_t)
			}
			if s := st("file"); s.Uid != 0 || s.Gid != 0 || s.Mode&0o777 != 0o644 {
				t.Errorf("file: uid %d gid %d mode %o", s.Uid, s.Gid, s.Mode&0o777)
			}
			if s := st("owned"); s.Uid != 1234 {
				t.Errorf("owned (-a): uid %d", s.Uid)
			}
			if s := st("dir/sub/g"); s.Mode&0o777 != 0o600 {
				t.Errorf("g: mode %o", s.Mode&0o777)
			}

			// Out: files and directories to new and existing places.
			dst := t.TempDir()
			copyOut := func(src, to string) error {
				return c.CopyOut(ctx, src, dst+"/"+to)
			}
			for _, ok := range [][2]string{{"/tmp/file", "f1"}, {"/tmp/file", "."}, {"/tmp/dir", "d1"}, {"/tmp/dir", "."}, {"/tmp/dir/.", "d2"}, {"/tmp/renamed", "f1"}} {
				if err := copyOut(ok[0], ok[1]); err != nil {
					t.Fatalf("copy out %s to %s: %v", ok[0], ok[1], err)
				}
			}
			want = []string{"d1/", "d1/f", "d1/sub/", "d1/sub/g", "d2/", "d2/f", "d2/sub/", "d2/sub/g", "dir/", "dir/f", "dir/sub/", "dir/sub/g", "f1", "file"}
			if got := treeOf(t, dst); !slices.Equal(got, want) {
				t.Fatalf("host: %q", got)
			}
			if fi, _ := os.Stat(filepath.Join(dst, "file")); fi.Sys().(*syscall.Stat_t).Uid != uint32(os.Getuid()) {
				t.Error("copied out without -a: not owned by the caller")
			}
			// Refused: a directory onto a file, a file into a missing
			// directory, a missing source, a missing parent.
			if err := copyOut("/tmp/dir", "f1"); !errors.Is(err, berth.ErrInvalid) {
				t.Errorf("dir onto file: %v", err)
			}
			if err := copyOut("/tmp/file", "missing/"); !errors.Is(err, berth.ErrNotFound) {
				t.Errorf("file to missing dir/: %v", err)
			}
			if err := copyOut("/nonexistent", "x"); !errors.Is(err, berth.ErrNotFound) {
				t.Errorf("missing source: %v", err)
			}
			if err := copyOut("/tmp/file", "no/such/parent"); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("missing parent: %v", err)
			}
			if err := c.CopyIn(ctx, filepath.Join(hostSrc, "file"), "/no/such/dir/x"); !errors.Is(err, berth.ErrNotFound) {
				t.Errorf("copy in to a missing parent: %v", err)
			}
			if err := c.CopyIn(ctx, filepath.Join(hostSrc, "dir"), "/tmp/file"); !errors.Is(err, berth.ErrInvalid) {
				t.Errorf("copy in a dir onto a file: %v", err)
			}
			if got := treeOf(t, dst); !slices.Equal(got, want) {
				t.Fatalf("a refused copy changed the host: %q", got)
			}
			// The stream form (cp CTR:path -, cp - CTR:dir).
			rc, ps, err := c.CopyFrom(ctx, "/tmp/file")
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(rc)
			rc.Close()
			if ps.Name != "file" || ps.Size != 5 || !bytes.Contains(b, []byte("file\n")) {
				t.Errorf("CopyFrom: %+v, %d bytes", ps, len(b))
			}
			if err := c.CopyTo(ctx, "/tmp/file", bytes.NewReader(b)); !errors.Is(err, berth.ErrInvalid) {
				t.Errorf("CopyTo a file: %v", err)
			}
			if _, err := c.StatPath(ctx, "/tmp/none"); !errors.Is(err, berth.ErrNotFound) {
				t.Errorf("StatPath of a missing file: %v", err)
			}
		})
	}
	// No mount is left behind by the stopped container's copies.
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mi), rt.Root()) {
		t.Errorf("mounts left below the store:\n%s", mi)
	}
}
