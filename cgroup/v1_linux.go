package cgroup

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// cpusetInherit gives every cpuset directory Create made the cpus and mems
// of its parent when they are empty: a v1 cpuset cgroup starts with none,
// and no task may join it until both are set.
func (m *Manager) cpusetInherit(h *hierarchy, made []string) error {
	for _, d := range made {
		parent := filepath.Dir(d)
		for _, name := range []string{h.cpusetFile("cpus"), h.cpusetFile("mems")} {
			cur, err := readString(filepath.Join(d, name))
			if err != nil {
				return m.fileErr("read", filepath.Join(d, name), "", err)
			}
			if cur != "" {
				continue
			}
			pv, err := readString(filepath.Join(parent, name))
			if err != nil {
				return m.fileErr("read", filepath.Join(parent, name), "", err)
			}
			if pv == "" {
				return unsupportedf("cgroup %s: %s of %s is empty, so its children cannot have any", m.path, name, parent)
			}
			if err := m.writeFile(d, name, pv); err != nil {
				return err
			}
		}
	}
	return nil
}

// dirOf is the cgroup directory for controller c, or ErrNotSupported
// naming what needed it.
func (m *Manager) dirOf(c, what string) (string, error) {
	h := m.hier(c)
	if h == nil {
		return "", unsupportedf("%s: the %s cgroup controller is not mounted", what, c)
	}
	return h.dir, nil
}

// planV1 turns res into cgroup v1 writes.
func (m *Manager) planV1(res *specs.LinuxResources, creating bool) (plan, error) {
	var p plan
	if res == nil {
		return p, nil
	}
	if err := checkHugePages(res); err != nil {
		return nil, err
	}
	if err := m.planV1Memory(&p, res.Memory, creating); err != nil {
		return nil, err
	}
	if err := m.planV1CPU(&p, res.CPU); err != nil {
		return nil, err
	}
	if res.Pids != nil && res.Pids.Limit != nil {
		dir, err := m.dirOf("pids", "pids limit")
		if err != nil {
			return nil, err
		}
		p.add(filepath.Join(dir, "pids.max"), pidsMax(*res.Pids.Limit))
	}
	if err := m.planV1BlockIO(&p, res.BlockIO); err != nil {
		return nil, err
	}
	if len(res.HugepageLimits) > 0 {
		dir, err := m.dirOf("hugetlb", "hugepage limits")
		if err != nil {
			return nil, err
		}
		for _, h := range res.HugepageLimits {
			v := strconv.FormatUint(h.Limit, 10)
			f := filepath.Join(dir, "hugetlb."+h.Pagesize+".limit_in_bytes")
			if !fileExists(f) {
				return nil, invalidf("hugepage size %s: the hugetlb controller has no %s", h.Pagesize, filepath.Base(f))
			}
			p.add(f, v)
			if r := filepath.Join(dir, "hugetlb."+h.Pagesize+".rsvd.limit_in_bytes"); fileExists(r) {
				p.add(r, v)
			}
		}
	}
	if n := res.Network; n != nil {
		// net_cls and net_prio are often not mounted (and do not exist on
		// v2): the class ID and priorities tag traffic rather than limit
		// anything, so they are skipped when the controller is absent.
		if h := m.hier("net_cls"); h != nil && n.ClassID != nil {
			p.add(filepath.Join(h.dir, "net_cls.classid"), strconv.FormatUint(uint64(*n.ClassID), 10))
		}
		if h := m.hier("net_prio"); h != nil {
			for _, pr := range n.Priorities {
				p.add(filepath.Join(h.dir, "net_prio.ifpriomap"), fmt.Sprintf("%s %d", pr.Name, pr.Priority))
			}
		}
	}
	if len(res.Rdma) > 0 {
		dir, err := m.dirOf("rdma", "rdma limits")
		if err != nil {
			return nil, err
		}
		for _, dev := range sortedKeys(res.Rdma) {
			p.add(filepath.Join(dir, "rdma.max"), rdmaLine(dev, res.Rdma[dev]))
		}
	}
	if len(res.Devices) > 0 {
		dir, err := m.dirOf("devices", "device rules")
		if err != nil {
			return nil, err
		}
		for i := range res.Devices {
			r, _ := parseDeviceRule(&res.Devices[i]) // validated
			file := filepath.Join(dir, "devices.deny")
			if r.allow {
				file = filepath.Join(dir, "devices.allow")
			}
			for _, line := range v1DeviceLines(r) {
				p.add(file, line)
			}
		}
	}
	return p, nil
}

