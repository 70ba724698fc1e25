package runtime

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-run/berth/internal/errdefs"
)

// mountOptions is a spec mount's options split the way mount(2) wants.
type mountOptions struct {
	flags       uintptr   // MS_* flags for the mount itself
	propagation []uintptr // MS_SHARED, MS_PRIVATE... applied afterwards
	data        string    // filesystem-specific options
	bind        bool
	// recursive attributes ("rro", "rnosuid"...: mount_setattr with
	// AT_RECURSIVE, Linux 5.12), applied after the mount.
	recSet, recClr uint64
	recAtime       uint64 // MOUNT_ATTR_* atime mode, with recAtimeSet
	recAtimeSet    bool
}

var recursiveAttrTable = map[string]struct {
	clear bool
	attr  uint64
}{
	"rro":          {false, unix.MOUNT_ATTR_RDONLY},
	"rrw":          {true, unix.MOUNT_ATTR_RDONLY},
	"rnosuid":      {false, unix.MOUNT_ATTR_NOSUID},
	"rsuid":        {true, unix.MOUNT_ATTR_NOSUID},
	"rnodev":       {false, unix.MOUNT_ATTR_NODEV},
	"rdev":         {true, unix.MOUNT_ATTR_NODEV},
	"rnoexec":      {false, unix.MOUNT_ATTR_NOEXEC},
	"rexec":        {true, unix.MOUNT_ATTR_NOEXEC},
	"rnodiratime":  {false, unix.MOUNT_ATTR_NODIRATIME},
	"rdiratime":    {true, unix.MOUNT_ATTR_NODIRATIME},
	"rnosymfollow": {false, unix.MOUNT_ATTR_NOSYMFOLLOW},
	"rsymfollow":   {true, unix.MOUNT_ATTR_NOSYMFOLLOW},
}

var mountFlagTable = map[string]struct {
	clear bool
	flag  uintptr
}{
	"async":         {true, unix.MS_SYNCHRONOUS},
	"atime":         {true, unix.MS_NOATIME},
	"bind":          {false, unix.MS_BIND},
	"defaults":      {false, 0},
	"dev":           {true, unix.MS_NODEV},
	"diratime":      {true, unix.MS_NODIRATIME},
	"dirsync":       {false, unix.MS_DIRSYNC},
	"exec":          {true, unix.MS_NOEXEC},
	"mand":          {false, unix.MS_MANDLOCK},
	"noatime":       {false, unix.MS_NOATIME},
	"nodev":         {false, unix.MS_NODEV},
	"nodiratime":    {false, unix.MS_NODIRATIME},
	"noexec":        {false, unix.MS_NOEXEC},
	"nomand":        {true, unix.MS_MANDLOCK},
	"norelatime":    {true, unix.MS_RELATIME},
	"nostrictatime": {true, unix.MS_STRICTATIME},
	"nosuid":        {false, unix.MS_NOSUID},
	"rbind":         {false, unix.MS_BIND | unix.MS_REC},
	"relatime":      {false, unix.MS_RELATIME},
	"remount":       {false, unix.MS_REMOUNT},
	"ro":            {false, unix.MS_RDONLY},
	"rw":            {true, unix.MS_RDONLY},
	"silent":        {false, unix.MS_SILENT},
	"loud":          {true, unix.MS_SILENT},
	"strictatime":   {false, unix.MS_STRICTATIME},
	"suid":          {true, unix.MS_NOSUID},
	"sync":          {false, unix.MS_SYNCHRONOUS},
}

var propagationTable = map[string]uintptr{
	"private":     unix.MS_PRIVATE,
	"rprivate":    unix.MS_PRIVATE | unix.MS_REC,
	"shared":      unix.MS_SHARED,
	"rshared":     unix.MS_SHARED | unix.MS_REC,
	"slave":       unix.MS_SLAVE,
	"rslave":      unix.MS_SLAVE | unix.MS_REC,
	"unbindable":  unix.MS_UNBINDABLE,
	"runbindable": unix.MS_UNBINDABLE | unix.MS_REC,
}

