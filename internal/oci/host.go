package oci

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// host is what Generate needs to know about the machine and the calling
// process. probeHost fills it from the running system (host_linux.go);
// tests build their own, so every rule can be checked without root and
// independently of the machine.
type host struct {
	capLast       int    // /proc/sys/kernel/cap_last_cap
	effectiveCaps uint64 // the caller's CapEff
	cgroup2       bool   // /sys/fs/cgroup is cgroup2 (docker: cgroups.Mode() == Unified)
	swapLimit     bool   // the memory cgroup can limit swap
	timeNS        bool   // the kernel has time namespaces (/proc/self/ns/time)
	numCPU        int
	cpusOnline    string // /sys/devices/system/cpu/online
	memsOnline    string // /sys/devices/system/node/online; "" when absent (no NUMA)
	// extraMasked are docker's host-dependent masked paths
	// (/sys/devices/system/cpu/cpuN/thermal_throttle that exist).
	extraMasked []string

	hostname func() (string, error)
	// rlimit returns the caller's soft and hard limits of an RLIMIT_*
	// resource (by number).
	rlimit func(resource int) (soft, hard uint64, err error)
	// sysctlExists reports whether /proc/sys has the parameter.
	sysctlExists func(name string) bool
	// devicesFromPath lists the device nodes at a host path: the node
	// itself, or those under a directory (docker's DevicesFromPath).
	devicesFromPath func(path string) ([]specs.LinuxDevice, error)
	// hostDevices lists the host's /dev for privileged containers.
	hostDevices func() ([]specs.LinuxDevice, error)
	// mountOf returns the mount point holding path and its optional
	// mountinfo fields ("shared:N master:M").
	mountOf func(path string) (mountpoint, optional string, err error)
	// readFile reads a seccomp profile.
	readFile func(path string) ([]byte, error)
	// openUserFile opens /etc/passwd or /etc/group inside rootfs without
	// leaving it; a missing file is (nil, nil).
	openUserFile func(rootfs, name string) ([]byte, error)
	// seccomp converts a docker seccomp profile (nil = docker's default)
	// for the spec's capability set.
	seccomp func(profile []byte, s *specs.Spec) (*specs.LinuxSeccomp, error)
}

func (h *host) hasCap(name string) bool {
	for i, n := range capNames {
		if n == name {
			return h.effectiveCaps&(1<<uint(i)) != 0
		}
	}
	return false
}
