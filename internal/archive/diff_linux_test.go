package archive

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/berth-run/berth/internal/testutil"
)

// makeUpper builds by hand what overlayfs leaves in an upper dir.
func makeUpper(t *testing.T) string {
	t.Helper()
	u := t.TempDir()
	p := func(s string) string { return filepath.Join(u, s) }
	must := func(err error) { t.Helper(); require.NoError(t, err) }
	must(os.MkdirAll(p("etc/ssl"), 0o755))
	must(os.WriteFile(p("etc/hosts"), []byte("127.0.0.1 localhost\n"), 0o644))
	must(os.WriteFile(p("etc/ssl/cert"), []byte("cert"), 0o600))
	must(unix.Setxattr(p("etc/ssl/cert"), "user.origin", []byte("test"), 0))
	must(unix.Setxattr(p("etc/hosts"), "trusted.overlay.origin", []byte("xyz"), 0))
	must(unix.Setxattr(p("etc"), "trusted.overlay.impure", []byte("y"), 0))
	must(unix.Mknod(p("etc/motd"), unix.S_IFCHR, 0)) // whiteout
	must(os.MkdirAll(p("var/cache"), 0o755))
	must(os.WriteFile(p("var/cache/new"), []byte("fresh"), 0o644))
	must(unix.Setxattr(p("var/cache"), "trusted.overlay.opaque", []byte("y"), 0))
	must(os.MkdirAll(p("usr/bin"), 0o755))
	must(os.WriteFile(p("usr/bin/tool"), []byte("#!/bin/sh\n"), 0o4755))
	must(os.Link(p("usr/bin/tool"), p("usr/bin/tool2")))
	must(os.Symlink("tool", p("usr/bin/alias")))
	must(unix.Mkfifo(p("usr/fifo"), 0o600))
	must(unix.Mknod(p("usr/null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	must(os.Chown(p("usr/bin/tool"), 12, 34))
	must(os.Chmod(p("usr/bin/tool"), 0o4755|os.ModeSetuid))
	must(unix.Mknod(p("gone"), unix.S_IFCHR, 0))
	ts := time.Date(2023, 1, 2, 3, 4, 5, 600, time.UTC)
	filepath.Walk(u, func(path string, _ os.FileInfo, _ error) error {
		unix.UtimesNanoAt(unix.AT_FDCWD, path, []unix.Timespec{unix.NsecToTimespec(ts.UnixNano()), unix.NsecToTimespec(ts.UnixNano())}, unix.AT_SYMLINK_NOFOLLOW)
		return nil
	})
	return u
}

func diffBytes(t *testing.T, upper string) []byte {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, Diff(context.Background(), &buf, upper, DiffOptions{}))
	return buf.Bytes()
}

func TestDiff(t *testing.T) {
	testutil.RequiresRoot(t)
	upper := makeUpper(t)
	b := diffBytes(t, upper)
	assert.Equal(t, []string{
		"5 etc/",
		"0 etc/hosts",
		"0 etc/.wh.motd",
		"5 etc/ssl/",
		"0 etc/ssl/cert [user.origin=test]",
		"0 .wh.gone",
		"5 usr/",
		"5 usr/bin/",
		"2 usr/bin/alias -> tool",
		"0 usr/bin/tool",
		"1 usr/bin/tool2 -> usr/bin/tool",
		"6 usr/fifo",
		"3 usr/null",
		"5 var/",
		"5 var/cache/",
		"0 var/cache/.wh..wh..opq",
		"0 var/cache/new",
	}, tarList(t, b))

	// Same upper, same bytes.
	sameTar(t, b, diffBytes(t, upper))

	// Applying the diff gives the overlay form back, and diffing that
	// gives the same layer again.
	dir := t.TempDir()
	_, err := applyBytes(t, dir, b, ApplyOptions{})
	require.NoError(t, err)
	sameTar(t, b, diffBytes(t, dir))
	st := lstat(t, filepath.Join(dir, "usr/bin/tool"))
	assert.Equal(t, uint32(0o4755), st.Mode&0o7777)
	assert.Equal(t, uint32(12), st.Uid)
	assert.Equal(t, st.Ino, lstat(t, filepath.Join(dir, "usr/bin/tool2")).Ino)
	v, _ := getxattr(t, filepath.Join(dir, "var/cache"), "trusted.overlay.opaque")
	assert.Equal(t, "y", v)
	_, ok := getxattr(t, filepath.Join(dir, "etc/hosts"), "trusted.overlay.origin")
	assert.False(t, ok, "overlay xattrs must not leak into layers")
	assert.Equal(t, uint64(0), lstat(t, filepath.Join(dir, "gone")).Rdev)

	// Round trip of the whole tree, apart from the xattrs overlay owns.
	clean := func(lines []string) []string {
		var out []string
		for _, l := range lines {
			for _, x := range []string{"trusted.overlay.origin=78797a", "trusted.overlay.impure=79"} {
				l = string(bytes.ReplaceAll([]byte(l), []byte(x), nil))
			}
			out = append(out, l)
		}
		return out
	}
	// The root has no entry in a layer: leave it out.
	assert.Equal(t, clean(snapshot(t, upper))[1:], clean(snapshot(t, dir))[1:])
}

func TestDiffDeterministicAcrossCopies(t *testing.T) {
	testutil.RequiresRoot(t)
	// Two uppers with the same content created in a different order (so
	// different inode numbers and directory order on disk) give the same
	// bytes.
	a := makeUpper(t)
	b1 := diffBytes(t, a)
	c := t.TempDir()
	_, err := applyBytes(t, c, b1, ApplyOptions{})
	require.NoError(t, err)
	sameTar(t, b1, diffBytes(t, c))
}

// sameTar asserts that two tars are byte for byte the same, showing their
// entries if not.
func sameTar(t *testing.T, want, got []byte) {
	t.Helper()
	if !bytes.Equal(want, got) {
		assert.Equal(t, tarList(t, want), tarList(t, got))
		t.Fatalf("tars differ (%d and %d bytes)", len(want), len(got))
	}
}
