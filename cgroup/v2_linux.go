package cgroup

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// defaultControllers are enabled for a new v2 cgroup, when the parent
// offers them, even if no limit uses them: Stats reads cpu, io, memory and
// pids, and docker update may set any of them and cpuset later.
var defaultControllers = []string{"cpu", "cpuset", "io", "memory", "pids"}

// enableControllers makes sure the v2 cgroup has the controllers need
// lists (and, when creating, the default ones its parent can give),
// writing "+name" to cgroup.subtree_control of its ancestors, top-down,
// where it is missing; none is ever removed. Which ancestors:
//
//   - relative path (berth's default): the caller's own cgroup (the one
//     cgroup written that berth did not make) and every directory between
//     it and the leaf, which are berth's. This holds for any Manager,
//     whichever process created the directories, so concurrent Creates
//     below one fresh "berth" directory, and an Update needing a new
//     controller, work.
//   - absolute path: the directories this Manager's Create made and the
//     nearest ancestor that existed before; for a Manager that did not
//     create the cgroup, the leaf's parent only. Directories above are
//     someone else's.
//
// A needed controller that cannot be enabled fails with ErrNotSupported
// saying why.
func (m *Manager) enableControllers(need map[string]bool, creating bool) error {
	h := &m.hiers[0]
	var chain []string
	if !strings.HasPrefix(m.path, "/") {
		for d := filepath.Dir(h.dir); ; d = filepath.Dir(d) {
			chain = append(chain, d)
			if d == h.base || d == h.mount || d == "/" || d == "." {
				break
			}
		}
		slices.Reverse(chain)
	} else {
		m.mu.Lock()
		created, first := m.created, m.firstParent
		m.mu.Unlock()
		if first != "" {
			chain = append(chain, first)
			for _, d := range created {
				if d != h.dir {
					chain = append(chain, d)
				}
			}
		} else {
			chain = []string{filepath.Dir(h.dir)}
		}
	}
	want := make(map[string]bool)
	for c := range need {
		want[c] = true
	}
	if creating {
		for _, c := range defaultControllers {
			want[c] = true
		}
	}
	if len(want) == 0 {
		return nil
	}
	why := make(map[string]string) // controller -> why it could not be enabled
	for _, dir := range chain {
		avail := fieldSet(filepath.Join(dir, "cgroup.controllers"))
		enabled := fieldSet(filepath.Join(dir, "cgroup.subtree_control"))
		var add []string
		for _, c := range sortedKeys(want) {
			switch {
			case enabled[c]:
			case !avail[c]:
				if _, ok := why[c]; !ok {
					why[c] = fmt.Sprintf("%s does not offer it (its parent's cgroup.subtree_control lacks it)", dir)
				}
			default:
				add = append(add, "+"+c)
			}
		}
		if len(add) == 0 {
			continue
		}
		file := filepath.Join(dir, "cgroup.subtree_control")
		if err := m.fs.write(file, strings.Join(add, " ")); err == nil {
			continue
		}
		for _, a := range add { // one by one: keep those the kernel takes
			if err := m.fs.write(file, a); err != nil {
				reason := fmt.Sprintf("enabling it in %s failed: %v", file, causeOf(err))
				if errors.Is(err, unix.EBUSY) {
					reason += " (cgroup v2 enables controllers only below cgroups without processes of their own: use an absolute cgroup path, or run the caller in a delegated cgroup)"
				}
				why[a[1:]] = reason
			}
		}
	}
	leaf := fieldSet(filepath.Join(h.dir, "cgroup.controllers"))
	for _, c := range sortedKeys(need) {
		if !leaf[c] {
			r := why[c]
			if r == "" {
				r = "it is not enabled for it"
			}
			return unsupportedf("cgroup %s: the %s controller is not available: %s", m.path, c, r)
		}
	}
	return nil
}

// fieldSet reads a space-separated list file into a set.
func fieldSet(file string) map[string]bool {
	s, _ := readString(file)
	set := make(map[string]bool)
	for _, f := range strings.Fields(s) {
		set[f] = true
	}
	return set
}

