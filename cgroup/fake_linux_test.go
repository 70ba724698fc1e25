package cgroup

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// fakeV2 is a cgroup v2 "kernel" over a temporary directory, for machines
// without a real cgroup2 hierarchy that has controllers. It populates new
// cgroup directories with interface files for the controllers the parent
// enables, keeps cgroup.subtree_control, cgroup.procs and cgroup.events the
// way the kernel does, refuses values in the wrong format with EINVAL (so
// a test sees the Manager's mistakes), and records every write. Processes
// written to cgroup.procs are real: freezing sends them SIGSTOP and
// thawing SIGCONT, cgroup.kill sends SIGKILL.
type fakeV2 struct {
	t    *testing.T
	root string

	mu     sync.Mutex
	writes []string // "path-below-root=value", in order
}

// fakeControllers are what the fake root offers, in the kernel's order.
var fakeControllers = []string{"cpuset", "cpu", "io", "memory", "hugetlb", "pids", "rdma", "misc"}

func newFakeV2(t *testing.T) *fakeV2 {
	t.Helper()
	f := &fakeV2{t: t, root: t.TempDir()}
	files := map[string]string{
		"cgroup.controllers":     strings.Join(fakeControllers, " "),
		"cgroup.subtree_control": "",
		"cgroup.procs":           "",
		"cgroup.max.depth":       "max",
		"cpu.stat":               "usage_usec 0\nuser_usec 0\nsystem_usec 0\n",
	}
	for name, v := range files {
		f.put(filepath.Join(f.root, name), v)
	}
	return f
}

