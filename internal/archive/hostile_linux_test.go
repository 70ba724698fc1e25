package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-run/berth/internal/errdefs"
	"github.com/berth-run/berth/internal/testutil"
)

// sandbox is a directory holding the apply target and a sentinel directory
// beside it that hostile layers aim at.
type sandbox struct {
	root     string // holds target/ and sentinel/
	target   string
	sentinel string
	before   []string
}

func newSandbox(t testing.TB) *sandbox {
	t.Helper()
	root := t.TempDir()
	s := &sandbox{root: root, target: filepath.Join(root, "target"), sentinel: filepath.Join(root, "sentinel")}
	require.NoError(t, os.Mkdir(s.target, 0o755))
	require.NoError(t, os.Mkdir(s.sentinel, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(s.sentinel, "file"), []byte("precious"), 0o644))
	require.NoError(t, os.Mkdir(filepath.Join(s.sentinel, "sub"), 0o755))
	s.before = snapshot(t, s.root+"/sentinel")
	return s
}

// check asserts that nothing outside the target changed.
func (s *sandbox) check(t testing.TB) {
	t.Helper()
	assert.Equal(t, s.before, snapshot(t, s.sentinel), "sentinel directory changed")
	names, err := os.ReadDir(s.root)
	require.NoError(t, err)
	var got []string
	for _, n := range names {
		got = append(got, n.Name())
	}
	assert.Equal(t, []string{"sentinel", "target"}, got, "something was created beside the target")
}