// planV2 turns res into cgroup v2 writes.
func (m *Manager) planV2(res *specs.LinuxResources, creating bool) (plan, error) {
	var p plan
	if res == nil {
		return p, nil
	}
	if err := checkHugePages(res); err != nil {
		return nil, err
	}
	dir := m.hiers[0].dir
	f := func(name string) string { return filepath.Join(dir, name) }
	need := func(name, what string) error {
		if !fileExists(f(name)) {
			return unsupportedf("cgroup %s: %s: no %s", m.path, what, name)
		}
		return nil
	}
	if mem := res.Memory; mem != nil {
		if err := m.planV2Memory(&p, mem, creating, f); err != nil {
			return nil, err
		}
	}
	if cpu := res.CPU; cpu != nil {
		if i := cpu.Idle; i != nil {
			if err := need("cpu.idle", "cpu idle"); err != nil && *i == 1 {
				return nil, err
			} else if err == nil {
				p.add(f("cpu.idle"), strconv.FormatInt(*i, 10))
			}
		}
		if s := cpu.Shares; s != nil {
			p.add(f("cpu.weight"), strconv.FormatUint(sharesToWeight(*s), 10))
		}
		if cpu.Quota != nil || cpu.Period != nil {
			quota := ""
			if cpu.Quota != nil {
				quota = "max"
				if *cpu.Quota > 0 {
					quota = strconv.FormatInt(*cpu.Quota, 10)
				}
			}
			v := quota
			if cpu.Period != nil {
				if quota == "" { // keep the current quota
					cur, err := readString(f("cpu.max"))
					if err != nil {
						return nil, m.fileErr("read", f("cpu.max"), "", err)
					}
					quota, _, _ = strings.Cut(cur, " ")
				}
				v = fmt.Sprintf("%s %d", quota, *cpu.Period)
			}
			p.addRetry(f("cpu.max"), v)
		}
		if b := cpu.Burst; b != nil {
			if err := need("cpu.max.burst", "cpu burst"); err != nil {
				return nil, err
			}
			p.addRetry(f("cpu.max.burst"), strconv.FormatUint(*b, 10))
		}
		if cpu.Mems != "" {
			p.addRetry(f("cpuset.mems"), cpu.Mems)
		}
		if cpu.Cpus != "" {
			p.addRetry(f("cpuset.cpus"), cpu.Cpus)
		}
	}
	if res.Pids != nil && res.Pids.Limit != nil {
		p.add(f("pids.max"), pidsMax(*res.Pids.Limit))
	}
	if b := res.BlockIO; b != nil {
		planV2IO(&p, b, f)
	}
	for _, h := range res.HugepageLimits {
		file := f("hugetlb." + h.Pagesize + ".max")
		if !fileExists(file) {
			return nil, invalidf("hugepage size %s: the hugetlb controller has no %s", h.Pagesize, filepath.Base(file))
		}
		v := strconv.FormatUint(h.Limit, 10)
		p.add(file, v)
		if r := f("hugetlb." + h.Pagesize + ".rsvd.max"); fileExists(r) {
			p.add(r, v)
		}
	}
	for _, dev := range sortedKeys(res.Rdma) {
		p.add(f("rdma.max"), rdmaLine(dev, res.Rdma[dev]))
	}
	// res.Network: v2 has no net_cls or net_prio controller; skipped as on
	// a v1 machine without them.
	// res.Devices: an eBPF program, loaded and attached by apply.
	for _, k := range sortedKeys(res.Unified) {
		if !fileExists(f(k)) {
			return nil, unsupportedf("cgroup %s: unified resource %s: no such file (controller not enabled?)", m.path, k)
		}
		p.add(f(k), res.Unified[k])
	}
	// Every file written must exist: a missing one means its controller
	// is not enabled here (checked before anything is written).
	for _, w := range p {
		if !fileExists(w.file) {
			return nil, unsupportedf("cgroup %s: no %s (its controller is not enabled)", m.path, filepath.Base(w.file))
		}
	}
	return p, nil
}

func (m *Manager) planV2Memory(p *plan, mem *specs.LinuxMemory, creating bool, f func(string) string) error {
	if !creating && mem.CheckBeforeUpdate != nil && *mem.CheckBeforeUpdate && mem.Limit != nil && *mem.Limit > 0 {
		usage, _, err := readUint(f("memory.current"))
		if err != nil {
			return m.fileErr("read", f("memory.current"), "", err)
		}
		if uint64(*mem.Limit) < usage {
			return errConflictf("cgroup %s: memory limit %d is below the current usage %d", m.path, *mem.Limit, usage)
		}
	}
	limit, swap := mem.Limit, mem.Swap
	if limit != nil {
		p.add(f("memory.max"), maxOr(*limit))
	}
	hasSwap := fileExists(f("memory.swap.max"))
	switch {
	case !hasSwap:
		// No swap accounting: memory is limited without swap, as docker does.
	case swap != nil && *swap == -1, swap == nil && limit != nil && *limit == -1:
		p.add(f("memory.swap.max"), "max")
	case swap != nil:
		// OCI (and docker) give memory+swap; v2 limits swap alone.
		var mlimit int64
		if limit != nil {
			mlimit = *limit
		} else {
			cur, unlimited, err := readUint(f("memory.max"))
			if err != nil {
				return m.fileErr("read", f("memory.max"), "", err)
			}
			if unlimited {
				return invalidf("memory+swap limit %d without a memory limit", *swap)
			}
			mlimit = int64(cur)
		}
		if *swap < mlimit {
			return invalidf("memory+swap limit %d is below the memory limit %d", *swap, mlimit)
		}
		p.add(f("memory.swap.max"), strconv.FormatInt(*swap-mlimit, 10))
	}
	if r := mem.Reservation; r != nil {
		p.add(f("memory.low"), maxOr(*r))
	}
	// kernel, kernelTCP, swappiness and disableOOMKiller have no v2
	// counterpart and are ignored, as runc and crun do.
	return nil
}