func pidsMax(limit int64) string {
	if limit <= 0 {
		return "max"
	}
	return strconv.FormatInt(limit, 10)
}

func rdmaLine(dev string, r specs.LinuxRdma) string {
	v := func(p *uint32) string {
		if p == nil {
			return "max"
		}
		return strconv.FormatUint(uint64(*p), 10)
	}
	return fmt.Sprintf("%s hca_handle=%s hca_object=%s", dev, v(r.HcaHandles), v(r.HcaObjects))
}

func (m *Manager) planV1Memory(p *plan, mem *specs.LinuxMemory, creating bool) error {
	if mem == nil {
		return nil
	}
	dir, err := m.dirOf("memory", "memory limits")
	if err != nil {
		return err
	}
	f := func(name string) string { return filepath.Join(dir, name) }

	if uh := mem.UseHierarchy; uh != nil {
		want := "0"
		if *uh {
			want = "1"
		}
		cur, err := readString(f("memory.use_hierarchy"))
		if err != nil {
			return m.fileErr("read", f("memory.use_hierarchy"), "", err)
		}
		if cur != want {
			if parent, _ := readString(filepath.Join(filepath.Dir(dir), "memory.use_hierarchy")); !*uh && parent == "1" {
				return unsupportedf("memory.useHierarchy=false: the parent cgroup is hierarchical, and so is every child")
			}
			// Must precede the limits: it can change only while the
			// cgroup has no children.
			p.add(f("memory.use_hierarchy"), want)
		}
	}

	if !creating && mem.CheckBeforeUpdate != nil && *mem.CheckBeforeUpdate && mem.Limit != nil && *mem.Limit > 0 {
		usage, _, err := readUint(f("memory.usage_in_bytes"))
		if err != nil {
			return m.fileErr("read", f("memory.usage_in_bytes"), "", err)
		}
		if uint64(*mem.Limit) < usage {
			return errConflictf("cgroup %s: memory limit %d is below the current usage %d", m.path, *mem.Limit, usage)
		}
	}

	limit, swap := mem.Limit, mem.Swap
	hasMemsw := fileExists(f("memory.memsw.limit_in_bytes"))
	if !hasMemsw {
		// No swap accounting in this kernel: like docker, limit memory
		// without swap rather than fail.
		swap = nil
	}
	if limit != nil && *limit == -1 && swap == nil && hasMemsw {
		// Lifting the memory limit lifts memory+swap too: the kernel
		// refuses a memory limit above memory+swap.
		swap = ptr(int64(-1))
	}
	switch {
	case limit != nil && swap != nil:
		cur, curUnlimited, err := readUint(f("memory.limit_in_bytes"))
		if err != nil {
			return m.fileErr("read", f("memory.limit_in_bytes"), "", err)
		}
		// memory <= memory+swap must hold after each write: raise
		// memory+swap first, lower it last.
		if !curUnlimited && (*swap == -1 || cur <= uint64(*swap)) {
			p.addRetry(f("memory.memsw.limit_in_bytes"), strconv.FormatInt(*swap, 10))
			p.addRetry(f("memory.limit_in_bytes"), strconv.FormatInt(*limit, 10))
		} else {
			p.addRetry(f("memory.limit_in_bytes"), strconv.FormatInt(*limit, 10))
			p.addRetry(f("memory.memsw.limit_in_bytes"), strconv.FormatInt(*swap, 10))
		}
	case limit != nil:
		p.add(f("memory.limit_in_bytes"), strconv.FormatInt(*limit, 10))
	case swap != nil:
		p.add(f("memory.memsw.limit_in_bytes"), strconv.FormatInt(*swap, 10))
	}
	if r := mem.Reservation; r != nil {
		p.add(f("memory.soft_limit_in_bytes"), strconv.FormatInt(*r, 10))
	}
	if k := mem.Kernel; k != nil && fileExists(f("memory.kmem.limit_in_bytes")) { //nolint:staticcheck // deprecated, honoured where it exists
		p.addSoft(f("memory.kmem.limit_in_bytes"), strconv.FormatInt(*k, 10))
	}
	if k := mem.KernelTCP; k != nil && fileExists(f("memory.kmem.tcp.limit_in_bytes")) {
		p.addSoft(f("memory.kmem.tcp.limit_in_bytes"), strconv.FormatInt(*k, 10))
	}
	if s := mem.Swappiness; s != nil && *s != swappinessUnset {
		p.add(f("memory.swappiness"), strconv.FormatUint(*s, 10))
	}
	if d := mem.DisableOOMKiller; d != nil {
		p.add(f("memory.oom_control"), boolDigit(*d))
	}
	return nil
}

