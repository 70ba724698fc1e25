// Package cgroup manages one control group for a container on cgroup v1
// (including the v1/v2 "hybrid" layout) and cgroup v2, behind one Manager:
// create it, set its limits from an OCI specs.LinuxResources, move processes
// into it, freeze and thaw it, read its statistics and OOM kill count, kill
// everything in it and remove it.
//
// It is a small implementation over the cgroup files, written for berth's
// in-process OCI runtime; it needs no daemon, no systemd and no cgo.
//
// # Where the cgroup lives
//
// New takes a cgroup path as OCI's linux.cgroupsPath does. An absolute path
// ("/berth/abc") is taken from the root of each hierarchy. A relative path
// ("berth/abc", berth's default) is placed below the calling process's own
// cgroup in each hierarchy, so on a v1 machine where the caller sits in
// memory:/user/42 and cpu:/ the cgroup is memory:/user/42/berth/abc and
// cpu:/berth/abc. On v1 the cgroup is made in every mounted controller
// hierarchy and in the name=systemd one; the cgroup2 tree of a hybrid
// machine (/sys/fs/cgroup/unified) is left alone.
//
// # Writing only into cgroups berth made
//
// The Manager writes limits, tasks and state only into the directories of
// the cgroup path. The one exception is cgroup v2's cgroup.subtree_control,
// which must list a controller in every ancestor before a cgroup can use
// it: for a relative path the Manager adds the controllers it needs to the
// caller's own cgroup and to the directories between it and the cgroup
// (berth's "berth" directory); for an absolute path, to the directories its
// Create made and the nearest ancestor that existed before. It adds the
// controllers the resources use, plus cpu, cpuset, io, memory and pids when
// creating (for statistics and later updates) where the ancestor offers
// them, writes only those missing, and never removes any.
//
// On a v2 system the caller's own cgroup usually holds processes, and the
// kernel refuses to enable controllers below a non-root cgroup that does
// (the "no internal processes" rule): there, use an absolute path (or a
// relative path from a caller that runs in a root or delegated cgroup
// without processes of its own). A cgroup without limits still works
// there; a limit whose controller cannot be enabled fails with
// ErrNotSupported saying why.
//
// # Resources
//
// Create and Update take a specs.LinuxResources and write only the fields
// that are set. v1 file / v2 file, and the rules (docker's flag in
// brackets):
//
//	memory.limit         memory.limit_in_bytes / memory.max [-m]: bytes, -1 unlimited, 0 refused
//	memory.swap          memory.memsw.limit_in_bytes / memory.swap.max = swap - limit
//	                     [--memory-swap]: memory+swap bytes >= limit, -1 unlimited; ignored,
//	                     as docker does, when the kernel has no swap accounting. Limit -1
//	                     alone lifts memory+swap too. v1 writes the two in the order
//	                     the kernel needs (memory <= memory+swap after every write).
//	memory.reservation   memory.soft_limit_in_bytes / memory.low [--memory-reservation]
//	memory.kernel        memory.kmem.limit_in_bytes, deprecated: written on v1 when the
//	memory.kernelTCP     file exists (kmem.tcp for kernelTCP), ignored otherwise and on v2
//	memory.swappiness    memory.swappiness, 0..100, v1 only; docker's -1 means unset
//	memory.disableOOMKiller  memory.oom_control, v1 only [--oom-kill-disable]
//	memory.useHierarchy  memory.use_hierarchy; false is refused where the kernel is
//	                     always hierarchical (v2, and v1 below a hierarchical parent)
//	memory.checkBeforeUpdate  Update refuses (ErrConflict) a limit below the usage
//	cpu.shares           cpu.shares / cpu.weight = 1 + (shares-2)*9999/262142
//	                     [--cpu-shares]: 0 refused, others clamped to 2..262144
//	cpu.quota, period    cpu.cfs_quota_us, cpu.cfs_period_us / cpu.max "quota period"
//	                     [--cpus: see CPUQuota]: quota >= 1000us or -1, period 1ms..1s
//	cpu.burst            cpu.cfs_burst_us / cpu.max.burst, <= quota
//	cpu.realtimeRuntime  cpu.rt_runtime_us, cpu.rt_period_us, v1 only (v2 has no
//	cpu.realtimePeriod   realtime group scheduling); runtime <= period
//	cpu.idle             cpu.idle, 0 or 1, not with shares
//	cpu.cpus, mems       cpuset.cpus, cpuset.mems [--cpuset-cpus, --cpuset-mems]
//	pids.limit           pids.max [--pids-limit]: > 0; 0 and -1 mean unlimited
//	blockIO.weight       blkio.weight or blkio.bfq.weight / io.bfq.weight, or io.weight
//	                     = 1 + (w-10)*9999/990 [--blkio-weight]: 10..1000
//	blockIO.weightDevice blkio(.bfq).weight_device / io(.bfq).weight "maj:min w"
//	blockIO.leafWeight   blkio.leaf_weight(_device): CFQ only, gone since Linux 5.0;
//	                     written when the file exists, ignored otherwise
//	blockIO.throttle*    blkio.throttle.{read,write}_{bps,iops}_device / io.max
//	                     "maj:min rbps= wbps= riops= wiops=" (0 lifts the limit)
//	hugepageLimits       hugetlb.<size>.limit_in_bytes / hugetlb.<size>.max, and the
//	                     .rsvd files where they exist; sizes ("2MB", "1GB") must exist
//	                     on the machine (ErrInvalid). On a hybrid machine whose
//	                     hugetlb controller is bound to cgroup2 they are ErrNotSupported.
//	network.classID      net_cls.classid, net_prio.ifpriomap: skipped when those v1
//	network.priorities   controllers are not mounted (always on v2, which has neither)
//	rdma                 rdma.max "dev hca_handle=N hca_object=M"
//	devices              devices.allow / devices.deny, in order / an eBPF program
//	unified              v2 files written as given, last; refused on v1 (ErrNotSupported)
//
// A resource whose controller is missing (pids not mounted, an rt knob the
// kernel lacks) fails with ErrNotSupported before anything is written.
//
// # Devices
//
// Device rules (linux.resources.devices) go to devices.allow and
// devices.deny on v1. On v2, which has no devices controller, they are
// compiled into an eBPF program (BPF_PROG_TYPE_CGROUP_DEVICE) that is
// attached to the cgroup and replaces the one attached before; this needs
// a kernel with CONFIG_CGROUP_BPF (ErrNotSupported otherwise). Each access
// (read, write, mknod) of a request is decided by the last rule that
// matches the device and names it; no matching rule denies.
//
// # Errors
//
// Errors carry berth's kinds (internal/errdefs, re-exported by the root
// package): ErrInvalid for malformed resources (checked before anything is
// written, so a rejected call changes nothing), ErrNotSupported for a
// resource this kernel or cgroup version cannot enforce, ErrNotFound for
// Update or Add on a cgroup that does not exist, ErrConflict for a busy
// cgroup. Kernel errnos stay matchable (errors.Is(err, unix.EBUSY)).
package cgroup