// maxOr is "max" for -1, else the number.
func maxOr(v int64) string {
	if v < 0 {
		return "max"
	}
	return strconv.FormatInt(v, 10)
}

func planV2IO(p *plan, b *specs.LinuxBlockIO, f func(string) string) {
	bfq := fileExists(f("io.bfq.weight"))
	if w := b.Weight; w != nil {
		if bfq {
			p.add(f("io.bfq.weight"), strconv.FormatUint(uint64(*w), 10))
		} else {
			p.add(f("io.weight"), "default "+strconv.FormatUint(blkioToIOWeight(*w), 10))
		}
	}
	for _, wd := range b.WeightDevice {
		if wd.Weight == nil {
			continue // leaf weights are CFQ's alone
		}
		if bfq {
			p.add(f("io.bfq.weight"), fmt.Sprintf("%d:%d %d", wd.Major, wd.Minor, *wd.Weight))
		} else {
			p.add(f("io.weight"), fmt.Sprintf("%d:%d %d", wd.Major, wd.Minor, blkioToIOWeight(*wd.Weight)))
		}
	}
	type key struct{ major, minor int64 }
	limits := make(map[key][]string)
	var order []key
	for _, t := range []struct {
		name string
		devs []specs.LinuxThrottleDevice
	}{
		{"rbps", b.ThrottleReadBpsDevice}, {"wbps", b.ThrottleWriteBpsDevice},
		{"riops", b.ThrottleReadIOPSDevice}, {"wiops", b.ThrottleWriteIOPSDevice},
	} {
		for _, d := range t.devs {
			k := key{d.Major, d.Minor}
			if _, ok := limits[k]; !ok {
				order = append(order, k)
			}
			v := "max"
			if d.Rate > 0 {
				v = strconv.FormatUint(d.Rate, 10)
			}
			limits[k] = append(limits[k], t.name+"="+v)
		}
	}
	for _, k := range order {
		p.add(f("io.max"), fmt.Sprintf("%d:%d %s", k.major, k.minor, strings.Join(limits[k], " ")))
	}
}

// events reads cgroup.events.
func (m *Manager) events() (map[string]uint64, error) {
	file := filepath.Join(m.hiers[0].dir, "cgroup.events")
	kv, err := readKV(file)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) && !m.exists() {
			return nil, m.notFound()
		}
		return nil, m.fileErr("read", file, "", err)
	}
	return kv, nil
}

// waitEvent polls cgroup.events until key has value want or ctx ends.
func (m *Manager) waitEvent(ctx context.Context, key string, want uint64) error {
	delay := 100 * time.Microsecond
	for {
		kv, err := m.events()
		if err != nil {
			return err
		}
		if kv[key] == want {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cgroup %s: waiting for %s %d: %w", m.path, key, want, ctx.Err())
		case <-time.After(delay):
		}
		delay = min(2*delay, 10*time.Millisecond)
	}
}

func (m *Manager) freezeV2(ctx context.Context) error {
	dir := m.hiers[0].dir
	if !fileExists(filepath.Join(dir, "cgroup.freeze")) {
		if !m.exists() {
			return m.notFound()
		}
		return unsupportedf("cgroup %s: no cgroup.freeze (Linux < 5.2)", m.path)
	}
	if err := m.writeFile(dir, "cgroup.freeze", "1"); err != nil {
		return err
	}
	if err := m.waitEvent(ctx, "frozen", 1); err != nil {
		_ = m.fs.write(filepath.Join(dir, "cgroup.freeze"), "0")
		return err
	}
	return nil
}

