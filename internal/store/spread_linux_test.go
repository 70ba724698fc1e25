package store

import (
	"os"
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
	// Whether this file system keeps the flag at all (ext4 does, tmpfs
	// does not): Open must work either way, and set it where it can.
	probe := filepath.Join(base, "probe")
	if err := os.Mkdir(probe, 0o700); err != nil {
		t.Fatal(err)
	}
	spreadSubdirs(probe)
	flags, err := dirFlags(t, probe)
	supported := err == nil && flags&fsTopdirFL != 0

	s, err := Open(filepath.Join(base, "root"), filepath.Join(base, "run"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, d := range []string{"tmp", "containers", "volumes"} {
		flags, err := dirFlags(t, s.Path(d))
		if set := err == nil && flags&fsTopdirFL != 0; set != supported {
			t.Errorf("%s: top-directory flag %v, want %v (flags %#x, %v)", d, set, supported, flags, err)
		}
	}
	// A second Open leaves the flags as they are.
	s2, err := Open(filepath.Join(base, "root"), filepath.Join(base, "run"))
	if err != nil {
		t.Fatal(err)
	}
	s2.Close()
	if flags, _ := dirFlags(t, s.Path("tmp")); supported && flags&fsTopdirFL == 0 {
		t.Errorf("tmp lost the top-directory flag: %#x", flags)
	}
}