func parseMountOptions(opts []string) mountOptions {
	var mo mountOptions
	var data []string
	for _, o := range opts {
		if f, ok := mountFlagTable[o]; ok {
			if f.clear {
				mo.flags &^= f.flag
			} else {
				mo.flags |= f.flag
			}
			continue
		}
		if p, ok := propagationTable[o]; ok {
			mo.propagation = append(mo.propagation, p)
			continue
		}
		switch o {
		case "rnoatime":
			mo.recAtime, mo.recAtimeSet = unix.MOUNT_ATTR_NOATIME, true
			continue
		case "rstrictatime":
			mo.recAtime, mo.recAtimeSet = unix.MOUNT_ATTR_STRICTATIME, true
			continue
		case "ratime", "rrelatime", "rnorelatime", "rnostrictatime":
			mo.recAtime, mo.recAtimeSet = unix.MOUNT_ATTR_RELATIME, true
			continue
		}
		if a, ok := recursiveAttrTable[o]; ok {
			if a.clear {
				mo.recClr |= a.attr
				mo.recSet &^= a.attr
			} else {
				mo.recSet |= a.attr
				mo.recClr &^= a.attr
			}
			continue
		}
		switch o {
		case "tmpcopyup", "idmap", "ridmap", "nosymfollow", "symfollow":
			// Extensions of runc/crun not supported yet.
			continue
		}
		data = append(data, o)
	}
	mo.bind = mo.flags&unix.MS_BIND != 0
	mo.data = strings.Join(data, ",")
	return mo
}

// rootfsBuilder sets up mounts below the rootfs before pivot_root.
type rootfsBuilder struct {
	cfg    *stageConfig
	rootfs string
	root   int // O_PATH fd of rootfs
}

func (b *rootfsBuilder) mountAll() error {
	for i := range b.cfg.Spec.Mounts {
		m := &b.cfg.Spec.Mounts[i]
		if err := b.mount(m); err != nil {
			return fmt.Errorf("mount %s (%s) on %s: %w", m.Source, m.Type, m.Destination, err)
		}
	}
	return nil
}

func (b *rootfsBuilder) mount(m *specs.Mount) error {
	if !filepath.IsAbs(m.Destination) {
		// The spec requires absolute destinations; runc tolerates
		// relative ones as relative to "/".
		m.Destination = "/" + m.Destination
	}
	mo := parseMountOptions(m.Options)
	if m.Type == "bind" {
		mo.bind = true
		mo.flags |= unix.MS_BIND
	}
	if mo.bind {
		return b.bindMount(m, mo)
	}
	if m.Type == "cgroup" || m.Type == "cgroup2" {
		return b.cgroupMount(m, mo)
	}
	target, err := mkdirAllInRoot(b.root, m.Destination, 0o755)
	if err != nil {
		return err
	}
	defer unix.Close(target)
	flags := mo.flags
	data := mo.data
	err = unix.Mount(m.Source, fdPath(target), m.Type, flags, data)
	if err != nil && m.Type == "mqueue" && errors.Is(err, unix.EPERM) {
		// mqueue needs an own IPC namespace; bind the host's instead.
		err = unix.Mount("/dev/mqueue", fdPath(target), "", unix.MS_BIND|unix.MS_REC, "")
	}
	remount := false
	if err != nil && m.Type == "sysfs" && errors.Is(err, unix.EPERM) {
		// sysfs needs an own network namespace in a user namespace.
		err = unix.Mount("/sys", fdPath(target), "", unix.MS_BIND|unix.MS_REC, "")
		remount = flags&unix.MS_RDONLY != 0
	}
	if err != nil {
		return err
	}
	if !remount && len(mo.propagation) == 0 {
		return nil
	}
	return b.onMounted(m.Destination, func(p string) error {
		if remount {
			if err := remountBind(p, flags); err != nil {
				return err
			}
		}
		return setPropagation(p, mo.propagation)
	})
}

