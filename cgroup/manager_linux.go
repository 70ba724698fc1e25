package cgroup

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-run/berth/internal/errdefs"
)

// kernelFS is the real cgroup file system.
type kernelFS struct{}

func (kernelFS) mkdir(dir string) error { return os.Mkdir(dir, 0o755) }

func (kernelFS) rmdir(dir string) error {
	if err := unix.Rmdir(dir); err != nil {
		return &fs.PathError{Op: "rmdir", Path: dir, Err: err}
	}
	return nil
}

// write writes data with one write(2), as cgroup files want; no O_CREAT,
// so a missing interface file reports ENOENT.
func (kernelFS) write(file, data string) error {
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func newManager(path string, o *options) (*Manager, error) {
	ownData := o.own
	if ownData == nil {
		var err error
		if ownData, err = os.ReadFile("/proc/self/cgroup"); err != nil {
			return nil, fmt.Errorf("read own cgroup: %w", err)
		}
	}
	own, err := parseProcCgroup(strings.NewReader(string(ownData)))
	if err != nil {
		return nil, err
	}
	m := &Manager{path: path, fs: o.fs}
	if m.fs == nil {
		m.fs = kernelFS{}
	}
	if o.root != "" {
		m.mode = o.mode
		if m.mode == Unavailable {
			m.mode = Legacy
			if _, err := os.Stat(filepath.Join(o.root, "cgroup.controllers")); err == nil {
				m.mode = Unified
			}
		}
		m.hiers, err = hierarchiesInRoot(m.mode, o.root, own, path)
	} else {
		mi, rerr := os.Open("/proc/self/mountinfo")
		if rerr != nil {
			return nil, fmt.Errorf("read mountinfo: %w", rerr)
		}
		mounts, perr := parseMountInfo(mi)
		mi.Close()
		if perr != nil {
			return nil, fmt.Errorf("parse mountinfo: %w", perr)
		}
		m.mode = o.mode
		if m.mode == Unavailable {
			m.mode = detectMode(mounts)
		}
		m.hiers, err = hierarchiesFromMounts(m.mode, mounts, own, path)
	}
	if err != nil {
		return nil, err
	}
	return m, nil
}

// hierarchiesInRoot finds the hierarchies below a WithRoot directory.
func hierarchiesInRoot(mode Mode, root string, own map[string]string, p string) ([]hierarchy, error) {
	switch mode {
	case Unified:
		base, dir := placeIn(root, "/", ownPath(own, ""), p)
		return []hierarchy{{mount: root, base: base, dir: dir}}, nil
	case Legacy:
		ents, err := os.ReadDir(root)
		if err != nil {
			return nil, fmt.Errorf("cgroup root %s: %w", root, err)
		}
		seen := make(map[string]bool)
		var hs []hierarchy
		for _, e := range ents {
			full := filepath.Join(root, e.Name())
			real, err := filepath.EvalSymlinks(full)
			if err != nil {
				continue
			}
			if st, err := os.Stat(real); err != nil || !st.IsDir() || seen[real] {
				continue
			}
			if _, err := os.Stat(filepath.Join(real, "cgroup.controllers")); err == nil {
				continue // a cgroup2 tree (hybrid "unified")
			}
			seen[real] = true
			var ctrls []string
			for _, c := range strings.Split(filepath.Base(real), ",") {
				if c == "systemd" {
					c = "name=systemd"
				}
				ctrls = append(ctrls, c)
			}
			slices.Sort(ctrls)
			base, dir := placeIn(real, "/", ownPath(own, ctrls[0]), p)
			hs = append(hs, hierarchy{controllers: ctrls, mount: real, base: base, dir: dir})
		}
		if len(hs) == 0 {
			return nil, unsupportedf("cgroup root %s has no v1 hierarchy", root)
		}
		return hs, nil
	}
	return nil, unsupportedf("no cgroup file system")
}

// DetectMode reports the machine's cgroup layout from /proc/self/mountinfo:
// Unified when cgroup2 is mounted at /sys/fs/cgroup, Legacy when v1
// controllers are mounted (the hybrid layout included), Unavailable
// otherwise.
func DetectMode() Mode {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return Unavailable
	}
	defer f.Close()
	ms, err := parseMountInfo(f)
	if err != nil {
		return Unavailable
	}
	return detectMode(ms)
}

