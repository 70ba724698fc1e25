package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/berth-run/berth/internal/errdefs"
	"github.com/berth-run/berth/internal/testutil"
)

func applyBytes(t testing.TB, dir string, b []byte, opts ApplyOptions) (Result, error) {
	t.Helper()
	return Apply(context.Background(), dir, bytes.NewReader(b), opts)
}

// capability returns a security.capability value (VFS_CAP_REVISION_2)
// granting cap in the permitted set.
func capability(cap uint) string {
	b := make([]byte, 20)
	binary.LittleEndian.PutUint32(b[0:], 0x02000000)
	binary.LittleEndian.PutUint32(b[4:], 1<<cap)
	return string(b)
}

func TestApplyEntries(t *testing.T) {
	testutil.RequiresRoot(t)
	later := testTime.Add(time.Hour)
	tests := []struct {
		name    string
		entries []ent
		opts    ApplyOptions
		check   func(t *testing.T, dir string)
	}{{
		name: "regular file",
		entries: []ent{regEnt("f", "hello").with(func(h *tar.Header) {
			h.Mode, h.Uid, h.Gid = 0o640, 1000, 1001
			h.AccessTime = later
		})},
		check: func(t *testing.T, dir string) {
			st := lstat(t, filepath.Join(dir, "f"))
			assert.Equal(t, uint32(unix.S_IFREG|0o640), st.Mode)
			assert.Equal(t, uint32(1000), st.Uid)
			assert.Equal(t, uint32(1001), st.Gid)
			assert.Equal(t, testTime.Unix(), st.Mtim.Sec)
			assert.Equal(t, later.Unix(), st.Atim.Sec)
			b, _ := os.ReadFile(filepath.Join(dir, "f"))
			assert.Equal(t, "hello", string(b))
		},
	}, {
		name: "special mode bits survive chown",
		entries: []ent{
			regEnt("suid", "x").with(func(h *tar.Header) { h.Mode, h.Uid, h.Gid = 0o4755, 5, 6 }),
			regEnt("sgid", "x").with(func(h *tar.Header) { h.Mode, h.Uid, h.Gid = 0o2711, 5, 6 }),
			dirEnt("tmp").with(func(h *tar.Header) { h.Mode = 0o1777 }),
			dirEnt("shared").with(func(h *tar.Header) { h.Mode, h.Gid = 0o2775, 50 }),
		},
		check: func(t *testing.T, dir string) {
			assert.Equal(t, uint32(0o4755), lstat(t, filepath.Join(dir, "suid")).Mode&0o7777)
			assert.Equal(t, uint32(0o2711), lstat(t, filepath.Join(dir, "sgid")).Mode&0o7777)
			assert.Equal(t, uint32(unix.S_IFDIR|0o1777), lstat(t, filepath.Join(dir, "tmp")).Mode)
			assert.Equal(t, uint32(0o2775), lstat(t, filepath.Join(dir, "shared")).Mode&0o7777)
		},
	}, {
		name: "directory times set after contents",
		entries: []ent{
			dirEnt("d").with(func(h *tar.Header) { h.Mode = 0o555 }),
			regEnt("d/f", "1"),
			dirEnt("d/sub"),
			regEnt("d/sub/g", "2"),
		},
		check: func(t *testing.T, dir string) {
			st := lstat(t, filepath.Join(dir, "d"))
			assert.Equal(t, uint32(unix.S_IFDIR|0o555), st.Mode)
			assert.Equal(t, testTime.Unix(), st.Mtim.Sec)
			assert.Equal(t, testTime.Unix(), lstat(t, filepath.Join(dir, "d/sub")).Mtim.Sec)
		},
	}, {
		name: "directory entry after its contents updates it",
		entries: []ent{
			regEnt("x/f", "1"),
			dirEnt("x").with(func(h *tar.Header) { h.Mode, h.Uid, h.ModTime = 0o700, 7, later }),
		},
		check: func(t *testing.T, dir string) {
			st := lstat(t, filepath.Join(dir, "x"))
			assert.Equal(t, uint32(unix.S_IFDIR|0o700), st.Mode)
			assert.Equal(t, uint32(7), st.Uid)
			assert.Equal(t, later.Unix(), st.Mtim.Sec)
			lstat(t, filepath.Join(dir, "x/f"))
		},
	}, {
		name:    "missing parents are created 0755 root",
		entries: []ent{regEnt("a/b/c", "deep")},
		check: func(t *testing.T, dir string) {
			for _, p := range []string{"a", "a/b"} {
				st := lstat(t, filepath.Join(dir, p))
				assert.Equal(t, uint32(unix.S_IFDIR|0o755), st.Mode, p)
				assert.Equal(t, uint32(0), st.Uid, p)
			}
		},
	}, {
		name: "symlink",
		entries: []ent{symEnt("etc/l", "/etc/passwd").with(func(h *tar.Header) {
			h.Uid, h.Gid = 3, 4
		})},
		check: func(t *testing.T, dir string) {
			st := lstat(t, filepath.Join(dir, "etc/l"))
			assert.Equal(t, uint32(unix.S_IFLNK), st.Mode&unix.S_IFMT)
			assert.Equal(t, uint32(3), st.Uid)
			assert.Equal(t, testTime.Unix(), st.Mtim.Sec)
			target, _ := os.Readlink(filepath.Join(dir, "etc/l"))
			assert.Equal(t, "/etc/passwd", target)
		},
	}, {
		name:    "hardlink",
		entries: []ent{regEnt("bin/a", "binary"), linkEnt("bin/b", "bin/a"), linkEnt("c", "/bin/a")},
		check: func(t *testing.T, dir string) {
			a, b, c := lstat(t, filepath.Join(dir, "bin/a")), lstat(t, filepath.Join(dir, "bin/b")), lstat(t, filepath.Join(dir, "c"))
			assert.Equal(t, a.Ino, b.Ino)
			assert.Equal(t, a.Ino, c.Ino)
			assert.Equal(t, uint64(3), a.Nlink)
		},
	}, {
		name:    "hardlink to a symlink links the symlink",
		entries: []ent{symEnt("l", "/etc/shadow"), linkEnt("l2", "l")},
		check: func(t *testing.T, dir string) {
			assert.Equal(t, uint32(unix.S_IFLNK), lstat(t, filepath.Join(dir, "l2")).Mode&unix.S_IFMT)
		},
	}, {
		name: "devices and fifo",
		entries: []ent{
			devEnt("dev/null", tar.TypeChar, 1, 3),
			devEnt("dev/loop0", tar.TypeBlock, 7, 0).with(func(h *tar.Header) { h.Mode = 0o660; h.Gid = 6 }),
			devEnt("run/fifo", tar.TypeFifo, 0, 0).with(func(h *tar.Header) { h.Mode = 0o600 }),
		},
		check: func(t *testing.T, dir string) {
			st := lstat(t, filepath.Join(dir, "dev/null"))
			assert.Equal(t, uint32(unix.S_IFCHR|0o666), st.Mode)
			assert.Equal(t, uint32(1), unix.Major(st.Rdev))
			assert.Equal(t, uint32(3), unix.Minor(st.Rdev))
			st = lstat(t, filepath.Join(dir, "dev/loop0"))
			assert.Equal(t, uint32(unix.S_IFBLK|0o660), st.Mode)
			assert.Equal(t, uint32(7), unix.Major(st.Rdev))
			assert.Equal(t, uint32(6), st.Gid)
			assert.Equal(t, uint32(unix.S_IFIFO|0o600), lstat(t, filepath.Join(dir, "run/fifo")).Mode)
		},
	}, {
		name:    "devices skipped",
		entries: []ent{devEnt("dev/null", tar.TypeChar, 1, 3), regEnt("f", "")},
		opts:    ApplyOptions{Devices: DevicesSkip},
		check: func(t *testing.T, dir string) {
			_, err := os.Lstat(filepath.Join(dir, "dev/null"))
			assert.True(t, os.IsNotExist(err))
		},
	}, {
		name: "xattrs including security.capability",
		entries: []ent{
			regEnt("ping", "elf").with(func(h *tar.Header) {
				h.Mode, h.Uid = 0o755, 10
				h.PAXRecords = map[string]string{
					"SCHILY.xattr.security.capability": capability(13),
					"SCHILY.xattr.user.comment":        "hi",
					"SCHILY.xattr.trusted.overlay.foo": "dropped",
				}
			}),
			dirEnt("d").with(func(h *tar.Header) {
				h.PAXRecords = map[string]string{"SCHILY.xattr.user.d": "dir"}
			}),
			symEnt("l", "ping").with(func(h *tar.Header) {
				h.PAXRecords = map[string]string{"SCHILY.xattr.trusted.sym": "link"}
			}),
		},
		check: func(t *testing.T, dir string) {
			v, ok := getxattr(t, filepath.Join(dir, "ping"), "security.capability")
			assert.True(t, ok)
			assert.Equal(t, capability(13), v)
			v, _ = getxattr(t, filepath.Join(dir, "ping"), "user.comment")
			assert.Equal(t, "hi", v)
			_, ok = getxattr(t, filepath.Join(dir, "ping"), "trusted.overlay.foo")
			assert.False(t, ok)
			v, _ = getxattr(t, filepath.Join(dir, "d"), "user.d")
			assert.Equal(t, "dir", v)
			v, _ = getxattr(t, filepath.Join(dir, "l"), "trusted.sym")
			assert.Equal(t, "link", v)
		},
	}, {
		name:    "whiteout becomes a 0/0 character device",
		entries: []ent{dirEnt("etc"), regEnt("etc/.wh.motd", ""), regEnt(".wh.gone", "")},
		check: func(t *testing.T, dir string) {
			for _, p := range []string{"etc/motd", "gone"} {
				st := lstat(t, filepath.Join(dir, p))
				assert.Equal(t, uint32(unix.S_IFCHR), st.Mode&unix.S_IFMT, p)
				assert.Equal(t, uint64(0), st.Rdev, p)
			}
			_, err := os.Lstat(filepath.Join(dir, "etc/.wh.motd"))
			assert.True(t, os.IsNotExist(err))
		},
	}, {
		name:    "opaque directory",
		entries: []ent{dirEnt("var"), regEnt("var/.wh..wh..opq", ""), regEnt("var/x", "1"), regEnt("new/.wh..wh..opq", "")},
		check: func(t *testing.T, dir string) {
			for _, p := range []string{"var", "new"} {
				v, ok := getxattr(t, filepath.Join(dir, p), "trusted.overlay.opaque")
				assert.True(t, ok, p)
				assert.Equal(t, "y", v, p)
			}
			_, err := os.Lstat(filepath.Join(dir, "var/.wh..wh..opq"))
			assert.True(t, os.IsNotExist(err))
		},
	}, {
		name:    "aufs metadata is ignored",
		entries: []ent{dirEnt(".wh..wh.plnk"), regEnt(".wh..wh.plnk/123.456", "x"), regEnt("ok", "")},
		check: func(t *testing.T, dir string) {
			names, _ := os.ReadDir(dir)
			require.Len(t, names, 1)
			assert.Equal(t, "ok", names[0].Name())
		},
	}, {
		name:    "later entries replace earlier ones",
		entries: []ent{regEnt("f", "old"), regEnt("f", "new"), regEnt("d/x", "1"), regEnt("d", "now a file"), dirEnt("g"), regEnt("h", "file"), dirEnt("h"), regEnt("h/in", "1"), symEnt("s", "a"), regEnt("s", "not a link"), regEnt("w", "w"), regEnt(".wh.w", "")},
		check: func(t *testing.T, dir string) {
			b, _ := os.ReadFile(filepath.Join(dir, "f"))
			assert.Equal(t, "new", string(b))
			b, _ = os.ReadFile(filepath.Join(dir, "d"))
			assert.Equal(t, "now a file", string(b))
			lstat(t, filepath.Join(dir, "h/in"))
			assert.Equal(t, uint32(unix.S_IFREG), lstat(t, filepath.Join(dir, "s")).Mode&unix.S_IFMT)
			assert.Equal(t, uint32(unix.S_IFCHR), lstat(t, filepath.Join(dir, "w")).Mode&unix.S_IFMT)
		},
	}, {
		name: "a directory replaced by a file keeps no deferred metadata",
		entries: []ent{
			dirEnt("d").with(func(h *tar.Header) { h.Mode = 0o500 }),
			regEnt("d", "file").with(func(h *tar.Header) { h.Mode = 0o644 }),
		},
		check: func(t *testing.T, dir string) {
			assert.Equal(t, uint32(unix.S_IFREG|0o644), lstat(t, filepath.Join(dir, "d")).Mode)
		},
	}, {
		name: "root entry and odd names",
		entries: []ent{
			dirEnt("./").with(func(h *tar.Header) { h.Mode = 0o750 }),
			regEnt("./a//b/./c", "x"),
			regEnt("/abs/file", "y"),
			regEnt("x/../y", "z"),
			regEnt(string(bytes.Repeat([]byte("n"), 200))+"/"+string(bytes.Repeat([]byte("m"), 200)), "long"),
		},
		check: func(t *testing.T, dir string) {
			assert.Equal(t, uint32(unix.S_IFDIR|0o750), lstat(t, dir).Mode)
			lstat(t, filepath.Join(dir, "a/b/c"))
			lstat(t, filepath.Join(dir, "abs/file"))
			lstat(t, filepath.Join(dir, "y"))
			lstat(t, filepath.Join(dir, string(bytes.Repeat([]byte("n"), 200)), string(bytes.Repeat([]byte("m"), 200))))
		},
	}, {
		name:    "no chown",
		entries: []ent{regEnt("f", "x").with(func(h *tar.Header) { h.Uid, h.Gid = 1000, 1000 })},
		opts:    ApplyOptions{NoChown: true},
		check: func(t *testing.T, dir string) {
			assert.Equal(t, uint32(os.Geteuid()), lstat(t, filepath.Join(dir, "f")).Uid)
		},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			b := mkTar(t, tc.entries...)
			res, err := applyBytes(t, dir, b, tc.opts)
			require.NoError(t, err)
			assert.Equal(t, digest.FromBytes(b), res.DiffID)
			assert.Equal(t, int64(len(b)), res.Size)
			tc.check(t, dir)
		})
	}
}