// onMounted calls fn with a path naming the mount just made at dest: an fd
// opened before the mount still names the directory it covers.
func (b *rootfsBuilder) onMounted(dest string, fn func(string) error) error {
	fd, err := openInRoot(b.root, dest, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return fn(fdPath(fd))
}

func (b *rootfsBuilder) bindMount(m *specs.Mount, mo mountOptions) error {
	src := m.Source
	if !filepath.IsAbs(src) {
		src = filepath.Join(b.cfg.Bundle, src)
	}
	dir, err := hostIsDir(src)
	if err != nil {
		return err
	}
	var target int
	if dir {
		target, err = mkdirAllInRoot(b.root, m.Destination, 0o755)
	} else {
		target, err = createInRoot(b.root, m.Destination, 0o644)
	}
	if err != nil {
		return err
	}
	defer unix.Close(target)
	t := fdPath(target)
	if err := unix.Mount(src, t, "", mo.flags&(unix.MS_BIND|unix.MS_REC), ""); err != nil {
		return err
	}
	// Flags other than bind/rec only take effect on a remount.
	remount := mo.flags&^(unix.MS_BIND|unix.MS_REC|unix.MS_REMOUNT) != 0
	if !remount && len(mo.propagation) == 0 && mo.recSet|mo.recClr == 0 && !mo.recAtimeSet {
		return nil
	}
	return b.onMounted(m.Destination, func(p string) error {
		if remount {
			if err := remountBind(p, mo.flags); err != nil {
				return err
			}
		}
		if err := setRecursiveAttrs(p, mo); err != nil {
			return err
		}
		return setPropagation(p, mo.propagation)
	})
}

// setRecursiveAttrs applies the "r*" options to the mount at p and every
// mount below it.
func setRecursiveAttrs(p string, mo mountOptions) error {
	if mo.recSet|mo.recClr == 0 && !mo.recAtimeSet {
		return nil
	}
	attr := &unix.MountAttr{Attr_set: mo.recSet, Attr_clr: mo.recClr}
	if mo.recAtimeSet {
		// The atime mode is one field, replaced as a whole.
		attr.Attr_clr |= unix.MOUNT_ATTR__ATIME
		attr.Attr_set |= mo.recAtime
	}
	if err := unix.MountSetattr(unix.AT_FDCWD, p, unix.AT_RECURSIVE, attr); err != nil {
		return fmt.Errorf("recursive mount attributes: %w", err)
	}
	return nil
}

// remountBind applies flags to a bind mount, keeping the flags the kernel
// locks (a remount that would clear nosuid/nodev/noexec/atime flags of a
// mount made in a more privileged namespace fails with EPERM).
func remountBind(target string, flags uintptr) error {
	flags = flags&^(unix.MS_REC) | unix.MS_BIND | unix.MS_REMOUNT
	err := unix.Mount("", target, "", flags, "")
	if err == nil || !errors.Is(err, unix.EPERM) {
		return err
	}
	var st unix.Statfs_t
	if serr := unix.Statfs(target, &st); serr != nil {
		return err
	}
	locked := uintptr(st.Flags) & (unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC | unix.MS_NOATIME | unix.MS_NODIRATIME | unix.MS_RELATIME | unix.MS_RDONLY)
	return unix.Mount("", target, "", flags|locked, "")
}

func setPropagation(target string, props []uintptr) error {
	for _, p := range props {
		if err := unix.Mount("", target, "", p, ""); err != nil {
			return fmt.Errorf("set propagation: %w", err)
		}
	}
	return nil
}

// cgroupMount mounts the container's cgroups at the destination: the
// hierarchy itself for cgroup v2 in a cgroup namespace, otherwise a tmpfs
// with a bind mount of the container's cgroup per v1 hierarchy (or the
// cgroup's directory of the unified hierarchy).
func (b *rootfsBuilder) cgroupMount(m *specs.Mount, mo mountOptions) error {
	target, err := mkdirAllInRoot(b.root, m.Destination, 0o755)
	if err != nil {
		return err
	}
	defer unix.Close(target)
	ro := mo.flags & unix.MS_RDONLY
	common := mo.flags &^ (unix.MS_RDONLY | unix.MS_BIND | unix.MS_REC)
	hier := b.cfg.cgroups()
	if hier == nil {
		if hier, err = readHierarchies(); err != nil {
			return err
		}
	}
	if len(hier) == 1 && hier[0].unified && hier[0].mountpoint == "/sys/fs/cgroup" {
		if b.cfg.NewCgroupNS {
			return unix.Mount("cgroup2", fdPath(target), "cgroup2", mo.flags, "")
		}
		if err := unix.Mount(filepath.Join(hier[0].mountpoint, hier[0].path), fdPath(target), "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return err
		}
		return b.onMounted(m.Destination, func(p string) error { return remountBind(p, common|ro) })
	}
	if err := unix.Mount("tmpfs", fdPath(target), "tmpfs", common, "mode=755"); err != nil {
		return err
	}
	// The fresh tmpfs is ours: make the hierarchy directories in it
	// directly.
	dir, err := openInRoot(b.root, m.Destination, unix.O_DIRECTORY)
	if err != nil {
		return err
	}
	defer unix.Close(dir)
	perMount := false
	for _, h := range hier {
		name := filepath.Base(h.mountpoint)
		if err := unix.Mkdirat(dir, name, 0o755); err != nil && err != unix.EEXIST {
			return fmt.Errorf("cgroup %s: %w", name, err)
		}
		sub, err := unix.Openat(dir, name, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("cgroup %s: %w", name, err)
		}
		src := filepath.Join(h.mountpoint, h.path)
		err = unix.Mount(src, fdPath(sub), "", unix.MS_BIND|unix.MS_REC, "")
		unix.Close(sub)
		if err != nil {
			return fmt.Errorf("cgroup %s: %w", name, err)
		}
		// Comounted controllers (cpu,cpuacct) get a symlink per name.
		if strings.Contains(name, ",") {
			for _, alias := range strings.Split(name, ",") {
				_ = unix.Symlinkat(name, dir, alias)
			}
		}
	}
	// One recursive attribute change for the whole tree (Linux 5.12);
	// a remount per bind mount otherwise.
	attr := &unix.MountAttr{}
	if ro != 0 {
		attr.Attr_set |= unix.MOUNT_ATTR_RDONLY
	}
	if common&unix.MS_NOSUID != 0 {
		attr.Attr_set |= unix.MOUNT_ATTR_NOSUID
	}
	if common&unix.MS_NODEV != 0 {
		attr.Attr_set |= unix.MOUNT_ATTR_NODEV
	}
	if common&unix.MS_NOEXEC != 0 {
		attr.Attr_set |= unix.MOUNT_ATTR_NOEXEC
	}
	if attr.Attr_set != 0 {
		err := b.onMounted(m.Destination, func(p string) error {
			return unix.MountSetattr(unix.AT_FDCWD, p, unix.AT_RECURSIVE, attr)
		})
		if errors.Is(err, unix.ENOSYS) {
			perMount = true
		} else if err != nil {
			return fmt.Errorf("set cgroup mount attributes: %w", err)
		}
	}
	if perMount {
		for _, h := range hier {
			dest := filepath.Join(m.Destination, filepath.Base(h.mountpoint))
			if err := b.onMounted(dest, func(p string) error { return remountBind(p, common|ro) }); err != nil {
				return err
			}
		}
		return b.onMounted(m.Destination, func(p string) error { return remountBind(p, common|ro) })
	}
	return nil
}

// hierarchy is one mounted cgroup hierarchy and this process's cgroup in it.
type hierarchy struct {
	mountpoint string // host mount point, e.g. /sys/fs/cgroup/memory
	path       string // this process's cgroup relative to the mount's root
	unified    bool
	controller string // the first controller ("cpu", "name=systemd"); "" on v2
}

// cgroupHierarchy is a hierarchy as the parent sends it to the init: the
// cgroups the init is being moved into (CgroupDirs), so that it can
// mount them before the move is done.
type cgroupHierarchy struct {
	Mountpoint string `json:"mountpoint"`
	Path       string `json:"path"`
	Unified    bool   `json:"unified,omitempty"`
}

// cgroups are the hierarchies the parent sent, or nil.
func (c *stageConfig) cgroups() []hierarchy {
	if len(c.CgroupDirs) == 0 {
		return nil
	}
	out := make([]hierarchy, len(c.CgroupDirs))
	for i, h := range c.CgroupDirs {
		out[i] = hierarchy{mountpoint: h.Mountpoint, path: h.Path, unified: h.Unified}
	}
	return out
}

// targetHierarchies are this process's cgroup hierarchies (which a child
// it just forked shares) with the cgroups of cg in place of its own: what
// the child's /proc/self/cgroup shows once it is moved into cg. tasks are
// the tasks files of cg's cgroups when they are all cgroup v1 (through
// which a thread can move itself), else nil. ok is false when cg cannot
// tell its directories or one lies outside its hierarchy.
func targetHierarchies(cg CgroupManager) (_ []cgroupHierarchy, tasks []string, ok bool) {
	dirs, ok := cg.(interface {
		Path(controller string) string
	})
	if !ok {
		return nil, nil, false
	}
	hier, err := readHierarchies()
	if err != nil {
		return nil, nil, false
	}
	out := make([]cgroupHierarchy, len(hier))
	v1 := true
	for i, h := range hier {
		out[i] = cgroupHierarchy{Mountpoint: h.mountpoint, Path: h.path, Unified: h.unified}
		// A hierarchy cg does not manage keeps the caller's cgroup, as
		// Add leaves it.
		if dir := dirs.Path(h.controller); dir != "" {
			rel, err := filepath.Rel(h.mountpoint, dir)
			if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
				return nil, nil, false
			}
			out[i].Path = rel
			v1 = v1 && !h.unified
			tasks = append(tasks, filepath.Join(dir, "tasks"))
		}
	}
	if !v1 {
		tasks = nil
	}
	return out, tasks, true
}

