package archive

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/berth-run/berth/internal/testutil"
)

// mountOverlay mounts an overlay of lowers (topmost first) with upper and
// work (both "" for a read-only mount) and unmounts it in cleanup.
func mountOverlay(t *testing.T, lowers []string, upper, work string) string {
	t.Helper()
	merged := t.TempDir()
	opts := "lowerdir=" + strings.Join(lowers, ":")
	if upper != "" {
		opts += ",upperdir=" + upper + ",workdir=" + work
	}
	if err := unix.Mount("overlay", merged, "overlay", 0, opts); err != nil {
		testutil.Unavailable(t, "overlay mount: "+err.Error())
	}
	t.Cleanup(func() { unix.Unmount(merged, unix.MNT_DETACH) })
	return merged
}

// copyTree copies a tree the way mv does across devices (files, dirs and
// symlinks are enough here).
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	require.NoError(t, filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		require.NoError(t, err)
		rel, _ := filepath.Rel(src, p)
		to := filepath.Join(dst, rel)
		switch {
		case fi.IsDir():
			return os.Mkdir(to, fi.Mode().Perm())
		case fi.Mode()&os.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			return os.Symlink(target, to)
		default:
			b, err := os.ReadFile(p)
			require.NoError(t, err)
			return os.WriteFile(to, b, fi.Mode().Perm())
		}
	}))
}

func TestChangesOverlay(t *testing.T) {
	testutil.RequiresRoot(t)
	lower := t.TempDir()
	_, err := applyBytes(t, lower, mkTar(t,
		dirEnt("a"), regEnt("a/f1", "one"), regEnt("a/f2", "two"),
		dirEnt("b"), regEnt("b/g", "g"),
		dirEnt("c"), regEnt("c/h", "h"), dirEnt("c/deep"), regEnt("c/deep/i", "i"),
		dirEnt("d"), dirEnt("d/sub"), regEnt("d/sub/x", "x"), regEnt("d/y", "old y"),
		regEnt("keep", "k"),
	), ApplyOptions{})
	require.NoError(t, err)
	upper, work := t.TempDir(), t.TempDir()
	merged := mountOverlay(t, []string{lower}, upper, work)
	m := func(p string) string { return filepath.Join(merged, p) }

	require.NoError(t, os.WriteFile(m("new"), []byte("added"), 0o644))
	require.NoError(t, os.WriteFile(m("a/f1"), []byte("changed"), 0o644))
	require.NoError(t, os.Remove(m("b/g")))
	// Renaming a lower directory: without redirect_dir the kernel refuses
	// and mv falls back to copy and remove.
	err = unix.Rename(m("c"), m("c2"))
	if errors.Is(err, unix.EXDEV) {
		copyTree(t, m("c"), m("c2"))
		require.NoError(t, os.RemoveAll(m("c")))
	} else {
		require.NoError(t, err, "rename")
	}
	// rm -r and mkdir again: an opaque directory.
	require.NoError(t, os.RemoveAll(m("d")))
	require.NoError(t, os.Mkdir(m("d"), 0o755))
	require.NoError(t, os.WriteFile(m("d/y"), []byte("new y"), 0o644))
	before := snapshot(t, merged)

	changes, err := Changes(upper, []string{lower})
	require.NoError(t, err)
	var got []string
	for _, c := range changes {
		got = append(got, c.String())
	}
	assert.Equal(t, []string{
		"C /a",
		"C /a/f1",
		"C /b",
		"D /b/g",
		"D /c",
		"A /c2",
		"A /c2/deep",
		"A /c2/deep/i",
		"A /c2/h",
		"C /d",
		"A /d/y",
		"A /new",
	}, got)

	// The upper dir as a layer: whiteouts and the opaque marker, no
	// overlay xattrs.
	var buf bytes.Buffer
	require.NoError(t, Diff(context.Background(), &buf, upper, DiffOptions{}))
	list := tarList(t, buf.Bytes())
	assert.Contains(t, list, "0 .wh.c")
	assert.Contains(t, list, "0 b/.wh.g")
	assert.Contains(t, list, "0 d/.wh..wh..opq")
	for _, l := range list {
		assert.NotContains(t, l, "trusted.overlay", l)
	}

	// Applied as a second layer, it gives back the container's view.
	layer := t.TempDir()
	_, err = applyBytes(t, layer, buf.Bytes(), ApplyOptions{})
	require.NoError(t, err)
	again := mountOverlay(t, []string{layer, lower}, "", "")
	after := snapshot(t, again)
	// The root directory's times differ (a layer has no root entry).
	assert.Equal(t, before[1:], after[1:])
	if t.Failed() {
		out, _ := exec.Command("find", upper, "-ls").CombinedOutput()
		t.Logf("upper:\n%s", out)
	}
}

func TestChangesLowerWhiteouts(t *testing.T) {
	testutil.RequiresRoot(t)
	// Two lowers: the top one deletes x and makes dir o opaque. A file
	// recreated at x, or inside o with a name only the bottom layer had,
	// is added, not changed.
	bottom, top, upper := t.TempDir(), t.TempDir(), t.TempDir()
	_, err := applyBytes(t, bottom, mkTar(t, regEnt("x", "1"), dirEnt("o"), regEnt("o/old", "1"), regEnt("kept", "")), ApplyOptions{})
	require.NoError(t, err)
	_, err = applyBytes(t, top, mkTar(t, regEnt(".wh.x", ""), dirEnt("o"), regEnt("o/.wh..wh..opq", ""), regEnt("o/new", "")), ApplyOptions{})
	require.NoError(t, err)
	_, err = applyBytes(t, upper, mkTar(t, regEnt("x", "2"), dirEnt("o"), regEnt("o/old", "2"), regEnt("o/new", "3"), regEnt("kept", "4")), ApplyOptions{})
	require.NoError(t, err)
	changes, err := Changes(upper, []string{top, bottom})
	require.NoError(t, err)
	var got []string
	for _, c := range changes {
		got = append(got, c.String())
	}
	assert.Equal(t, []string{"C /kept", "C /o", "C /o/new", "A /o/old", "A /x"}, got)
}
