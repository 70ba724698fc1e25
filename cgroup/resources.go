package cgroup

import (
	"fmt"
	"math"
	"regexp"
	"sort"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-run/berth/internal/errdefs"
)

// This file checks specs.LinuxResources before anything is written and
// holds the conversions both versions share; the package doc says what
// each field means.

// maxShares and minShares bound cpu.shares as the kernel does.
const (
	minShares = 2
	maxShares = 262144
)

// swappinessUnset is docker's -1 stored in the OCI uint64.
const swappinessUnset = math.MaxUint64

var cpuListRE = regexp.MustCompile(`^[0-9]+(-[0-9]+(:[0-9]+/[0-9]+)?)?(,[0-9]+(-[0-9]+(:[0-9]+/[0-9]+)?)?)*$`)

var pageSizeRE = regexp.MustCompile(`^[1-9][0-9]*(KB|MB|GB|TB)$`)

// CPUQuota converts docker's --cpus (a number of CPUs, 0.5 for half of
// one) into a CFS quota and period in microseconds: period
// DefaultCPUPeriod and quota = cpus*period, as docker does. cpus must be
// positive and give a quota of at least 1ms (ErrInvalid).
func CPUQuota(cpus float64) (quota int64, period uint64, err error) {
	if math.IsNaN(cpus) || math.IsInf(cpus, 0) || cpus <= 0 {
		return 0, 0, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("cpus %v: must be a positive number", cpus))
	}
	q := math.Round(cpus * float64(DefaultCPUPeriod))
	if q < 1000 || q > math.MaxInt64/2 {
		return 0, 0, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("cpus %v: out of range", cpus))
	}
	return int64(q), DefaultCPUPeriod, nil
}

// sharesToWeight maps v1 cpu.shares to v2 cpu.weight (the conversion runc,
// crun and systemd share): 2 -> 1, 1024 -> 39, 262144 -> 10000.
func sharesToWeight(shares uint64) uint64 {
	shares = clampShares(shares)
	return 1 + ((shares-minShares)*9999)/(maxShares-minShares)
}

func clampShares(s uint64) uint64 {
	return min(max(s, minShares), maxShares)
}

// blkioToIOWeight maps a v1 blkio weight (10..1000) to v2 io.weight
// (1..10000).
func blkioToIOWeight(w uint16) uint64 {
	return 1 + (uint64(w)-10)*9999/990
}

func invalidf(format string, args ...any) error {
	return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf(format, args...))
}

func unsupportedf(format string, args ...any) error {
	return errdefs.New(errdefs.ErrNotSupported, fmt.Sprintf(format, args...))
}

// validate checks res for mode before anything is written.
func validate(res *specs.LinuxResources, mode Mode) error {
	if res == nil {
		return nil
	}
	if mem := res.Memory; mem != nil {
		if err := validateMemory(mem, mode); err != nil {
			return err
		}
	}
	if cpu := res.CPU; cpu != nil {
		if err := validateCPU(cpu, mode); err != nil {
			return err
		}
	}
	if p := res.Pids; p != nil && p.Limit != nil && *p.Limit < -1 {
		return invalidf("pids limit %d: must be positive, or 0 or -1 for unlimited", *p.Limit)
	}
	if b := res.BlockIO; b != nil {
		if err := validateBlockIO(b); err != nil {
			return err
		}
	}
	for _, h := range res.HugepageLimits {
		if !pageSizeRE.MatchString(h.Pagesize) {
			return invalidf("hugepage size %q: want a size such as 2MB or 1GB", h.Pagesize)
		}
	}
	if n := res.Network; n != nil {
		for _, p := range n.Priorities {
			if p.Name == "" || strings.ContainsAny(p.Name, " \t\n/") {
				return invalidf("network priority: bad interface name %q", p.Name)
			}
		}
	}
	for dev := range res.Rdma {
		if dev == "" || strings.ContainsAny(dev, " \t\n") {
			return invalidf("rdma: bad device name %q", dev)
		}
	}
	if len(res.Unified) > 0 {
		if mode != Unified {
			return unsupportedf("unified cgroup resources need cgroup v2; this machine uses cgroup v1")
		}
		for k := range res.Unified {
			if err := checkUnifiedKey(k); err != nil {
				return err
			}
		}
	}
	for i := range res.Devices {
		if _, err := parseDeviceRule(&res.Devices[i]); err != nil {
			return err
		}
	}
	return nil
}