func (m *Manager) planV1CPU(p *plan, cpu *specs.LinuxCPU) error {
	if cpu == nil {
		return nil
	}
	if cpu.Shares != nil || cpu.Quota != nil || cpu.Period != nil || cpu.Burst != nil ||
		cpu.RealtimeRuntime != nil || cpu.RealtimePeriod != nil || cpu.Idle != nil {
		dir, err := m.dirOf("cpu", "cpu limits")
		if err != nil {
			return err
		}
		f := func(name string) string { return filepath.Join(dir, name) }
		need := func(name, what string) error {
			if !fileExists(f(name)) {
				return unsupportedf("%s: this kernel has no %s", what, name)
			}
			return nil
		}
		if i := cpu.Idle; i != nil {
			if err := need("cpu.idle", "cpu idle"); err != nil && *i == 1 {
				return err
			} else if err == nil {
				p.add(f("cpu.idle"), strconv.FormatInt(*i, 10))
			}
		}
		if s := cpu.Shares; s != nil {
			p.add(f("cpu.shares"), strconv.FormatUint(clampShares(*s), 10))
		}
		if v := cpu.Period; v != nil {
			p.addRetry(f("cpu.cfs_period_us"), strconv.FormatUint(*v, 10))
		}
		if v := cpu.Quota; v != nil {
			p.addRetry(f("cpu.cfs_quota_us"), strconv.FormatInt(*v, 10))
		}
		if v := cpu.Burst; v != nil {
			if err := need("cpu.cfs_burst_us", "cpu burst"); err != nil {
				return err
			}
			p.addRetry(f("cpu.cfs_burst_us"), strconv.FormatUint(*v, 10))
		}
		if v := cpu.RealtimePeriod; v != nil {
			if err := need("cpu.rt_period_us", "cpu realtime period (CONFIG_RT_GROUP_SCHED)"); err != nil {
				return err
			}
			p.addRetry(f("cpu.rt_period_us"), strconv.FormatUint(*v, 10))
		}
		if v := cpu.RealtimeRuntime; v != nil {
			if err := need("cpu.rt_runtime_us", "cpu realtime runtime (CONFIG_RT_GROUP_SCHED)"); err != nil {
				return err
			}
			p.addRetry(f("cpu.rt_runtime_us"), strconv.FormatInt(*v, 10))
		}
	}
	if cpu.Cpus != "" || cpu.Mems != "" {
		h := m.hier("cpuset")
		if h == nil {
			return unsupportedf("cpuset cpus and mems: the cpuset cgroup controller is not mounted")
		}
		if cpu.Mems != "" {
			p.addRetry(filepath.Join(h.dir, h.cpusetFile("mems")), cpu.Mems)
		}
		if cpu.Cpus != "" {
			p.addRetry(filepath.Join(h.dir, h.cpusetFile("cpus")), cpu.Cpus)
		}
	}
	return nil
}

