package archive

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// lstat returns the stat of p, failing the test if it is missing.
func lstat(t testing.TB, p string) unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	require.NoError(t, unix.Lstat(p, &st), "lstat %s", p)
	return st
}

func getxattr(t testing.TB, p, name string) (string, bool) {
	t.Helper()
	buf := make([]byte, 4096)
	n, err := unix.Lgetxattr(p, name, buf)
	if err == unix.ENODATA {
		return "", false
	}
	require.NoError(t, err, "getxattr %s %s", p, name)
	return string(buf[:n]), true
}

// snapshot describes every entry below root, one line each, for comparing
// trees: type, mode, owner, size, mtime (seconds), content digest or link
// target, device number, xattrs.
func snapshot(t testing.TB, root string) []string {
	t.Helper()
	var out []string
	err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		line := fmt.Sprintf("%s type=%o mode=%o uid=%d gid=%d mtime=%d", rel, st.Mode&unix.S_IFMT, st.Mode&0o7777, st.Uid, st.Gid, st.Mtim.Sec)
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(b)
			line += fmt.Sprintf(" size=%d sha=%s nlink=%d", st.Size, hex.EncodeToString(sum[:8]), st.Nlink)
		case unix.S_IFLNK:
			target, _ := os.Readlink(p)
			line += " -> " + target
		case unix.S_IFCHR, unix.S_IFBLK:
			line += fmt.Sprintf(" rdev=%d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
		}
		line += " xattrs=" + strings.Join(listXattrs(t, p), ",")
		out = append(out, line)
		return nil
	})
	require.NoError(t, err)
	return out
}

func listXattrs(t testing.TB, p string) []string {
	buf := make([]byte, 64<<10)
	n, err := unix.Llistxattr(p, buf)
	if err != nil || n == 0 {
		return nil
	}
	var out []string
	for _, k := range strings.Split(strings.TrimRight(string(buf[:n]), "\x00"), "\x00") {
		v, _ := getxattr(t, p, k)
		out = append(out, k+"="+hex.EncodeToString([]byte(v)))
	}
	slices.Sort(out)
	return out
}
