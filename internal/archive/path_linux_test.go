package archive

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/berth-run/berth/internal/testutil"
)

func TestOpenInRoot(t *testing.T) {
	testutil.RequiresRoot(t)
	r := makeRootfs(t)
	require.NoError(t, os.Symlink("loop2", filepath.Join(r, "loop1")))
	require.NoError(t, os.Symlink("loop1", filepath.Join(r, "loop2")))
	require.NoError(t, os.Symlink("etc/missing", filepath.Join(r, "dangling")))
	hosts := lstat(t, filepath.Join(r, "etc/hosts"))
	rootfd, err := unix.Open(r, unix.O_PATH|unix.O_DIRECTORY, 0)
	require.NoError(t, err)
	defer unix.Close(rootfd)

	tests := []struct {
		path  string
		flags int
		ino   uint64 // 0: expect errno
		errno unix.Errno
	}{
		{"etc/hosts", unix.O_RDONLY, hosts.Ino, 0},
		{"/etc/hosts", unix.O_RDONLY, hosts.Ino, 0},
		{"../../../etc/hosts", unix.O_RDONLY, hosts.Ino, 0},
		{"etclink/hosts", unix.O_RDONLY, hosts.Ino, 0},
		{"up/up/etclink/../etc/hosts", unix.O_RDONLY, hosts.Ino, 0},
		{"hl", unix.O_RDONLY, hosts.Ino, 0},
		{"hl", unix.O_PATH | unix.O_NOFOLLOW, lstat(t, filepath.Join(r, "hl")).Ino, 0},
		{"hl", unix.O_RDONLY | unix.O_NOFOLLOW, 0, unix.ELOOP},
		{"loop1", unix.O_RDONLY, 0, unix.ELOOP},
		{"dangling", unix.O_RDONLY, 0, unix.ENOENT},
		{"etc/nope", unix.O_RDONLY, 0, unix.ENOENT},
		{"etc/hosts/x", unix.O_RDONLY, 0, unix.ENOTDIR},
		{"", unix.O_RDONLY | unix.O_DIRECTORY, lstat(t, r).Ino, 0},
		{"up", unix.O_RDONLY | unix.O_DIRECTORY, lstat(t, r).Ino, 0},
	}
	for _, walk := range []bool{false, true} {
		for _, tc := range tests {
			fd, err := openInRootFd(rootfd, tc.path, tc.flags, 0, walk)
			if tc.ino == 0 {
				assert.ErrorIs(t, err, tc.errno, "%s walk=%v", tc.path, walk)
				if err == nil {
					unix.Close(fd)
				}
				continue
			}
			if !assert.NoError(t, err, "%s walk=%v", tc.path, walk) {
				continue
			}
			var st unix.Stat_t
			require.NoError(t, unix.Fstat(fd, &st))
			unix.Close(fd)
			assert.Equal(t, tc.ino, st.Ino, "%s walk=%v", tc.path, walk)
		}
	}

	// The exported form, creating a file through a symlinked parent.
	f, err := OpenInRoot(r, "/up/etclink/new", os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o600)
	require.NoError(t, err)
	f.Close()
	assert.Equal(t, uint32(unix.S_IFREG|0o600), lstat(t, filepath.Join(r, "etc/new")).Mode)
	_, err = os.Lstat("/etc/new")
	assert.True(t, os.IsNotExist(err))
}

func TestMkdirAllInRoot(t *testing.T) {
	testutil.RequiresRoot(t)
	outside := t.TempDir()
	for _, walk := range []bool{false, true} {
		r := t.TempDir()
		require.NoError(t, os.Mkdir(filepath.Join(r, "inner"), 0o755))
		require.NoError(t, os.Symlink("/inner", filepath.Join(r, "abs")))
		require.NoError(t, os.Symlink(outside, filepath.Join(r, "out")))
		require.NoError(t, os.Symlink("../../..", filepath.Join(r, "up")))
		rootfd, err := unix.Open(r, unix.O_PATH|unix.O_DIRECTORY, 0)
		require.NoError(t, err)
		for _, p := range []string{"abs/a/b", "up/c/d", "/e/../f/g", "plain/h"} {
			fd, err := mkdirAllInRootFd(rootfd, p, 0o755, walk)
			require.NoError(t, err, p)
			unix.Close(fd)
		}
		// A symlink to a host path dangles inside the root: no directory
		// is made through it, inside or out.
		_, err = mkdirAllInRootFd(rootfd, "out/x", 0o755, walk)
		assert.ErrorIs(t, err, unix.ENOENT)
		unix.Close(rootfd)
		for _, p := range []string{"inner/a/b", "c/d", "f/g", "plain/h"} {
			st := lstat(t, filepath.Join(r, p))
			assert.Equal(t, uint32(unix.S_IFDIR), st.Mode&unix.S_IFMT, p)
		}
		names, _ := os.ReadDir(outside)
		assert.Empty(t, names, "created outside the root")
	}
	r := t.TempDir()
	f, err := MkdirAllInRoot(r, "x/y", 0o700)
	require.NoError(t, err)
	f.Close()
	assert.Equal(t, uint32(unix.S_IFDIR|0o700), lstat(t, filepath.Join(r, "x/y")).Mode)
	require.NoError(t, os.WriteFile(filepath.Join(r, "file"), nil, 0o644))
	_, err = MkdirAllInRoot(r, "file/sub", 0o755)
	assert.Error(t, err)
}

func TestSyncFS(t *testing.T) {
	require.NoError(t, SyncFS(t.TempDir()))
	assert.Error(t, SyncFS(filepath.Join(t.TempDir(), "missing")))
}