func (m *Manager) planV1BlockIO(p *plan, b *specs.LinuxBlockIO) error {
	if b == nil {
		return nil
	}
	dir, err := m.dirOf("blkio", "block I/O limits")
	if err != nil {
		return err
	}
	f := func(name string) string { return filepath.Join(dir, name) }
	// CFQ's blkio.weight went with CFQ (Linux 5.0); BFQ has its own files.
	weight, weightDev := "blkio.weight", "blkio.weight_device"
	if !fileExists(f(weight)) {
		weight, weightDev = "blkio.bfq.weight", "blkio.bfq.weight_device"
	}
	needWeight := func() error {
		if !fileExists(f(weight)) {
			return unsupportedf("blkio weight: this kernel has neither blkio.weight nor blkio.bfq.weight")
		}
		return nil
	}
	if w := b.Weight; w != nil {
		if err := needWeight(); err != nil {
			return err
		}
		p.add(f(weight), strconv.FormatUint(uint64(*w), 10))
	}
	// Leaf weights are CFQ's alone; without CFQ they are ignored, as the
	// runtime spec's "CFQ scheduler only" allows.
	if w := b.LeafWeight; w != nil && fileExists(f("blkio.leaf_weight")) {
		p.add(f("blkio.leaf_weight"), strconv.FormatUint(uint64(*w), 10))
	}
	for _, wd := range b.WeightDevice {
		if wd.Weight != nil {
			if err := needWeight(); err != nil {
				return err
			}
			p.add(f(weightDev), fmt.Sprintf("%d:%d %d", wd.Major, wd.Minor, *wd.Weight))
		}
		if wd.LeafWeight != nil && fileExists(f("blkio.leaf_weight_device")) {
			p.add(f("blkio.leaf_weight_device"), fmt.Sprintf("%d:%d %d", wd.Major, wd.Minor, *wd.LeafWeight))
		}
	}
	for _, t := range []struct {
		file string
		devs []specs.LinuxThrottleDevice
	}{
		{"blkio.throttle.read_bps_device", b.ThrottleReadBpsDevice},
		{"blkio.throttle.write_bps_device", b.ThrottleWriteBpsDevice},
		{"blkio.throttle.read_iops_device", b.ThrottleReadIOPSDevice},
		{"blkio.throttle.write_iops_device", b.ThrottleWriteIOPSDevice},
	} {
		for _, d := range t.devs {
			p.add(f(t.file), fmt.Sprintf("%d:%d %d", d.Major, d.Minor, d.Rate))
		}
	}
	return nil
}