func (m *Manager) thawV2(ctx context.Context) error {
	dir := m.hiers[0].dir
	if !fileExists(filepath.Join(dir, "cgroup.freeze")) {
		if !m.exists() {
			return m.notFound()
		}
		return nil // no freezer: nothing is frozen
	}
	if err := m.writeFile(dir, "cgroup.freeze", "0"); err != nil {
		return err
	}
	return m.waitEvent(ctx, "frozen", 0)
}

func (m *Manager) frozenV2() (bool, error) {
	dir := m.hiers[0].dir
	s, err := readString(filepath.Join(dir, "cgroup.freeze"))
	if err != nil {
		if !m.exists() {
			return false, m.notFound()
		}
		return false, nil // no freezer: never frozen
	}
	if s != "1" {
		return false, nil
	}
	kv, err := m.events()
	if err != nil {
		return false, err
	}
	return kv["frozen"] == 1, nil
}

func (m *Manager) statsV2() (*Stats, error) {
	dir := m.hiers[0].dir
	f := func(n string) string { return filepath.Join(dir, n) }
	if !fileExists(dir) {
		return nil, m.notFound()
	}
	st := &Stats{}
	st.Memory.Usage, _, _ = readUint(f("memory.current"))
	st.Memory.MaxUsage, _, _ = readUint(f("memory.peak"))
	st.Memory.Limit, _, _ = readUint(f("memory.max"))
	st.Memory.Swap, _, _ = readUint(f("memory.swap.current"))
	if sw, unl, err := readUint(f("memory.swap.max")); err == nil && !unl && st.Memory.Limit > 0 {
		st.Memory.SwapLimit = st.Memory.Limit + sw
	}
	if kv, err := readKV(f("memory.events")); err == nil {
		st.Memory.Failcnt = kv["max"]
	}
	if kv, err := readKV(f("memory.stat")); err == nil {
		st.Memory.Stat = kv
		st.Memory.Cache = kv["file"]
		st.Memory.RSS = kv["anon"]
		st.Memory.InactiveFile = kv["inactive_file"]
	}
	if kv, err := readKV(f("cpu.stat")); err == nil {
		st.CPU.UsageNanos = kv["usage_usec"] * 1000
		st.CPU.UserNanos = kv["user_usec"] * 1000
		st.CPU.SystemNanos = kv["system_usec"] * 1000
		st.CPU.Periods = kv["nr_periods"]
		st.CPU.ThrottledPeriods = kv["nr_throttled"]
		st.CPU.ThrottledNanos = kv["throttled_usec"] * 1000
	}
	st.Pids.Current, _, _ = readUint(f("pids.current"))
	st.Pids.Limit, _, _ = readUint(f("pids.max"))
	if s, err := readString(f("io.stat")); err == nil {
		st.BlkIO = parseIOStat(s)
	}
	return st, nil
}

// parseIOStat parses io.stat: "8:0 rbytes=1 wbytes=2 rios=3 wios=4 ...".
func parseIOStat(s string) BlkIOStats {
	var b BlkIOStats
	for _, line := range strings.Split(s, "\n") {
		fs := strings.Fields(line)
		if len(fs) < 2 {
			continue
		}
		maj, min, ok := strings.Cut(fs[0], ":")
		if !ok {
			continue
		}
		var d BlkIODeviceStats
		d.Major, _ = strconv.ParseInt(maj, 10, 64)
		d.Minor, _ = strconv.ParseInt(min, 10, 64)
		for _, kv := range fs[1:] {
			k, v, _ := strings.Cut(kv, "=")
			n, _ := strconv.ParseUint(v, 10, 64)
			switch k {
			case "rbytes":
				d.ReadBytes = n
			case "wbytes":
				d.WriteBytes = n
			case "rios":
				d.ReadOps = n
			case "wios":
				d.WriteOps = n
			}
		}
		b.Devices = append(b.Devices, d)
		b.ReadBytes += d.ReadBytes
		b.WriteBytes += d.WriteBytes
		b.ReadOps += d.ReadOps
		b.WriteOps += d.WriteOps
	}
	slices.SortFunc(b.Devices, func(x, y BlkIODeviceStats) int {
		if x.Major != y.Major {
			return int(x.Major - y.Major)
		}
		return int(x.Minor - y.Minor)
	})
	return b
}

func (m *Manager) oomKillCountV2() (uint64, error) {
	file := filepath.Join(m.hiers[0].dir, "memory.events")
	kv, err := readKV(file)
	if err != nil {
		if !m.exists() {
			return 0, m.notFound()
		}
		if errors.Is(err, fs.ErrNotExist) {
			return 0, unsupportedf("cgroup %s: the memory controller is not enabled", m.path)
		}
		return 0, m.fileErr("read", file, "", err)
	}
	return kv["oom_kill"], nil
}