// errKind classes a kernel error from a cgroup file.
func errKind(err error) error {
	var errno unix.Errno
	if !errors.As(err, &errno) {
		return nil
	}
	switch errno {
	case unix.EINVAL, unix.ERANGE:
		return errdefs.ErrInvalid
	case unix.EBUSY:
		return errdefs.ErrConflict
	case unix.ENOENT, unix.EOPNOTSUPP, unix.ENODEV:
		return errdefs.ErrNotSupported
	case unix.ESRCH:
		return errdefs.ErrNotFound
	}
	return nil
}

// causeOf is the errno inside err, or err.
func causeOf(err error) error {
	var errno unix.Errno
	if errors.As(err, &errno) {
		return errno
	}
	return err
}

// fileErr wraps an error of a cgroup file operation with the cgroup's
// name, the file and the errno, classed by kind.
func (m *Manager) fileErr(op, file, value string, err error) error {
	msg := fmt.Sprintf("cgroup %s: %s %s", m.path, op, file)
	if value != "" {
		msg = fmt.Sprintf("cgroup %s: %s %q to %s", m.path, op, value, file)
	}
	if k := errKind(err); k != nil {
		return errdefs.Wrap(k, msg, causeOf(err))
	}
	return fmt.Errorf("%s: %w", msg, causeOf(err))
}

// writeFile writes value to dir/name through the Manager's file system.
func (m *Manager) writeFile(dir, name, value string) error {
	file := filepath.Join(dir, name)
	if err := m.fs.write(file, value); err != nil {
		return m.fileErr("write", file, value, err)
	}
	return nil
}