func boolDigit(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// freezerDir is the v1 freezer directory, or ErrNotSupported.
func (m *Manager) freezerDir() (string, error) {
	h := m.hier("freezer")
	if h == nil {
		return "", unsupportedf("cgroup %s: the freezer controller is not mounted", m.path)
	}
	return h.dir, nil
}

// freezeV1 freezes through freezer.state. A cgroup whose processes keep
// forking (or get new members) may stay FREEZING; as runc found, writing
// FROZEN again, and now and then thawing for a moment, gets it through.
func (m *Manager) freezeV1(ctx context.Context) error {
	dir, err := m.freezerDir()
	if err != nil {
		return err
	}
	state := filepath.Join(dir, "freezer.state")
	for i := 0; ; i++ {
		if i%50 == 49 {
			_ = m.fs.write(state, "THAWED")
			time.Sleep(10 * time.Millisecond)
		}
		if err := m.fs.write(state, "FROZEN"); err != nil {
			_ = m.fs.write(state, "THAWED")
			if errors.Is(err, fs.ErrNotExist) && !m.exists() {
				return m.notFound()
			}
			return m.fileErr("write", state, "FROZEN", err)
		}
		s, err := readString(state)
		if err != nil {
			_ = m.fs.write(state, "THAWED")
			return m.fileErr("read", state, "", err)
		}
		switch s {
		case "FROZEN":
			return nil
		case "FREEZING":
		default:
			_ = m.fs.write(state, "THAWED")
			return fmt.Errorf("cgroup %s: unexpected freezer state %q", m.path, s)
		}
		if err := ctx.Err(); err != nil {
			_ = m.fs.write(state, "THAWED")
			return fmt.Errorf("cgroup %s: freeze: %w", m.path, err)
		}
		if i > 10 {
			time.Sleep(time.Millisecond)
		}
	}
}

func (m *Manager) thawV1() error {
	dir, err := m.freezerDir()
	if err != nil {
		return err
	}
	if err := m.writeFile(dir, "freezer.state", "THAWED"); err != nil {
		if !m.exists() {
			return m.notFound()
		}
		return err
	}
	return nil
}

func (m *Manager) frozenV1() (bool, error) {
	dir, err := m.freezerDir()
	if err != nil {
		return false, err
	}
	s, err := readString(filepath.Join(dir, "freezer.state"))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return false, m.notFound()
		}
		return false, m.fileErr("read", filepath.Join(dir, "freezer.state"), "", err)
	}
	if s != "FROZEN" {
		return false, nil
	}
	// FROZEN may be inherited from a frozen ancestor.
	self, err := readString(filepath.Join(dir, "freezer.self_freezing"))
	if err != nil {
		return true, nil // kernels before 3.13 lack the file
	}
	return self == "1", nil
}

func (m *Manager) statsV1() (*Stats, error) {
	st := &Stats{}
	if h := m.hier("memory"); h != nil {
		f := func(n string) string { return filepath.Join(h.dir, n) }
		if !fileExists(h.dir) {
			return nil, m.notFound()
		}
		st.Memory.Usage, _, _ = readUint(f("memory.usage_in_bytes"))
		st.Memory.MaxUsage, _, _ = readUint(f("memory.max_usage_in_bytes"))
		st.Memory.Limit, _, _ = readUint(f("memory.limit_in_bytes"))
		// A charge fails on memory+swap or on memory, never both.
		fm, _, _ := readUint(f("memory.failcnt"))
		fsw, _, _ := readUint(f("memory.memsw.failcnt"))
		st.Memory.Failcnt = fm + fsw
		if memsw, _, err := readUint(f("memory.memsw.usage_in_bytes")); err == nil && memsw > st.Memory.Usage {
			st.Memory.Swap = memsw - st.Memory.Usage
		}
		st.Memory.SwapLimit, _, _ = readUint(f("memory.memsw.limit_in_bytes"))
		if kv, err := readKV(f("memory.stat")); err == nil {
			st.Memory.Stat = kv
			st.Memory.Cache = kv["total_cache"]
			st.Memory.RSS = kv["total_rss"]
			st.Memory.InactiveFile = kv["total_inactive_file"]
		}
	}
	if h := m.hier("cpuacct"); h != nil {
		f := func(n string) string { return filepath.Join(h.dir, n) }
		st.CPU.UsageNanos, _, _ = readUint(f("cpuacct.usage"))
		user, uerr := readString(f("cpuacct.usage_user"))
		sys, serr := readString(f("cpuacct.usage_sys"))
		if uerr == nil && serr == nil {
			st.CPU.UserNanos, _ = strconv.ParseUint(user, 10, 64)
			st.CPU.SystemNanos, _ = strconv.ParseUint(sys, 10, 64)
		} else if kv, err := readKV(f("cpuacct.stat")); err == nil {
			// USER_HZ ticks; USER_HZ is 100 on every Linux ABI.
			st.CPU.UserNanos = kv["user"] * 10_000_000
			st.CPU.SystemNanos = kv["system"] * 10_000_000
		}
		if s, err := readString(f("cpuacct.usage_percpu")); err == nil {
			for _, x := range strings.Fields(s) {
				n, _ := strconv.ParseUint(x, 10, 64)
				st.CPU.PerCPUNanos = append(st.CPU.PerCPUNanos, n)
			}
		}
	}
	if h := m.hier("cpu"); h != nil {
		if kv, err := readKV(filepath.Join(h.dir, "cpu.stat")); err == nil {
			st.CPU.Periods = kv["nr_periods"]
			st.CPU.ThrottledPeriods = kv["nr_throttled"]
			st.CPU.ThrottledNanos = kv["throttled_time"]
		}
	}
	if h := m.hier("pids"); h != nil {
		st.Pids.Current, _, _ = readUint(filepath.Join(h.dir, "pids.current"))
		st.Pids.Limit, _, _ = readUint(filepath.Join(h.dir, "pids.max"))
	}
	if h := m.hier("blkio"); h != nil {
		st.BlkIO = blkioV1(h.dir)
	}
	return st, nil
}

