package berth

import (
	"bufio"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/berth-run/berth/cgroup"
)

// Info describes the host and the store, as `docker info`.
type Info struct {
	Containers        int
	ContainersRunning int
	ContainersPaused  int
	ContainersStopped int
	Images            int
	Driver            string
	CgroupVersion     string
	KernelVersion     string
	OperatingSystem   string
	Architecture      string
	NCPU              int
	MemTotal          int64
	RootDir           string
	RunRoot           string
}

// Info describes the host and the store.
func (r *Runtime) Info(ctx context.Context) (*Info, error) {
	info := &Info{Driver: "overlay", Architecture: goruntime.GOARCH, NCPU: goruntime.NumCPU(), RootDir: r.opts.root, RunRoot: r.opts.runRoot}
	images, err := r.Images(ctx)
	if err != nil {
		return nil, err
	}
	info.Images = len(images)
	ids, err := r.store.ContainerIDs()
	if err != nil {
		return nil, err
	}
	info.Containers = len(ids)
	for _, id := range ids {
		if r.containerRunning(id) {
			info.ContainersRunning++
		} else {
			info.ContainersStopped++
		}
	}
	switch cgroup.DetectMode() {
	case cgroup.Unified:
		info.CgroupVersion = "2"
	case cgroup.Legacy:
		info.CgroupVersion = "1"
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		info.KernelVersion = strings.TrimSpace(string(b))
	}
	info.OperatingSystem = osPrettyName()
	info.MemTotal = memTotal()
	return info, nil
}

func osPrettyName() string {
	f, err := os.Open("/etc/os-release")
	if err != nil {
		return goruntime.GOOS
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "PRETTY_NAME="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return goruntime.GOOS
}

func memTotal() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var kb int64
		if n, _ := fmt.Sscanf(sc.Text(), "MemTotal: %d kB", &kb); n == 1 {
			return kb * 1024
		}
	}
	return 0
}

// UsageSummary is one row of DiskUsage.
type UsageSummary struct {
	Total       int
	Active      int
	Size        int64
	Reclaimable int64
}

// DiskUsage is the store's disk usage by kind, as `docker system df`.
type DiskUsage struct {
	Images     UsageSummary
	Containers UsageSummary
	Volumes    UsageSummary
	BuildCache UsageSummary
}

// DiskUsage measures the store's disk usage.
func (r *Runtime) DiskUsage(ctx context.Context) (*DiskUsage, error) {
	du := &DiskUsage{}
	images, err := r.Images(ctx)
	if err != nil {
		return nil, err
	}
	layerSize := map[digest.Digest]int64{}
	usedByContainer := map[digest.Digest]bool{}
	for _, im := range images {
		du.Images.Total++
		u := r.imageUsers(im.rec.ID)
		active := len(u.running)+len(u.stopped) > 0
		if active {
			du.Images.Active++
		}
		for _, l := range im.Layers() {
			layerSize[l.ChainID()] = l.UncompressedSize()
			if active {
				usedByContainer[l.ChainID()] = true
			}
		}
	}
	for c, n := range layerSize {
		du.Images.Size += n
		if !usedByContainer[c] {
			du.Images.Reclaimable += n
		}
	}
	ids, err := r.store.ContainerIDs()
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		du.Containers.Total++
		n := dirSize(filepath.Join(r.store.ContainerDir(id), "upper"))
		du.Containers.Size += n
		if r.containerRunning(id) {
			du.Containers.Active++
		} else {
			du.Containers.Reclaimable += n
		}
	}
	if err := r.volumeUsage(ctx, &du.Volumes); err != nil {
		return nil, err
	}
	return du, nil
}

// dirSize is the apparent size of the files below dir.
func dirSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}