// readHierarchies pairs the lines of /proc/self/cgroup with the cgroup
// mounts of /proc/self/mountinfo.
func readHierarchies() ([]hierarchy, error) {
	cg, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil, err
	}
	type mnt struct{ point, root string }
	byOpt := map[string]mnt{}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		sep := -1
		for i, fl := range fields {
			if fl == "-" {
				sep = i
				break
			}
		}
		if sep < 0 || len(fields) < sep+4 {
			continue
		}
		fstype := fields[sep+1]
		switch fstype {
		case "cgroup2":
			byOpt[""] = mnt{fields[4], fields[3]}
		case "cgroup":
			for _, o := range strings.Split(fields[sep+3], ",") {
				if o == "rw" || o == "ro" {
					continue
				}
				if _, ok := byOpt[o]; !ok {
					byOpt[o] = mnt{fields[4], fields[3]}
				}
			}
		}
	}
	var out []hierarchy
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(cg)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		key := ""
		if parts[1] != "" {
			key = strings.Split(parts[1], ",")[0]
		}
		mp, ok := byOpt[key]
		if !ok || seen[mp.point] {
			continue
		}
		seen[mp.point] = true
		rel, err := filepath.Rel(mp.root, parts[2])
		if err != nil || strings.HasPrefix(rel, "..") {
			rel = "."
		}
		out = append(out, hierarchy{mountpoint: mp.point, path: rel, unified: parts[1] == "", controller: key})
	}
	if len(out) == 0 {
		return nil, errdefs.New(errdefs.ErrNotSupported, "no cgroup hierarchy is mounted")
	}
	return out, nil
}