func (f *fakeV2) put(file, v string) {
	if v != "" && !strings.HasSuffix(v, "\n") {
		v += "\n"
	}
	if err := os.WriteFile(file, []byte(v), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fakeV2) get(file string) string {
	b, err := os.ReadFile(file)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// controllerFiles are the interface files each controller adds.
func controllerFiles(c string) map[string]string {
	switch c {
	case "cpu":
		return map[string]string{"cpu.weight": "100", "cpu.weight.nice": "0", "cpu.max": "max 100000",
			"cpu.max.burst": "0", "cpu.idle": "0"}
	case "cpuset":
		return map[string]string{"cpuset.cpus": "", "cpuset.mems": "", "cpuset.cpus.effective": "0-1", "cpuset.mems.effective": "0"}
	case "io":
		return map[string]string{"io.max": "", "io.weight": "default 100", "io.stat": ""}
	case "memory":
		return map[string]string{"memory.current": "0", "memory.peak": "0", "memory.max": "max", "memory.high": "max",
			"memory.low": "0", "memory.min": "0", "memory.swap.max": "max", "memory.swap.current": "0",
			"memory.events": "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0",
			"memory.stat":   "anon 0\nfile 0\ninactive_file 0"}
	case "pids":
		return map[string]string{"pids.max": "max", "pids.current": "0", "pids.events": "max 0"}
	case "hugetlb":
		m := map[string]string{}
		for size := range hugePageSizes() {
			m["hugetlb."+size+".max"] = "max"
			m["hugetlb."+size+".rsvd.max"] = "max"
			m["hugetlb."+size+".current"] = "0"
		}
		return m
	case "rdma":
		return map[string]string{"rdma.max": "", "rdma.current": ""}
	case "misc":
		return map[string]string{"misc.max": "", "misc.current": ""}
	}
	return nil
}

func (f *fakeV2) mkdir(dir string) error {
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	files := map[string]string{
		"cgroup.controllers":     f.get(filepath.Join(filepath.Dir(dir), "cgroup.subtree_control")),
		"cgroup.subtree_control": "",
		"cgroup.procs":           "",
		"cgroup.events":          "populated 0\nfrozen 0",
		"cgroup.freeze":          "0",
		"cgroup.kill":            "",
		"cgroup.type":            "domain",
		"cpu.stat":               "usage_usec 0\nuser_usec 0\nsystem_usec 0",
	}
	for _, c := range strings.Fields(files["cgroup.controllers"]) {
		for k, v := range controllerFiles(c) {
			files[k] = v
		}
	}
	for name, v := range files {
		f.put(filepath.Join(dir, name), v)
	}
	return nil
}

func (f *fakeV2) rmdir(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return &fs.PathError{Op: "rmdir", Path: dir, Err: syscall.ENOENT}
	}
	for _, e := range ents {
		if e.IsDir() {
			return &fs.PathError{Op: "rmdir", Path: dir, Err: syscall.ENOTEMPTY}
		}
	}
	f.reap() // the kernel drops exited tasks from cgroup.procs
	if f.get(filepath.Join(dir, "cgroup.procs")) != "" {
		return &fs.PathError{Op: "rmdir", Path: dir, Err: syscall.EBUSY}
	}
	if dir == f.root {
		return &fs.PathError{Op: "rmdir", Path: dir, Err: syscall.EBUSY}
	}
	return os.RemoveAll(dir)
}

var (
	numOrMax   = regexp.MustCompile(`^([0-9]+|max)$`)
	cpuMaxRE   = regexp.MustCompile(`^([0-9]+|max)( [0-9]+)?$`)
	ioMaxRE    = regexp.MustCompile(`^[0-9]+:[0-9]+( (rbps|wbps|riops|wiops)=([0-9]+|max))+$`)
	ioWeightRE = regexp.MustCompile(`^(default [0-9]+|[0-9]+:[0-9]+ [0-9]+|[0-9]+)$`)
	rdmaRE     = regexp.MustCompile(`^\S+( (hca_handle|hca_object)=([0-9]+|max))+$`)
	listRE     = regexp.MustCompile(`^[0-9,\-]*$`)
)

// checkValue refuses, with EINVAL, what the kernel would refuse.
func checkValue(name, v string) bool {
	num := func(lo, hi uint64) bool {
		n, err := strconv.ParseUint(v, 10, 64)
		return err == nil && n >= lo && n <= hi
	}
	switch {
	case name == "memory.max", name == "memory.low", name == "memory.high", name == "memory.min",
		name == "memory.swap.max", name == "pids.max", strings.HasPrefix(name, "hugetlb.") && strings.HasSuffix(name, ".max"):
		return numOrMax.MatchString(v)
	case name == "cpu.weight":
		return num(1, 10000)
	case name == "cpu.idle":
		return v == "0" || v == "1"
	case name == "cpu.max":
		return cpuMaxRE.MatchString(v)
	case name == "cpu.max.burst":
		return num(0, 1<<40)
	case name == "cpuset.cpus", name == "cpuset.mems":
		return listRE.MatchString(v)
	case name == "io.max":
		return ioMaxRE.MatchString(v)
	case name == "io.weight":
		return ioWeightRE.MatchString(v)
	case name == "rdma.max":
		return rdmaRE.MatchString(v)
	}
	return true
}

func (f *fakeV2) write(file, data string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := os.Stat(file); err != nil {
		return &fs.PathError{Op: "open", Path: file, Err: syscall.ENOENT}
	}
	rel, _ := filepath.Rel(f.root, file)
	f.writes = append(f.writes, rel+"="+data)
	dir, name := filepath.Dir(file), filepath.Base(file)
	einval := &fs.PathError{Op: "write", Path: file, Err: syscall.EINVAL}
	switch name {
	case "cgroup.subtree_control":
		avail := fieldSet(filepath.Join(dir, "cgroup.controllers"))
		on := fieldSet(file)
		var added []string
		for _, tok := range strings.Fields(data) {
			c := tok[1:]
			switch {
			case len(tok) < 2 || (tok[0] != '+' && tok[0] != '-'):
				return einval
			case !avail[c]:
				return &fs.PathError{Op: "write", Path: file, Err: syscall.ENOENT}
			case tok[0] == '+':
				if dir != f.root && f.get(filepath.Join(dir, "cgroup.procs")) != "" {
					return &fs.PathError{Op: "write", Path: file, Err: syscall.EBUSY} // no internal processes
				}
				if !on[c] {
					added = append(added, c)
				}
				on[c] = true
			default:
				delete(on, c)
			}
		}
		var list []string
		for _, c := range fakeControllers {
			if on[c] {
				list = append(list, c)
			}
		}
		f.put(file, strings.Join(list, " "))
		// Children get the new controllers' files.
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if !e.IsDir() {
				continue
			}
			child := filepath.Join(dir, e.Name())
			f.put(filepath.Join(child, "cgroup.controllers"), strings.Join(list, " "))
			for _, c := range added {
				for k, v := range controllerFiles(c) {
					f.put(filepath.Join(child, k), v)
				}
			}
		}
		return nil
	case "cgroup.procs":
		pid, err := strconv.Atoi(strings.TrimSpace(data))
		if err != nil || pid <= 0 {
			return einval
		}
		if err := unix.Kill(pid, 0); err != nil {
			return &fs.PathError{Op: "write", Path: file, Err: err}
		}
		f.removePid(pid)
		pids := strings.Fields(f.get(file))
		f.put(file, strings.Join(append(pids, strconv.Itoa(pid)), "\n"))
		f.setEvent(dir, "populated", 1)
		if f.get(filepath.Join(dir, "cgroup.freeze")) == "1" {
			_ = unix.Kill(pid, unix.SIGSTOP)
		}
		return nil
	case "cgroup.freeze":
		if data != "0" && data != "1" {
			return einval
		}
		f.put(file, data)
		sig := unix.SIGSTOP
		if data == "0" {
			sig = unix.SIGCONT
		}
		f.eachPid(dir, func(pid int) { _ = unix.Kill(pid, sig) })
		f.setEvent(dir, "frozen", map[string]int{"0": 0, "1": 1}[data])
		return nil
	case "cgroup.kill":
		if data != "1" {
			return einval
		}
		f.eachPid(dir, func(pid int) { _ = unix.Kill(pid, unix.SIGKILL) })
		_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				f.put(filepath.Join(p, "cgroup.procs"), "")
				f.setEvent(p, "populated", 0)
			}
			return nil
		})
		return nil
	}
	if !checkValue(name, data) {
		return einval
	}
	switch name {
	case "io.max", "rdma.max", "misc.max":
		// Keyed by device: a write replaces that device's line.
		key := strings.Fields(data)[0]
		var lines []string
		for _, l := range strings.Split(f.get(file), "\n") {
			if l != "" && strings.Fields(l)[0] != key {
				lines = append(lines, l)
			}
		}
		f.put(file, strings.Join(append(lines, data), "\n"))
	case "io.weight":
		if strings.Contains(data, ":") {
			f.put(file, f.get(file)+"\n"+data)
		} else {
			f.put(file, "default "+strings.TrimPrefix(data, "default "))
		}
	case "cpu.max":
		if !strings.Contains(data, " ") { // quota alone keeps the period
			_, period, _ := strings.Cut(f.get(file), " ")
			data += " " + period
		}
		f.put(file, data)
	default:
		f.put(file, data)
	}
	return nil
}