// readString reads a cgroup file, trimmed.
func readString(file string) (string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// readUint reads a number; "max" (v2) and v1's page-rounded "unlimited"
// read as 0 with unlimited true.
func readUint(file string) (v uint64, unlimited bool, err error) {
	s, err := readString(file)
	if err != nil {
		return 0, false, err
	}
	return parseLimit(s)
}

// parseLimit parses a cgroup number; "max" and values near 2^63 (v1's
// unlimited, rounded down to a page) are unlimited.
func parseLimit(s string) (uint64, bool, error) {
	if s == "max" {
		return 0, true, nil
	}
	if s == "-1" {
		return 0, true, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("parse %q: %w", s, err)
	}
	if v >= 1<<62 {
		return 0, true, nil
	}
	return v, false, nil
}

// fileExists reports whether a cgroup interface file exists.
func fileExists(file string) bool {
	_, err := os.Stat(file)
	return err == nil
}

func (m *Manager) exists() bool {
	for i := range m.hiers {
		if st, err := os.Stat(m.hiers[i].dir); err == nil && st.IsDir() {
			return true
		}
	}
	return false
}

func (m *Manager) notFound() error {
	return errdefs.New(errdefs.ErrNotFound, fmt.Sprintf("cgroup %s does not exist", m.path))
}

// mkdirAll makes h.dir and its missing parents, returning the directories
// it made, top-down, and the nearest ancestor that existed before.
func (m *Manager) mkdirAll(h *hierarchy) (made []string, firstParent string, err error) {
	var chain []string // from the leaf up to (excluding) the mount point
	for d := h.dir; d != h.mount && d != "/" && d != "."; d = filepath.Dir(d) {
		chain = append(chain, d)
	}
	slices.Reverse(chain)
	firstParent = filepath.Dir(h.dir)
	for attempt := 0; ; attempt++ {
		made = made[:0]
		retry := false
		for i, d := range chain {
			err := m.fs.mkdir(d)
			switch {
			case err == nil:
				if len(made) == 0 {
					if i == 0 {
						firstParent = h.mount
					} else {
						firstParent = chain[i-1]
					}
				}
				made = append(made, d)
			case errors.Is(err, fs.ErrExist):
			case errors.Is(err, fs.ErrNotExist) && attempt < 3:
				// A parent was removed under us (a concurrent Delete of
				// a shared parent): start again from the top.
				retry = true
			default:
				m.rollback(made)
				return nil, "", m.fileErr("mkdir", d, "", err)
			}
			if retry {
				break
			}
		}
		if !retry {
			return made, firstParent, nil
		}
	}
}

// rollback removes directories made by a failed Create, leaf first.
func (m *Manager) rollback(made []string) {
	for i := len(made) - 1; i >= 0; i-- {
		_ = m.fs.rmdir(made[i])
	}
}

func (m *Manager) create(res *specs.LinuxResources) error {
	if err := validate(res, m.mode); err != nil {
		return err
	}
	var all []string
	for i := range m.hiers {
		h := &m.hiers[i]
		made, firstParent, err := m.mkdirAll(h)
		if err != nil {
			m.rollback(all)
			return err
		}
		all = append(all, made...)
		if m.mode == Legacy && h.has("cpuset") {
			if err := m.cpusetInherit(h, made); err != nil {
				m.rollback(all)
				return err
			}
		}
		if m.mode == Unified {
			m.mu.Lock()
			m.created = append([]string(nil), made...)
			m.firstParent = firstParent
			m.mu.Unlock()
		}
	}
	if err := m.apply(res, true); err != nil {
		m.rollback(all)
		return err
	}
	return nil
}

func (m *Manager) update(res *specs.LinuxResources) error {
	if err := validate(res, m.mode); err != nil {
		return err
	}
	if !m.exists() {
		return m.notFound()
	}
	return m.apply(res, false)
}

// apply plans every write res asks for (reading current values where an
// order depends on them), then runs the plan. Everything that can be found
// wrong is found while planning, so that a refused call writes nothing.
func (m *Manager) apply(res *specs.LinuxResources, creating bool) error {
	var p plan
	var err error
	if m.mode == Legacy {
		if p, err = m.planV1(res, creating); err != nil {
			return err
		}
		return m.run(p)
	}
	if err := m.enableControllers(v2Controllers(res), creating); err != nil {
		return err
	}
	if p, err = m.planV2(res, creating); err != nil {
		return err
	}
	// Device rules on v2: the program is compiled and loaded (verified)
	// before anything is written, and attached after the files.
	progFd := -1
	if res != nil && len(res.Devices) > 0 {
		rules := make([]deviceRule, len(res.Devices))
		for i := range res.Devices {
			rules[i], _ = parseDeviceRule(&res.Devices[i]) // validated
		}
		insns, err := deviceProgram(rules)
		if err != nil {
			return err
		}
		if progFd, err = loadDeviceProgram(insns); err != nil {
			return deviceErr(m.path, "load device program", err)
		}
		defer unix.Close(progFd)
	}
	if err := m.run(p); err != nil {
		return err
	}
	if progFd >= 0 {
		return m.setDeviceProgram(m.hiers[0].dir, progFd)
	}
	return nil
}

// write is one planned write to a cgroup file.
type write struct {
	file, value string
	// soft marks a deprecated knob: a kernel that has dropped it
	// (EOPNOTSUPP, ENOTSUPP) is not an error.
	soft bool
	// retry marks a write whose EINVAL may come from the current value of
	// another file this plan changes later: it is retried after the rest.
	retry bool
}

type plan []write

// add plans writing value to file.
func (p *plan) add(file, value string) { *p = append(*p, write{file: file, value: value}) }

// addRetry plans a write that may have to wait for a later one.
func (p *plan) addRetry(file, value string) {
	*p = append(*p, write{file: file, value: value, retry: true})
}

// addSoft plans a write to a deprecated knob.
func (p *plan) addSoft(file, value string) {
	*p = append(*p, write{file: file, value: value, soft: true})
}

// run executes a plan. A write the kernel refuses with EINVAL may depend
// on a later one (cpu.cfs_quota_us against cpu.cfs_burst_us, rt runtime
// against rt period, memory against memory+swap): such writes are retried
// once after the rest.
func (m *Manager) run(p plan) error {
	var again []write
	for _, w := range p {
		err := m.fs.write(w.file, w.value)
		switch {
		case err == nil:
		case w.soft && (errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.Errno(524))): // ENOTSUPP
		case w.retry && errors.Is(err, unix.EINVAL):
			again = append(again, w)
		default:
			return m.fileErr("write", w.file, w.value, err)
		}
	}
	for _, w := range again {
		if err := m.fs.write(w.file, w.value); err != nil {
			return m.fileErr("write", w.file, w.value, err)
		}
	}
	return nil
}

func (m *Manager) add(pid int) error {
	if pid <= 0 {
		return invalidf("add process %d to cgroup %s: bad pid", pid, m.path)
	}
	if !m.exists() {
		return m.notFound()
	}
	for i := range m.hiers {
		if err := m.writeFile(m.hiers[i].dir, "cgroup.procs", strconv.Itoa(pid)); err != nil {
			return err
		}
	}
	return nil
}