func TestApplyGlobalHeader(t *testing.T) {
	testutil.RequiresRoot(t)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	require.NoError(t, tw.WriteHeader(&tar.Header{Typeflag: tar.TypeXGlobalHeader, Name: "pax_global_header",
		PAXRecords: map[string]string{"comment": "git archive"}}))
	require.NoError(t, tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "f", Size: 1, Mode: 0o644}))
	tw.Write([]byte("x"))
	require.NoError(t, tw.Close())
	dir := t.TempDir()
	res, err := applyBytes(t, dir, buf.Bytes(), ApplyOptions{})
	require.NoError(t, err)
	assert.Equal(t, 1, res.Files)
	names, _ := os.ReadDir(dir)
	require.Len(t, names, 1)
	assert.Equal(t, "f", names[0].Name())
}

// TestApplyDigest checks that the diffID covers the whole stream, the
// padding after the end-of-archive blocks included, for every compression.
func TestApplyDigest(t *testing.T) {
	testutil.RequiresRoot(t)
	b := mkTar(t, dirEnt("d"), regEnt("d/f", "content"))
	b = append(b, make([]byte, 10240-len(b)%10240)...) // record padding, as GNU tar writes
	want := digest.FromBytes(b)
	for _, c := range []Compression{Uncompressed, Gzip, Zstd} {
		t.Run(c.String(), func(t *testing.T) {
			blob := compress(t, b, c)
			var progress int64
			res, err := Apply(context.Background(), t.TempDir(), bytes.NewReader(blob), ApplyOptions{
				Progress: func(n int64) { progress = n },
			})
			require.NoError(t, err)
			assert.Equal(t, want, res.DiffID)
			assert.Equal(t, int64(len(b)), res.Size)
			assert.Equal(t, int64(len(blob)), res.Compressed)
			assert.Equal(t, int64(len(blob)), progress)
			assert.Equal(t, c, res.Compression)
			assert.Equal(t, 2, res.Files)
		})
	}
}

