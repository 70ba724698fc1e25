package testutil

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Users in the rootfs made by BusyboxRootfs.
const (
	TestUID  = 1000 // the "berth" test user
	TestGID  = 1000 // the "berth" test group
	ExtraGID = 1001 // a second group ("extra") the test user belongs to
)

var busybox struct {
	once sync.Once
	dir  string
	err  error
}

// BusyboxRootfs returns a root filesystem made from Debian's busybox-static:
// /bin/busybox with a symlink per applet (as `busybox --install -s` makes),
// the usual top-level directories, and /etc/passwd and /etc/group with root,
// nobody and a test user (TestUID:TestGID, also in group ExtraGID).
//
// The tree is built once per test binary and shared: tests must not write
// into it (mount it read-only, or copy it with CopyRootfs). It needs
// /bin/busybox (apt-get install busybox-static); without it the test is
// skipped, or fails when BERTH_TEST_STRICT=1.
func BusyboxRootfs(t testing.TB) string {
	t.Helper()
	busybox.once.Do(func() {
		busybox.dir, busybox.err = makeBusyboxRootfs()
	})
	if busybox.err != nil {
		Unavailable(t, "busybox rootfs: "+busybox.err.Error())
	}
	return busybox.dir
}

// CopyRootfs returns a private, writable copy of BusyboxRootfs in a
// temporary directory removed when the test ends.
func CopyRootfs(t testing.TB) string {
	t.Helper()
	src := BusyboxRootfs(t)
	dst := filepath.Join(t.TempDir(), "rootfs")
	if err := copyTree(src, dst); err != nil {
		t.Fatalf("copy rootfs: %v", err)
	}
	return dst
}

func makeBusyboxRootfs() (string, error) {
	bb, err := exec.LookPath("busybox")
	if err != nil {
		if _, serr := os.Stat("/bin/busybox"); serr != nil {
			return "", fmt.Errorf("busybox-static is not installed")
		}
		bb = "/bin/busybox"
	}
	// The rootfs lives as long as the test binary; a fixed per-process
	// directory under the temp dir is removed by nobody, so key it by pid
	// and let a later run clean stale ones.
	base := filepath.Join(os.TempDir(), "berth-test-rootfs")
	if err := os.MkdirAll(base, 0o755); err != nil {
		return "", err
	}
	removeStale(base)
	dir := filepath.Join(base, fmt.Sprintf("busybox-%d", os.Getpid()))
	os.RemoveAll(dir)
	for _, d := range []string{"bin", "sbin", "usr/bin", "usr/sbin", "etc", "dev", "proc", "sys", "tmp", "root", "home/berth", "var/tmp", "run"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return "", err
		}
	}
	os.Chmod(filepath.Join(dir, "tmp"), 0o1777)
	os.Chmod(filepath.Join(dir, "var/tmp"), 0o1777)
	os.Chown(filepath.Join(dir, "home/berth"), TestUID, TestGID)
	if err := copyFile(bb, filepath.Join(dir, "bin/busybox"), 0o755); err != nil {
		return "", err
	}
	out, err := exec.Command(bb, "--list-full").Output()
	if err != nil {
		return "", fmt.Errorf("busybox --list-full: %w", err)
	}
	for _, name := range strings.Fields(string(out)) {
		p := filepath.Join(dir, name)
		if name == "bin/busybox" {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return "", err
		}
		if err := os.Symlink("/bin/busybox", p); err != nil && !os.IsExist(err) {
			return "", err
		}
	}
	files := map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\n" +
			"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n" +
			fmt.Sprintf("berth:x:%d:%d:berth:/home/berth:/bin/sh\n", TestUID, TestGID),
		"etc/group": "root:x:0:\n" +
			"nogroup:x:65534:\n" +
			fmt.Sprintf("berth:x:%d:\nextra:x:%d:berth\n", TestGID, ExtraGID),
		"etc/hostname": "busybox\n",
		"etc/hosts":    "127.0.0.1 localhost\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			return "", err
		}
	}
	return dir, nil
}

// removeStale removes rootfs directories of test binaries that have exited.
func removeStale(base string) {
	ents, _ := os.ReadDir(base)
	for _, e := range ents {
		var pid int
		if _, err := fmt.Sscanf(e.Name(), "busybox-%d", &pid); err != nil {
			continue
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); os.IsNotExist(err) {
			os.RemoveAll(filepath.Join(base, e.Name()))
		}
	}
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// copyTree copies a tree of directories, regular files and symlinks,
// keeping modes and ownership.
func copyTree(src, dst string) error {
	return filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(l, target)
		case fi.IsDir():
			if err := os.MkdirAll(target, fi.Mode().Perm()); err != nil {
				return err
			}
			os.Chmod(target, fi.Mode()&(os.ModePerm|os.ModeSticky))
		default:
			if err := copyFile(p, target, fi.Mode().Perm()); err != nil {
				return err
			}
		}
		if st, ok := statOwner(fi); ok {
			os.Lchown(target, st[0], st[1])
		}
		return nil
	})
}