func validateMemory(mem *specs.LinuxMemory, mode Mode) error {
	if l := mem.Limit; l != nil && (*l == 0 || *l < -1) {
		return invalidf("memory limit %d: must be positive, or -1 for unlimited", *l)
	}
	if r := mem.Reservation; r != nil && *r < -1 {
		return invalidf("memory reservation %d: must be positive, or -1 for unlimited", *r)
	}
	if s := mem.Swap; s != nil {
		if *s == 0 || *s < -1 {
			return invalidf("memory+swap limit %d: must be positive, or -1 for unlimited", *s)
		}
		if l := mem.Limit; l != nil && *l > 0 && *s > 0 && *s < *l {
			return invalidf("memory+swap limit %d is below the memory limit %d", *s, *l)
		}
		if l := mem.Limit; l != nil && *l == -1 && *s > 0 {
			return invalidf("memory+swap limit %d with an unlimited memory limit", *s)
		}
	}
	if k := mem.Kernel; k != nil && (*k == 0 || *k < -1) { //nolint:staticcheck // deprecated but still honoured on v1
		return invalidf("kernel memory limit %d: must be positive, or -1 for unlimited", *k)
	}
	if k := mem.KernelTCP; k != nil && (*k == 0 || *k < -1) {
		return invalidf("kernel TCP memory limit %d: must be positive, or -1 for unlimited", *k)
	}
	if s := mem.Swappiness; s != nil && *s != swappinessUnset && *s > 100 {
		return invalidf("memory swappiness %d: must be 0..100", *s)
	}
	if h := mem.UseHierarchy; h != nil && !*h && mode == Unified {
		return unsupportedf("memory.useHierarchy=false: cgroup v2 is always hierarchical")
	}
	return nil
}

func validateCPU(cpu *specs.LinuxCPU, mode Mode) error {
	if s := cpu.Shares; s != nil && *s == 0 {
		return invalidf("cpu shares 0: must be 2..262144")
	}
	if q := cpu.Quota; q != nil && *q != -1 && *q < 1000 {
		return invalidf("cpu quota %d: must be at least 1000 microseconds, or -1 for none", *q)
	}
	if p := cpu.Period; p != nil && (*p < 1000 || *p > 1000000) {
		return invalidf("cpu period %d: must be 1000..1000000 microseconds", *p)
	}
	if b := cpu.Burst; b != nil && cpu.Quota != nil && *cpu.Quota > 0 && *b > uint64(*cpu.Quota) {
		return invalidf("cpu burst %d is above the quota %d", *b, *cpu.Quota)
	}
	if r := cpu.RealtimeRuntime; r != nil && *r < -1 {
		return invalidf("cpu realtime runtime %d: must be >= 0, or -1 for unlimited", *r)
	}
	if p := cpu.RealtimePeriod; p != nil && *p == 0 {
		return invalidf("cpu realtime period 0: must be positive")
	}
	if r, p := cpu.RealtimeRuntime, cpu.RealtimePeriod; r != nil && p != nil && *r > 0 && uint64(*r) > *p {
		return invalidf("cpu realtime runtime %d is above the realtime period %d", *r, *p)
	}
	if mode == Unified && (cpu.RealtimeRuntime != nil || cpu.RealtimePeriod != nil) {
		return unsupportedf("cpu realtime runtime and period: cgroup v2 has no realtime group scheduling")
	}
	if i := cpu.Idle; i != nil {
		if *i != 0 && *i != 1 {
			return invalidf("cpu idle %d: must be 0 or 1", *i)
		}
		if *i == 1 && cpu.Shares != nil {
			return invalidf("cpu idle and cpu shares cannot be set together")
		}
	}
	if cpu.Cpus != "" && !cpuListRE.MatchString(cpu.Cpus) {
		return invalidf("cpuset cpus %q: want a list such as 0-3,6", cpu.Cpus)
	}
	if cpu.Mems != "" && !cpuListRE.MatchString(cpu.Mems) {
		return invalidf("cpuset mems %q: want a list such as 0-1", cpu.Mems)
	}
	return nil
}

func checkWeight(what string, w *uint16) error {
	if w != nil && (*w < 10 || *w > 1000) {
		return invalidf("%s %d: must be 10..1000", what, *w)
	}
	return nil
}

func checkDevice(what string, d specs.LinuxBlockIODevice) error {
	if d.Major < 0 || d.Minor < 0 {
		return invalidf("%s: bad device %d:%d", what, d.Major, d.Minor)
	}
	return nil
}

