package testutil

import (
	"archive/tar"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"testing"
	"time"
)

var busyboxTar struct {
	once sync.Once
	path string
	err  error
}

// BusyboxTar returns the path of a tar of BusyboxRootfs, the input of a
// `berth import` that makes the busybox fixture image. Its bytes are the
// same on every call and every run (fixed times, sorted entries), so the
// layer it makes always has the same diffID. Built once per test binary.
func BusyboxTar(t testing.TB) string {
	t.Helper()
	root := BusyboxRootfs(t)
	busyboxTar.once.Do(func() {
		busyboxTar.path, busyboxTar.err = writeTreeTar(root, filepath.Join(filepath.Dir(root), fmt.Sprintf("busybox-%d.tar", os.Getpid())))
	})
	if busyboxTar.err != nil {
		t.Fatalf("busybox tar: %v", busyboxTar.err)
	}
	return busyboxTar.path
}

// fixtureTime is the modification time of every entry of fixture tars.
var fixtureTime = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// writeTreeTar writes a deterministic tar of the tree at root to dst.
func writeTreeTar(root, dst string) (string, error) {
	var paths []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != root {
			paths = append(paths, p)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	sort.Strings(paths)
	f, err := os.Create(dst)
	if err != nil {
		return "", err
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	for _, p := range paths {
		fi, err := os.Lstat(p)
		if err != nil {
			return "", err
		}
		link := ""
		if fi.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return "", err
			}
		}
		hdr, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return "", err
		}
		rel, _ := filepath.Rel(root, p)
		hdr.Name = filepath.ToSlash(rel)
		if fi.IsDir() {
			hdr.Name += "/"
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			hdr.Uid, hdr.Gid = int(st.Uid), int(st.Gid)
		}
		hdr.Uname, hdr.Gname = "", ""
		hdr.ModTime, hdr.AccessTime, hdr.ChangeTime = fixtureTime, time.Time{}, time.Time{}
		hdr.Format = tar.FormatPAX
		if err := tw.WriteHeader(hdr); err != nil {
			return "", err
		}
		if fi.Mode().IsRegular() {
			in, err := os.Open(p)
			if err != nil {
				return "", err
			}
			_, err = io.Copy(tw, in)
			in.Close()
			if err != nil {
				return "", err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	return dst, f.Close()
}