// procsHier is the hierarchy Procs and Kill read.
func (m *Manager) procsHier() *hierarchy {
	for _, c := range []string{"freezer", "memory", "pids", "cpu"} {
		if h := m.hier(c); h != nil {
			return h
		}
	}
	return &m.hiers[0]
}

// walk calls fn for dir and each cgroup below it, parents first.
func walk(dir string, fn func(string) error) error {
	if err := fn(dir); err != nil {
		return err
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	for _, e := range ents {
		if e.IsDir() {
			if err := walk(filepath.Join(dir, e.Name()), fn); err != nil {
				return err
			}
		}
	}
	return nil
}

// readPids reads one cgroup.procs file.
func readPids(file string) ([]int, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", file, err)
		}
		pids = append(pids, pid)
	}
	return pids, nil
}

// procsIn lists the processes in dir and below.
func procsIn(dir string) ([]int, error) {
	var all []int
	err := walk(dir, func(d string) error {
		pids, err := readPids(filepath.Join(d, "cgroup.procs"))
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed meanwhile
			}
			return err
		}
		all = append(all, pids...)
		return nil
	})
	slices.Sort(all)
	return slices.Compact(all), err
}

func (m *Manager) procs() ([]int, error) {
	h := m.procsHier()
	if _, err := os.Stat(h.dir); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, m.notFound()
		}
		return nil, err
	}
	pids, err := procsIn(h.dir)
	if err != nil {
		return nil, fmt.Errorf("cgroup %s: list processes: %w", m.path, err)
	}
	return pids, nil
}

func (m *Manager) delete() error {
	for i := range m.hiers {
		if err := m.removeTree(m.hiers[i].dir); err != nil {
			return err
		}
	}
	m.mu.Lock()
	m.created, m.firstParent = nil, ""
	m.mu.Unlock()
	return nil
}

// removeTree removes dir and the cgroups below it, leaves first.
func (m *Manager) removeTree(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("cgroup %s: %w", m.path, err)
	}
	for _, e := range ents {
		if e.IsDir() {
			if err := m.removeTree(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	// EBUSY: tasks that were just killed may not have left yet.
	// ENOTEMPTY: a child cgroup appeared meanwhile.
	delay := time.Millisecond
	deadline := time.Now().Add(time.Second)
	for {
		err := m.fs.rmdir(dir)
		switch {
		case err == nil, errors.Is(err, fs.ErrNotExist):
			return nil
		case errors.Is(err, unix.ENOTEMPTY):
			if time.Now().After(deadline) {
				return m.fileErr("remove", dir, "", err)
			}
			return m.removeTree(dir)
		case errors.Is(err, unix.EBUSY) && time.Now().Before(deadline):
			time.Sleep(delay)
			delay = min(2*delay, 64*time.Millisecond)
		default:
			return m.fileErr("remove", dir, "", err)
		}
	}
}

// parseKV parses "key value" lines (memory.stat, cpu.stat,
// cgroup.events, memory.events).
func parseKV(s string) map[string]uint64 {
	kv := make(map[string]uint64)
	for _, line := range strings.Split(s, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok {
			continue
		}
		if n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64); err == nil {
			kv[k] = n
		}
	}
	return kv
}

// readKV reads a "key value" file.
func readKV(file string) (map[string]uint64, error) {
	s, err := readString(file)
	if err != nil {
		return nil, err
	}
	return parseKV(s), nil
}

// hugePageSizes lists the machine's huge page sizes in the cgroup file
// form ("2MB", "1GB").
func hugePageSizes() map[string]bool {
	sizes := make(map[string]bool)
	ents, _ := os.ReadDir("/sys/kernel/mm/hugepages")
	for _, e := range ents {
		kb, ok := strings.CutPrefix(e.Name(), "hugepages-")
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSuffix(kb, "kB"), 10, 64)
		if err != nil {
			continue
		}
		sizes[pageSizeName(n*1024)] = true
	}
	return sizes
}

// checkHugePages checks the page sizes of res against the machine's.
func checkHugePages(res *specs.LinuxResources) error {
	if len(res.HugepageLimits) == 0 {
		return nil
	}
	sizes := hugePageSizes()
	for _, h := range res.HugepageLimits {
		if !sizes[h.Pagesize] {
			return invalidf("hugepage size %s: this machine has %v", h.Pagesize, sortedKeys(sizes))
		}
	}
	return nil
}