func TestApplyHostile(t *testing.T) {
	testutil.RequiresRoot(t)
	// Each case gets its own sandbox; sen is replaced by its sentinel path.
	const sen = "@SENTINEL@"
	huge := func() []byte {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "big", Size: 1 << 40, Mode: 0o644, Format: tar.FormatPAX})
		buf.Write(make([]byte, 4096))
		return buf.Bytes()
	}
	truncated := func() []byte {
		b := mkTar(t, regEnt("a", strings.Repeat("x", 5000)))
		return b[:2000]
	}
	paxBomb := func() []byte {
		// The reader gives up after 1 MiB of extended header, whatever
		// size is declared.
		return append(rawBlock("PaxHeaders/x", tar.TypeXHeader, 1<<30), bytes.Repeat([]byte("9"), 2<<20)...)
	}
	paxName := func(name string) []byte {
		rec := paxRecord("path", name)
		b := append(rawBlock("PaxHeaders/x", tar.TypeXHeader, int64(len(rec))), pad([]byte(rec))...)
		b = append(b, rawBlock("placeholder", tar.TypeReg, 0)...)
		return append(b, make([]byte, 1024)...)
	}
	gz := func(b []byte) []byte { return compress(t, b, Gzip) }
	zst := func(b []byte) []byte { return compress(t, b, Zstd) }
	corrupt := func(b []byte) []byte {
		b = bytes.Clone(b)
		for i := 20; i < len(b)-8; i += 7 {
			b[i] ^= 0x5a
		}
		return b
	}
	big := mkTar(t, regEnt("f", strings.Repeat("all work and no play ", 20000)))

	tests := []struct {
		name    string
		tar     func(sentinel string) []byte
		opts    ApplyOptions
		kind    error
		mention string // the error must contain this
	}{
		{name: "dotdot", tar: func(string) []byte { return mkTar(t, regEnt("../x", "x")) }, mention: `"../x"`},
		{name: "dotdot inside", tar: func(string) []byte { return mkTar(t, regEnt("a/../../x", "x")) }, mention: `"a/../../x"`},
		{name: "absolute dotdot", tar: func(s string) []byte {
			return mkTar(t, regEnt("/../../../../../../../.."+s+"/x", "x"))
		}, mention: "escapes"},
		{name: "dotdot directory", tar: func(string) []byte { return mkTar(t, dirEnt("../sentinel/sub/new")) }, mention: "escapes"},
		{name: "symlink parent absolute", tar: func(s string) []byte {
			return mkTar(t, symEnt("l", s), regEnt("l/x", "x"))
		}, mention: `"l/x"`},
		{name: "symlink parent relative", tar: func(string) []byte {
			return mkTar(t, symEnt("l", "../sentinel"), regEnt("l/x", "x"))
		}, mention: `"l/x"`},
		{name: "symlink chain", tar: func(string) []byte {
			return mkTar(t, symEnt("a", "b"), symEnt("b", "../sentinel"), regEnt("a/sub/x", "x"))
		}, mention: `"a/sub/x"`},
		{name: "symlink parent of a directory", tar: func(s string) []byte {
			return mkTar(t, symEnt("l", s), dirEnt("l/newdir"))
		}, mention: `"l/newdir"`},
		{name: "symlink parent of a symlink", tar: func(s string) []byte {
			return mkTar(t, symEnt("l", s), symEnt("l/evil", "/"))
		}, mention: `"l/evil"`},
		{name: "dir replaced by symlink then written through", tar: func(s string) []byte {
			return mkTar(t, dirEnt("d"), regEnt("d/ok", "1"), symEnt("d", s), regEnt("d/file", "pwned"))
		}, mention: `"d/file"`},
		{name: "hardlink to dotdot", tar: func(string) []byte {
			return mkTar(t, linkEnt("h", "../sentinel/file"))
		}, mention: `"h"`},
		{name: "hardlink to absolute host path", tar: func(s string) []byte {
			return mkTar(t, linkEnt("h", s+"/file"))
		}, mention: "not in the layer"},
		{name: "hardlink through symlink", tar: func(s string) []byte {
			return mkTar(t, symEnt("l", s), linkEnt("h", "l/file"))
		}, mention: `"h"`},
		{name: "hardlink to later entry", tar: func(string) []byte {
			return mkTar(t, linkEnt("h", "f"), regEnt("f", "x"))
		}, mention: "not in the layer"},
		{name: "whiteout dotdot", tar: func(string) []byte {
			return mkTar(t, regEnt("../.wh.sentinel", ""))
		}, mention: `"../.wh.sentinel"`},
		{name: "whiteout through symlink", tar: func(s string) []byte {
			return mkTar(t, symEnt("l", s), regEnt("l/.wh.file", ""))
		}, mention: `"l/.wh.file"`},
		{name: "opaque through symlink", tar: func(s string) []byte {
			return mkTar(t, symEnt("l", s), regEnt("l/.wh..wh..opq", ""))
		}, mention: `"l/.wh..wh..opq"`},
		{name: "whiteout of dotdot", tar: func(string) []byte {
			return mkTar(t, regEnt("a/.wh...", ""))
		}, mention: `"a/.wh..."`},
		{name: "device node disallowed", tar: func(string) []byte {
			return mkTar(t, devEnt("dev/sda", tar.TypeBlock, 8, 0))
		}, opts: ApplyOptions{Devices: DevicesReject}, mention: `"dev/sda"`},
		{name: "root replaced by symlink", tar: func(s string) []byte {
			return mkTar(t, symEnt("./", s), regEnt("x", ""))
		}, mention: "layer root"},
		{name: "truncated tar", tar: func(string) []byte { return truncated() }, mention: "truncated"},
		{name: "truncated gzip", tar: func(string) []byte { b := gz(big); return b[:len(b)/2] }, kind: errdefs.ErrCorrupt, mention: "gzip"},
		{name: "corrupt gzip", tar: func(string) []byte { return corrupt(gz(big)) }, kind: errdefs.ErrCorrupt, mention: "gzip"},
		{name: "corrupt zstd", tar: func(string) []byte { return corrupt(zst(big)) }, kind: errdefs.ErrCorrupt, mention: "zstd"},
		{name: "huge declared size", tar: func(string) []byte { return huge() }, opts: ApplyOptions{MaxSize: 1 << 20}, mention: `"big"`},
		{name: "stream over max size", tar: func(string) []byte { return gz(big) }, opts: ApplyOptions{MaxSize: 100 << 10}, mention: "limit"},
		{name: "name with NUL", tar: func(string) []byte { return paxName("a\x00b") }, mention: "malformed"},
		{name: "overlong name", tar: func(string) []byte { return paxName(strings.Repeat("n/", 3000)) }, mention: "longer than"},
		{name: "overlong component", tar: func(string) []byte { return mkTar(t, regEnt(strings.Repeat("c", 300), "")) }, mention: "longer than"},
		{name: "pax header bomb", tar: func(string) []byte { return paxBomb() }, mention: "malformed"},
		{name: "unknown entry type", tar: func(string) []byte {
			return append(rawBlock("weird", 'Z', 0), make([]byte, 1024)...)
		}, mention: `"weird"`},
	}
	require.GreaterOrEqual(t, len(tests), 15)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newSandbox(t)
			b := tc.tar(s.sentinel)
			_, err := Apply(context.Background(), s.target, bytes.NewReader(b), tc.opts)
			require.Error(t, err)
			kind := tc.kind
			if kind == nil {
				kind = errdefs.ErrInvalid
			}
			assert.ErrorIs(t, err, kind, "error: %v", err)
			assert.Contains(t, err.Error(), tc.mention)
			t.Logf("%v", err)
			s.check(t)
		})
	}
}

// TestApplyEscapeTargetsUntouched applies layers that would write through
// a symlink to an absolute path if parents were followed, and checks that
// the files they aim at do not exist afterwards.
func TestApplyEscapeTargetsUntouched(t *testing.T) {
	testutil.RequiresRoot(t)
	s := newSandbox(t)
	outside := filepath.Join(s.root, "outside")
	_, err := applyBytes(t, s.target, mkTar(t, symEnt("l", outside), dirEnt("l"), regEnt("l/x", "x")), ApplyOptions{})
	// "l" as a directory replaces the symlink: the layer is fine and x
	// lands inside.
	require.NoError(t, err)
	_, err = os.Lstat(filepath.Join(s.target, "l/x"))
	require.NoError(t, err)
	_, err = os.Lstat(outside)
	assert.True(t, os.IsNotExist(err))
	s.check(t)
}