func validateBlockIO(b *specs.LinuxBlockIO) error {
	if err := checkWeight("blkio weight", b.Weight); err != nil {
		return err
	}
	if err := checkWeight("blkio leaf weight", b.LeafWeight); err != nil {
		return err
	}
	for _, wd := range b.WeightDevice {
		if err := checkDevice("blkio weight device", wd.LinuxBlockIODevice); err != nil {
			return err
		}
		if err := checkWeight("blkio device weight", wd.Weight); err != nil {
			return err
		}
		if err := checkWeight("blkio device leaf weight", wd.LeafWeight); err != nil {
			return err
		}
	}
	for _, l := range [][]specs.LinuxThrottleDevice{b.ThrottleReadBpsDevice, b.ThrottleWriteBpsDevice,
		b.ThrottleReadIOPSDevice, b.ThrottleWriteIOPSDevice} {
		for _, td := range l {
			if err := checkDevice("blkio throttle device", td.LinuxBlockIODevice); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkUnifiedKey accepts "controller.file" names of the cgroup's own
// directory, except those that move or kill processes or change its type.
func checkUnifiedKey(k string) error {
	if k == "" || strings.ContainsAny(k, "/\x00\n") || strings.HasPrefix(k, ".") || !strings.Contains(k, ".") {
		return invalidf("unified resource %q: not a cgroup file name", k)
	}
	switch k {
	case "cgroup.procs", "cgroup.threads", "cgroup.kill", "cgroup.freeze", "cgroup.subtree_control", "cgroup.type":
		return invalidf("unified resource %q: not a resource (use the Manager's methods)", k)
	}
	return nil
}

// deviceRule is one checked device cgroup rule.
type deviceRule struct {
	allow        bool
	typ          byte  // 'a', 'b' or 'c'
	major, minor int64 // -1 for any
	access       string
}

// String is the v1 devices.allow/deny form: "c 1:3 rwm", "a *:* rwm".
func (d deviceRule) String() string {
	num := func(n int64) string {
		if n < 0 {
			return "*"
		}
		return fmt.Sprint(n)
	}
	return fmt.Sprintf("%c %s:%s %s", d.typ, num(d.major), num(d.minor), d.access)
}

func parseDeviceRule(r *specs.LinuxDeviceCgroup) (deviceRule, error) {
	d := deviceRule{allow: r.Allow, major: -1, minor: -1}
	switch r.Type {
	case "", "a":
		d.typ = 'a'
	case "b", "c":
		d.typ = r.Type[0]
	default:
		return d, invalidf("device rule: bad type %q (want a, b or c)", r.Type)
	}
	if r.Major != nil {
		if *r.Major < -1 {
			return d, invalidf("device rule: bad major %d", *r.Major)
		}
		d.major = *r.Major
	}
	if r.Minor != nil {
		if *r.Minor < -1 {
			return d, invalidf("device rule: bad minor %d", *r.Minor)
		}
		d.minor = *r.Minor
	}
	acc := r.Access
	if acc == "" {
		acc = "rwm"
	}
	var seen [3]bool
	for _, c := range acc {
		i := strings.IndexRune("rwm", c)
		if i < 0 || seen[i] {
			return d, invalidf("device rule: bad access %q (want letters of rwm)", r.Access)
		}
		seen[i] = true
	}
	for i, c := range "rwm" {
		if seen[i] {
			d.access += string(c)
		}
	}
	return d, nil
}

// v1DeviceLines writes a rule as the v1 devices controller understands it.
// The kernel reads a rule of type "a" as "every device, every access",
// whatever follows, so only a full wildcard is written as "a"; a narrower
// rule of type "a" becomes one rule for block and one for char devices.
func v1DeviceLines(r deviceRule) []string {
	if r.typ != 'a' {
		return []string{r.String()}
	}
	if r.major < 0 && r.minor < 0 && r.access == "rwm" {
		return []string{"a"}
	}
	b, c := r, r
	b.typ, c.typ = 'b', 'c'
	return []string{b.String(), c.String()}
}

// v2Controllers is the set of v2 controllers res writes to.
func v2Controllers(res *specs.LinuxResources) map[string]bool {
	need := make(map[string]bool)
	if res == nil {
		return need
	}
	if m := res.Memory; m != nil && (m.Limit != nil || m.Reservation != nil || m.Swap != nil) {
		need["memory"] = true
	}
	if c := res.CPU; c != nil {
		if c.Shares != nil || c.Quota != nil || c.Period != nil || c.Burst != nil || c.Idle != nil {
			need["cpu"] = true
		}
		if c.Cpus != "" || c.Mems != "" {
			need["cpuset"] = true
		}
	}
	if res.Pids != nil && res.Pids.Limit != nil {
		need["pids"] = true
	}
	if b := res.BlockIO; b != nil && (b.Weight != nil || len(b.WeightDevice) > 0 ||
		len(b.ThrottleReadBpsDevice) > 0 || len(b.ThrottleWriteBpsDevice) > 0 ||
		len(b.ThrottleReadIOPSDevice) > 0 || len(b.ThrottleWriteIOPSDevice) > 0) {
		need["io"] = true
	}
	if len(res.HugepageLimits) > 0 {
		need["hugetlb"] = true
	}
	if len(res.Rdma) > 0 {
		need["rdma"] = true
	}
	for k := range res.Unified {
		if c, _, ok := strings.Cut(k, "."); ok && c != "cgroup" {
			need[c] = true
		}
	}
	return need
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func errConflictf(format string, args ...any) error {
	return errdefs.New(errdefs.ErrConflict, fmt.Sprintf(format, args...))
}

// pageSizeName is the kernel's name for a huge page size: 2MB, 1GB, 64KB.
func pageSizeName(bytes uint64) string {
	units := []string{"B", "KB", "MB", "GB", "TB"}
	i := 0
	for bytes >= 1024 && bytes%1024 == 0 && i < len(units)-1 {
		bytes /= 1024
		i++
	}
	return fmt.Sprintf("%d%s", bytes, units[i])
}

func ptr[T any](v T) *T { return &v }
