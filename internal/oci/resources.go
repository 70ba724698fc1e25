package oci

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/berth-run/berth/internal/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// minMemory is docker's smallest memory limit and reservation (6 MiB).
const minMemory = 6 << 20

// cfsPeriod is the CPU period docker uses for --cpus (100ms).
const cfsPeriod = 100000

func invalidf(format string, args ...any) error {
	return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf(format, args...))
}

// resources maps docker's resource settings to the OCI ones, with docker's
// validation (daemon/daemon_unix.go verifyPlatformContainerResources,
// adaptContainerSettings, getMemoryResources, getCPUResources,
// getPidsLimit).
func resources(r Resources, h *host) (*specs.LinuxResources, error) {
	out := &specs.LinuxResources{}

	// memory
	if r.Memory < 0 {
		return nil, invalidf("invalid memory limit %d: must be positive", r.Memory)
	}
	if r.Memory != 0 && r.Memory < minMemory {
		return nil, invalidf("minimum memory limit allowed is 6MB")
	}
	swap := r.MemorySwap
	if swap < -1 {
		return nil, invalidf("invalid memory swap limit %d: must be -1 (unlimited) or positive", swap)
	}
	if r.Memory > 0 && swap == 0 {
		swap = 2 * r.Memory // docker: by default swap is as large as the memory limit
	}
	if r.Memory > 0 && swap > 0 && swap < r.Memory {
		return nil, invalidf("minimum memoryswap limit should be larger than memory limit")
	}
	if r.Memory == 0 && swap > 0 {
		return nil, invalidf("you should always set the memory limit when using memoryswap limit")
	}
	if !h.swapLimit {
		swap = -1 // docker: "Memory limited without swap" (the kernel cannot limit swap)
	}
	if r.MemoryReservation < 0 {
		return nil, invalidf("invalid memory reservation %d: must be positive", r.MemoryReservation)
	}
	if r.MemoryReservation > 0 && r.MemoryReservation < minMemory {
		return nil, invalidf("minimum memory reservation allowed is 6MB")
	}
	if r.Memory > 0 && r.MemoryReservation > r.Memory {
		return nil, invalidf("minimum memory limit can not be less than memory reservation limit")
	}
	mem := specs.LinuxMemory{}
	if r.Memory > 0 {
		v := r.Memory
		mem.Limit = &v
	}
	if r.MemoryReservation > 0 {
		v := r.MemoryReservation
		mem.Reservation = &v
	}
	if swap > 0 {
		mem.Swap = &swap
	}
	if r.MemorySwappiness != nil && *r.MemorySwappiness != -1 {
		s := *r.MemorySwappiness
		if s < 0 || s > 100 {
			return nil, invalidf("invalid value: %d, valid memory swappiness range is 0-100", s)
		}
		v := uint64(s)
		mem.Swappiness = &v
	}
	if r.OomKillDisable != nil {
		v := *r.OomKillDisable
		mem.DisableOOMKiller = &v
	}
	if mem != (specs.LinuxMemory{}) {
		out.Memory = &mem
	}

	// cpu
	if r.NanoCPUs > 0 && r.CPUPeriod > 0 {
		return nil, invalidf("conflicting options: nano CPUs and CPU period cannot both be set")
	}
	if r.NanoCPUs > 0 && r.CPUQuota > 0 {
		return nil, invalidf("conflicting options: nano CPUs and CPU quota cannot both be set")
	}
	if r.NanoCPUs != 0 {
		n := int64(h.numCPU)
		// docker says 0.01 is the minimum; the kernel's smallest quota is 1ms.
		if r.NanoCPUs < 1e7 || r.NanoCPUs > n*1e9 {
			return nil, invalidf("range of CPUs is from 0.01 to %d.00, as there are only %d CPUs available", n, n)
		}
	}
	if r.CPUShares < 0 {
		return nil, invalidf("invalid CPU shares (%d): value must be a positive integer", r.CPUShares)
	}
	if r.CPUPeriod != 0 && (r.CPUPeriod < 1000 || r.CPUPeriod > 1000000) {
		return nil, invalidf("CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)")
	}
	if r.CPUQuota > 0 && r.CPUQuota < 1000 {
		return nil, invalidf("CPU cfs quota can not be less than 1ms (i.e. 1000)")
	}
	if r.CPUQuota < -1 {
		return nil, invalidf("invalid CPU cfs quota %d: must be -1 (unlimited) or positive", r.CPUQuota)
	}
	if err := checkCPUSet("cpuset cpus", r.CpusetCpus, h.cpusOnline); err != nil {
		return nil, err
	}
	if err := checkCPUSet("cpuset mems", r.CpusetMems, h.memsOnline); err != nil {
		return nil, err
	}
	cpu := specs.LinuxCPU{Cpus: r.CpusetCpus, Mems: r.CpusetMems}
	if r.CPUShares > 0 {
		v := uint64(r.CPUShares)
		cpu.Shares = &v
	}
	if r.NanoCPUs > 0 {
		period := uint64(cfsPeriod)
		quota := r.NanoCPUs * cfsPeriod / 1e9
		cpu.Period, cpu.Quota = &period, &quota
	}
	if r.CPUPeriod != 0 {
		v := uint64(r.CPUPeriod)
		cpu.Period = &v
	}
	if r.CPUQuota != 0 {
		v := r.CPUQuota
		cpu.Quota = &v
	}
	if cpu != (specs.LinuxCPU{}) {
		out.CPU = &cpu
	}

	// pids
	if r.PidsLimit != 0 {
		v := r.PidsLimit
		if v < 0 {
			v = -1
		}
		out.Pids = &specs.LinuxPids{Limit: &v}
	}

	// blkio
	if r.BlkioWeight != 0 {
		if r.BlkioWeight < 10 || r.BlkioWeight > 1000 {
			return nil, invalidf("range of blkio weight is from 10 to 1000")
		}
		w := r.BlkioWeight
		out.BlockIO = &specs.LinuxBlockIO{Weight: &w}
	}
	return out, nil
}

// parseCPUSet parses a cpuset list ("0-2,4,7") into its members.
func parseCPUSet(s string) (map[int]bool, error) {
	out := map[int]bool{}
	if s == "" {
		return out, nil
	}
	for part := range strings.SplitSeq(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 {
			return nil, fmt.Errorf("invalid cpuset %q", s)
		}
		b := a
		if isRange {
			b, err = strconv.Atoi(hi)
			if err != nil || b < a {
				return nil, fmt.Errorf("invalid cpuset %q", s)
			}
		}
		if b-a > 1<<16 {
			return nil, fmt.Errorf("invalid cpuset %q: range too large", s)
		}
		for i := a; i <= b; i++ {
			out[i] = true
		}
	}
	return out, nil
}

// checkCPUSet validates a requested cpuset against the host's online
// list, as docker's sysinfo.IsCpusetCpusAvailable does.
func checkCPUSet(what, requested, online string) error {
	if requested == "" {
		return nil
	}
	req, err := parseCPUSet(requested)
	if err != nil {
		return invalidf("invalid value %s for %s", requested, what)
	}
	avail, err := parseCPUSet(online)
	if err != nil || online == "" {
		return nil // unknown on this host: let the kernel decide
	}
	for n := range req {
		if !avail[n] {
			return invalidf("requested %s are not available - requested %s, available: %s", what, requested, online)
		}
	}
	return nil
}
