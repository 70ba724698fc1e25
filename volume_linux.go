package berth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"github.com/berth-run/berth/internal/archive"
	"github.com/berth-run/berth/internal/errdefs"
)

// prepareVolume readies volume name for a container whose root file system
// is mounted at rootfs and which mounts it at target: it mounts the
// volume's device (local driver options) if that is not done yet and, with
// copyUp, fills a new, empty volume with what the image has at target, as
// docker does — once in the volume's life. It holds the volume's lock, so
// two containers starting at once copy once.
func (r *Runtime) prepareVolume(ctx context.Context, name, rootfs, target string, copyUp bool) error {
	lk, err := r.store.LockName("volume-" + name)
	if err != nil {
		return err
	}
	defer lk.Unlock()
	rec, err := r.readVolume(name)
	if err != nil {
		return err
	}
	data := r.volumeData(name)
	if err := mountVolumeDevice(rec, data); err != nil {
		return err
	}
	if !copyUp || rec.Populated {
		return nil
	}
	done, err := copyImageContent(ctx, rootfs, target, data)
	if err != nil {
		return fmt.Errorf("volume %s: copy the image's %s: %w", name, target, err)
	}
	if !done {
		return nil
	}
	unlock, err := r.store.Lock()
	if err != nil {
		return err
	}
	defer unlock()
	if rec, err = r.readVolume(name); err != nil {
		return err
	}
	rec.Populated = true
	return r.writeVolume(rec)
}

// copyImageContent copies the directory target of the container root
// rootfs (resolved inside it: symlinks cannot lead out) into the empty
// directory data, with ownership, modes, times, xattrs, symlinks,
// hardlinks and devices, and gives data the directory's owner and mode.
// It reports whether the volume is now populated: false when the image
// has no directory at target, true when data already had content (it is
// left alone).
func copyImageContent(ctx context.Context, rootfs, target, data string) (bool, error) {
	src, err := archive.OpenInRoot(rootfs, target, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
			return false, nil
		}
		return false, err
	}
	defer src.Close()
	if empty, err := dirEmpty(data); err != nil || !empty {
		return err == nil, err
	}
	pr, pw := io.Pipe()
	tarDone := make(chan struct{})
	go func() {
		defer close(tarDone)
		pw.CloseWithError(archive.Tar(ctx, pw, fmt.Sprintf("/proc/self/fd/%d", src.Fd()), archive.TarOptions{}))
	}()
	_, err = archive.Apply(ctx, data, pr, archive.ApplyOptions{})
	pr.CloseWithError(errors.New("copy stopped"))
	<-tarDone
	if err != nil {
		clearDir(data)
		return false, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(src.Fd()), &st); err != nil {
		return false, err
	}
	if err := unix.Lchown(data, int(st.Uid), int(st.Gid)); err != nil {
		return false, err
	}
	if err := unix.Chmod(data, st.Mode&0o7777); err != nil {
		return false, err
	}
	return true, nil
}

// dirEmpty reports whether the directory dir has no entries.
func dirEmpty(dir string) (bool, error) {
	f, err := os.Open(dir)
	if err != nil {
		return false, err
	}
	defer f.Close()
	_, err = f.Readdirnames(1)
	if err == io.EOF {
		return true, nil
	}
	return false, err
}

// clearDir removes what a failed copy left in dir.
func clearDir(dir string) {
	names, _ := func() ([]string, error) {
		f, err := os.Open(dir)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		return f.Readdirnames(-1)
	}()
	for _, n := range names {
		_ = os.RemoveAll(filepath.Join(dir, n))
	}
}

// mountFlags are the flag words of the local driver's "o" option; the
// rest is passed to the file system as data, as mount(8) does.
var mountFlags = map[string]struct {
	clear bool
	flag  uintptr
}{
	"ro": {false, unix.MS_RDONLY}, "rw": {true, unix.MS_RDONLY},
	"nosuid": {false, unix.MS_NOSUID}, "suid": {true, unix.MS_NOSUID},
	"nodev": {false, unix.MS_NODEV}, "dev": {true, unix.MS_NODEV},
	"noexec": {false, unix.MS_NOEXEC}, "exec": {true, unix.MS_NOEXEC},
	"sync": {false, unix.MS_SYNCHRONOUS}, "async": {true, unix.MS_SYNCHRONOUS},
	"noatime": {false, unix.MS_NOATIME}, "atime": {true, unix.MS_NOATIME},
	"relatime": {false, unix.MS_RELATIME}, "strictatime": {false, unix.MS_STRICTATIME},
	"bind": {false, unix.MS_BIND}, "rbind": {false, unix.MS_BIND | unix.MS_REC},
	"defaults": {false, 0},
}

// mountVolumeDevice mounts a volume created with the local driver's
// device options on its data directory, unless it is mounted already.
// The mount stays until the volume is removed.
func mountVolumeDevice(rec *volumeRecord, data string) error {
	device := rec.Options["device"]
	if device == "" {
		return nil
	}
	if mounted, err := mountinfo.Mounted(data); err != nil || mounted {
		return err
	}
	var flags uintptr
	var rest []string
	for o := range strings.SplitSeq(rec.Options["o"], ",") {
		if o == "" {
			continue
		}
		if f, ok := mountFlags[o]; ok {
			if f.clear {
				flags &^= f.flag
			} else {
				flags |= f.flag
			}
			continue
		}
		rest = append(rest, o)
	}
	if err := unix.Mount(device, data, rec.Options["type"], flags, strings.Join(rest, ",")); err != nil {
		return errdefs.Wrap(errdefs.ErrInvalid, fmt.Sprintf("volume %s: mount %s (type %q, options %q)", rec.Name, device, rec.Options["type"], rec.Options["o"]), err)
	}
	if flags&unix.MS_BIND != 0 && flags&unix.MS_RDONLY != 0 {
		// A bind mount takes ro only on a remount.
		if err := unix.Mount("", data, "", flags|unix.MS_REMOUNT, ""); err != nil {
			_ = unix.Unmount(data, unix.MNT_DETACH)
			return fmt.Errorf("volume %s: remount read-only: %w", rec.Name, err)
		}
	}
	return nil
}

// unmountVolume detaches whatever is mounted on a volume's data
// directory (a device of the local driver's options).
func unmountVolume(data string) {
	for {
		if err := unix.Unmount(data, unix.MNT_DETACH); err != nil {
			return
		}
	}
}
