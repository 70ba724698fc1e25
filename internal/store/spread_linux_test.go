package store

import (
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// dirFlags reads a directory's inode flags (FS_IOC_GETFLAGS).
func dirFlags(t *testing.T, dir string) (uint32, error) {
	t.Helper()
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	return unix.IoctlGetUint32(fd, unix.FS_IOC_GETFLAGS)
}

func TestOpenSpreadsSubdirs(t *testing.T) {
	base := t.TempDir()
	// ext2/3/4 keep the flag; elsewhere (tmpfs, xfs) Open must work
	// without it.
	var fs unix.Statfs_t
	if err := unix.Statfs(base, &fs); err != nil {
		t.Fatal(err)
	}
	ext4 := fs.Type == unix.EXT4_SUPER_MAGIC

	s, err := Open(filepath.Join(base, "root"), filepath.Join(base, "run"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, d := range []string{"tmp", "containers", "volumes"} {
		flags, err := dirFlags(t, s.Path(d))
		if set := err == nil && flags&fsTopdirFL != 0; set != ext4 {
			t.Errorf("%s: top-directory flag %v on a file system of type %#x (flags %#x, %v)", d, set, fs.Type, flags, err)
		}
	}
	// Only those: other directories keep their flags.
	if flags, err := dirFlags(t, s.Path("layers")); err == nil && flags&fsTopdirFL != 0 {
		t.Errorf("layers has the top-directory flag: %#x", flags)
	}
	// A second Open leaves the flags as they are.
	s2, err := Open(filepath.Join(base, "root"), filepath.Join(base, "run"))
	if err != nil {
		t.Fatal(err)
	}
	s2.Close()
	if flags, _ := dirFlags(t, s.Path("tmp")); ext4 && flags&fsTopdirFL == 0 {
		t.Errorf("tmp lost the top-directory flag: %#x", flags)
	}
}