// eachPid calls fn for every process in dir and below.
func (f *fakeV2) eachPid(dir string, fn func(int)) {
	pids, _ := procsIn(dir)
	for _, p := range pids {
		fn(p)
	}
}

// removePid takes pid out of whatever fake cgroup holds it.
func (f *fakeV2) removePid(pid int) {
	_ = filepath.WalkDir(f.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		file := filepath.Join(p, "cgroup.procs")
		pids := strings.Fields(f.get(file))
		if i := slices.Index(pids, strconv.Itoa(pid)); i >= 0 {
			pids = slices.Delete(pids, i, i+1)
			f.put(file, strings.Join(pids, "\n"))
			if len(pids) == 0 && p != f.root {
				f.setEvent(p, "populated", 0)
			}
		}
		return nil
	})
}

func (f *fakeV2) setEvent(dir, key string, v int) {
	file := filepath.Join(dir, "cgroup.events")
	if _, err := os.Stat(file); err != nil {
		return
	}
	kv := parseKV(f.get(file))
	kv[key] = uint64(v)
	f.put(file, fmt.Sprintf("populated %d\nfrozen %d", kv["populated"], kv["frozen"]))
}

// wrote returns the writes made so far, as "path-below-root=value".
func (f *fakeV2) wrote() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.writes)
}

// reap forgets processes that have exited (the kernel drops them from
// cgroup.procs; the fake learns it here).
func (f *fakeV2) reap() {
	_ = filepath.WalkDir(f.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		pids, _ := readPids(filepath.Join(p, "cgroup.procs"))
		for _, pid := range pids {
			if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err != nil || strings.Contains(string(b), ") Z ") {
				f.mu.Lock()
				f.removePid(pid)
				f.mu.Unlock()
			}
		}
		return nil
	})
}