import (
	"context"
	"sync"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Mode is the cgroup layout of a machine.
type Mode int

const (
	// Unavailable: no cgroup file system is mounted.
	Unavailable Mode = iota
	// Legacy: cgroup v1, one hierarchy per controller (or per group of
	// co-mounted controllers) under /sys/fs/cgroup, including the hybrid
	// layout that also mounts cgroup2 at /sys/fs/cgroup/unified.
	Legacy
	// Unified: cgroup v2, one hierarchy mounted at /sys/fs/cgroup.
	Unified
)

// String returns "unavailable", "legacy" or "unified".
func (m Mode) String() string {
	switch m {
	case Legacy:
		return "legacy"
	case Unified:
		return "unified"
	default:
		return "unavailable"
	}
}

// DefaultCPUPeriod is the CFS period docker uses for --cpus, in
// microseconds (100ms).
const DefaultCPUPeriod uint64 = 100000

// Manager is one cgroup. Its methods are safe for concurrent use; two
// Managers (in one process or several) may name the same cgroup.
type Manager struct {
	path  string      // as given to New
	mode  Mode        // Legacy or Unified
	hiers []hierarchy // v1: one per distinct hierarchy; v2: exactly one
	fs    fsys        // the kernel, or a test's fake

	mu sync.Mutex // guards created and firstParent
	// created lists, top-down, the v2 directories this Manager's Create
	// made (the leaf last), and firstParent is the nearest ancestor that
	// already existed. Both are empty for a Manager that did not Create.
	created     []string
	firstParent string
}

// hierarchy is one tree the cgroup lives in: a v1 hierarchy (one or more
// co-mounted controllers, or name=systemd) or the v2 unified tree.
type hierarchy struct {
	controllers []string // v1: e.g. ["cpu", "cpuacct"] or ["name=systemd"]; v2: nil
	mount       string   // the hierarchy's mount point
	base        string   // the existing directory the cgroup is created below (own cgroup or mount)
	dir         string   // the cgroup's directory
	noPrefix    bool     // v1 mounted with "noprefix": cpuset files lack the "cpuset." prefix
}

// has reports whether the hierarchy carries controller c.
func (h *hierarchy) has(c string) bool {
	for _, x := range h.controllers {
		if x == c {
			return true
		}
	}
	return false
}

// hier returns the hierarchy carrying controller c, or nil.
func (m *Manager) hier(c string) *hierarchy {
	if m.mode == Unified {
		return &m.hiers[0]
	}
	for i := range m.hiers {
		if m.hiers[i].has(c) {
			return &m.hiers[i]
		}
	}
	return nil
}

// cpusetFile names a cpuset file in h ("cpuset.cpus", or "cpus" when the
// hierarchy is mounted with noprefix).
func (h *hierarchy) cpusetFile(name string) string {
	if h.noPrefix {
		return name
	}
	return "cpuset." + name
}

// fsys is what the Manager does to a cgroup file system that a plain
// directory would not: the kernel populates a new cgroup directory with its
// interface files, removes them on rmdir, and gives writes meaning. Reads,
// stats and directory listings go straight to the files. Tests substitute
// a fake kernel over a temporary directory.
type fsys interface {
	mkdir(dir string) error
	rmdir(dir string) error
	write(file, data string) error
}

// Option configures New.
type Option func(*options)

type options struct {
	root string
	mode Mode
	fs   fsys
	own  []byte // /proc/PID/cgroup content relative paths go below; nil: /proc/self/cgroup
}

// WithRoot manages the cgroup in the cgroup file system at dir instead of
// the mounts found in /proc/self/mountinfo: for Unified, dir is a cgroup2
// mount point (for example /sys/fs/cgroup/unified on a hybrid machine);
// for Legacy, dir holds one directory per hierarchy, named after its
// controllers ("memory", "cpu,cpuacct", with symlinks such as "cpu"
// allowed). Without WithMode, the mode is Unified when dir has a
// cgroup.controllers file and Legacy otherwise. The caller's own cgroup
// (for relative paths) still comes from /proc/self/cgroup.
// Default: the system's mounts.
func WithRoot(dir string) Option { return func(o *options) { o.root = dir } }

// WithMode forces the cgroup layout instead of detecting it.
// Default: DetectMode() (or, with WithRoot, what dir looks like).
func WithMode(m Mode) Option { return func(o *options) { o.mode = m } }

// WithOwnCgroup places a relative path below the cgroups listed in own
// (the content of a /proc/PID/cgroup file) instead of the calling
// process's: a process other than the one that made a cgroup finds it
// again from the creator's recorded membership.
// Default: the content of /proc/self/cgroup.
func WithOwnCgroup(own []byte) Option { return func(o *options) { o.own = own } }

// withFS makes the Manager act through f (tests' fake kernel).
func withFS(f fsys) Option { return func(o *options) { o.fs = f } }

// New returns a Manager for the cgroup at path. It does no I/O besides
// reading /proc/self/cgroup and /proc/self/mountinfo once (and, with
// WithRoot, looking at that directory); the cgroup is made by Create.
//
// An absolute path ("/berth/abc", as OCI cgroupsPath) is taken from the
// root of each hierarchy; a relative path ("berth/abc", berth's default) is
// placed below the calling process's own cgroup in each hierarchy. The
// path must not be the root, contain ".." or be a systemd
// "slice:prefix:name" triple (ErrInvalid / ErrNotSupported). On a machine
// with no cgroups New fails with ErrNotSupported.
func New(path string, opts ...Option) (*Manager, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	clean, err := checkPath(path)
	if err != nil {
		return nil, err
	}
	return newManager(clean, &o)
}

// Mode is the layout the Manager works on: Legacy or Unified.
func (m *Manager) Mode() Mode { return m.mode }

// Name is the cgroup path the Manager was made with, cleaned.
func (m *Manager) Name() string { return m.path }

// Path is the cgroup's directory for controller ("memory", "cpu",
// "cpuacct", "name=systemd" ...) on v1, or "" when that controller is not
// mounted. On v2 every controller, and "", name the one unified directory.
func (m *Manager) Path(controller string) string {
	if m.mode == Unified {
		return m.hiers[0].dir
	}
	for i := range m.hiers {
		if m.hiers[i].has(controller) {
			return m.hiers[i].dir
		}
	}
	return ""
}

// Create makes the cgroup in every hierarchy and applies res (nil: no
// limits). It succeeds on a cgroup that exists already (and then applies
// res, like Update). On v1 a new cpuset cgroup, and every cpuset directory
// Create makes on the way, gets cpuset.cpus and cpuset.mems copied from
// its parent when empty, so tasks can join it. On v2 Create enables the
// needed controllers in the ancestors (see the package doc). res is validated before anything is written; if applying
// it fails, Create removes the directories it made.
func (m *Manager) Create(res *specs.LinuxResources) error { return m.create(res) }

// Add moves process pid (all its threads) into the cgroup in every
// hierarchy. ErrNotFound when the cgroup does not exist; the errno ESRCH
// stays matchable when the process is gone.
func (m *Manager) Add(pid int) error { return m.add(pid) }

// Update applies res to the existing cgroup (docker update). Only the
// fields set in res are written. res is validated first, so ErrInvalid
// means nothing changed; a kernel refusal half-way (a memory limit below
// the current usage) leaves the earlier writes in place. ErrNotFound when
// the cgroup does not exist.
func (m *Manager) Update(res *specs.LinuxResources) error { return m.update(res) }

// Stats reads the cgroup's memory, CPU, pids and block I/O statistics.
// Fields of a controller that is not available stay zero.
func (m *Manager) Stats() (*Stats, error) { return m.stats() }

// OOMKillCount is how many processes the kernel's OOM killer killed in the
// cgroup: v1 memory.oom_control "oom_kill" (Linux >= 4.13), v2
// memory.events "oom_kill".
func (m *Manager) OOMKillCount() (uint64, error) { return m.oomKillCount() }

// Procs lists the processes in the cgroup and its descendants (PIDs in the
// caller's PID namespace), sorted.
func (m *Manager) Procs() ([]int, error) { return m.procs() }

// Exists reports whether the cgroup directory exists in any hierarchy.
func (m *Manager) Exists() bool { return m.exists() }

// Delete removes the cgroup's directories, descendants first, retrying
// briefly while the kernel reports them busy (processes that are still
// exiting). It is idempotent: deleting a cgroup that is gone succeeds.
// A cgroup that still holds processes fails with ErrConflict (EBUSY).
// Parent directories (the shared "berth" one) are left in place.
func (m *Manager) Delete() error { return m.delete() }

// Freeze stops every process in the cgroup (docker pause) and returns once
// all are frozen. On v1 it writes FROZEN to freezer.state and waits while
// the kernel reports FREEZING (thawing now and then, which lets a cgroup
// whose processes keep forking settle); on v2 it writes 1 to cgroup.freeze
// and waits for "frozen 1" in cgroup.events. If ctx ends first, the cgroup
// is thawed again and ctx's error returned. ErrNotSupported without a
// freezer.
func (m *Manager) Freeze(ctx context.Context) error { return m.freeze(ctx) }

// Thaw lets the cgroup's processes run again (docker unpause). On v2 it
// waits, within ctx, until the kernel reports the cgroup thawed.
func (m *Manager) Thaw(ctx context.Context) error { return m.thaw(ctx) }

// Frozen reports whether the cgroup itself is frozen (not merely inside a
// frozen ancestor) and the freeze has completed.
func (m *Manager) Frozen() (bool, error) { return m.frozen() }

// Kill sends SIGKILL to every process in the cgroup and its descendants and
// waits, within ctx, until none is left. On v2 kernels with cgroup.kill
// (Linux >= 5.14) the kernel does it atomically; otherwise the cgroup is
// frozen first so that nothing forks past the kill, every process is
// signalled through a pidfd checked against the cgroup (a reused PID is
// never hit), and the cgroup is thawed so the signals take effect. Killing
// an empty or missing cgroup succeeds.
func (m *Manager) Kill(ctx context.Context) error { return m.kill(ctx) }