// blkioV1 sums blkio.throttle.io_service_bytes_recursive and
// io_serviced_recursive ("8:0 Read 1282048" lines), which count all I/O
// whatever the scheduler.
func blkioV1(dir string) BlkIOStats {
	var b BlkIOStats
	idx := make(map[[2]int64]int)
	dev := func(majmin string) *BlkIODeviceStats {
		maj, min, ok := strings.Cut(majmin, ":")
		if !ok {
			return nil
		}
		ma, err1 := strconv.ParseInt(maj, 10, 64)
		mi, err2 := strconv.ParseInt(min, 10, 64)
		if err1 != nil || err2 != nil {
			return nil
		}
		k := [2]int64{ma, mi}
		i, ok := idx[k]
		if !ok {
			i = len(b.Devices)
			idx[k] = i
			b.Devices = append(b.Devices, BlkIODeviceStats{Major: ma, Minor: mi})
		}
		return &b.Devices[i]
	}
	for _, file := range []string{"blkio.throttle.io_service_bytes_recursive", "blkio.throttle.io_serviced_recursive"} {
		s, err := readString(filepath.Join(dir, file))
		if err != nil {
			continue
		}
		bytes := strings.Contains(file, "bytes")
		for _, line := range strings.Split(s, "\n") {
			fs := strings.Fields(line)
			if len(fs) != 3 {
				continue
			}
			n, err := strconv.ParseUint(fs[2], 10, 64)
			if err != nil {
				continue
			}
			d := dev(fs[0])
			if d == nil {
				continue
			}
			switch {
			case fs[1] == "Read" && bytes:
				d.ReadBytes += n
			case fs[1] == "Write" && bytes:
				d.WriteBytes += n
			case fs[1] == "Read":
				d.ReadOps += n
			case fs[1] == "Write":
				d.WriteOps += n
			}
		}
	}
	for _, d := range b.Devices {
		b.ReadBytes += d.ReadBytes
		b.WriteBytes += d.WriteBytes
		b.ReadOps += d.ReadOps
		b.WriteOps += d.WriteOps
	}
	return b
}

func (m *Manager) oomKillCountV1() (uint64, error) {
	dir, err := m.dirOf("memory", "oom kill count")
	if err != nil {
		return 0, err
	}
	kv, err := readKV(filepath.Join(dir, "memory.oom_control"))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return 0, m.notFound()
		}
		return 0, m.fileErr("read", filepath.Join(dir, "memory.oom_control"), "", err)
	}
	n, ok := kv["oom_kill"]
	if !ok {
		return 0, unsupportedf("cgroup %s: memory.oom_control has no oom_kill count (Linux < 4.13)", m.path)
	}
	return n, nil
}