func TestApplyEmptyStream(t *testing.T) {
	testutil.RequiresRoot(t)
	res, err := applyBytes(t, t.TempDir(), nil, ApplyOptions{})
	require.NoError(t, err)
	assert.Equal(t, digest.Digest("sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"), res.DiffID)
}

func TestApplyReaderError(t *testing.T) {
	testutil.RequiresRoot(t)
	boom := errorsNew("network down")
	b := compress(t, mkTar(t, regEnt("f", string(bytes.Repeat([]byte("x"), 1<<20)))), Gzip)
	r := ioMultiReader(bytes.NewReader(b[:len(b)/2]), errReader{boom})
	_, err := Apply(context.Background(), t.TempDir(), r, ApplyOptions{})
	require.Error(t, err)
	assert.ErrorIs(t, err, boom)
	assert.NotErrorIs(t, err, errdefs.ErrCorrupt)
}

func TestApplyCancel(t *testing.T) {
	testutil.RequiresRoot(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Apply(ctx, t.TempDir(), bytes.NewReader(mkTar(t, regEnt("f", "x"))), ApplyOptions{})
	assert.ErrorIs(t, err, context.Canceled)
}

func TestApplyWalkFallback(t *testing.T) {
	testutil.RequiresRoot(t)
	// Without openat2 the applier walks parents with O_NOFOLLOW; it must
	// give the same tree and refuse the same symlink parents.
	dir := t.TempDir()
	a, err := newApplier(dir, ApplyOptions{MaxSize: DefaultMaxSize})
	require.NoError(t, err)
	defer a.close()
	a.walk = true
	tr := tar.NewReader(bytes.NewReader(mkTar(t, regEnt("a/b/c", "x"), symEnt("l", "/"), regEnt("l/x", ""))))
	for i := 0; ; i++ {
		h, err := tr.Next()
		require.NoError(t, err)
		name, err := cleanName(h.Name)
		require.NoError(t, err)
		_, err = a.entry(context.Background(), h, name, tr)
		if i < 2 {
			require.NoError(t, err)
			continue
		}
		require.ErrorIs(t, err, errdefs.ErrInvalid)
		break
	}
	lstat(t, filepath.Join(dir, "a/b/c"))
}

// blockingReader gives some bytes and then blocks until ctx is done, like
// a stalled download whose request shares ctx.
type blockingReader struct {
	ctx  context.Context
	data []byte
}

func (b *blockingReader) Read(p []byte) (int, error) {
	if len(b.data) > 0 {
		n := copy(p, b.data)
		b.data = b.data[n:]
		return n, nil
	}
	<-b.ctx.Done()
	return 0, b.ctx.Err()
}

func TestApplyCancelWhileWaiting(t *testing.T) {
	testutil.RequiresRoot(t)
	ctx, cancel := context.WithCancel(context.Background())
	b := mkTar(t, regEnt("f", "x"), regEnt("g", string(bytes.Repeat([]byte("y"), 1<<20))))
	done := make(chan error)
	go func() {
		_, err := Apply(ctx, t.TempDir(), &blockingReader{ctx: ctx, data: b[:4096]}, ApplyOptions{})
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	cancel()
	assert.ErrorIs(t, <-done, context.Canceled)
}
