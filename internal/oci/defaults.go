package oci

import (
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// defaultMounts are docker's default mounts (moby daemon/pkg/oci
// defaults.go DefaultLinuxSpec), in docker's order. /dev/shm gets its size
// from ShmSize.
func defaultMounts() []specs.Mount {
	return []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"ro", "nosuid", "noexec", "nodev"}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777"}},
	}
}

// defaultMaskedPaths are docker's masked paths; host-dependent ones
// (thermal_throttle of each CPU) are added from the host.
func defaultMaskedPaths() []string {
	return []string{
		"/proc/acpi",
		"/proc/asound",
		"/proc/interrupts",
		"/proc/kcore",
		"/proc/keys",
		"/proc/latency_stats",
		"/proc/sched_debug",
		"/proc/scsi",
		"/proc/timer_list",
		"/proc/timer_stats",
		"/sys/devices/virtual/powercap",
		"/sys/firmware",
	}
}

// defaultReadonlyPaths are docker's read-only paths.
func defaultReadonlyPaths() []string {
	return []string{
		"/proc/bus",
		"/proc/fs",
		"/proc/irq",
		"/proc/sys",
		"/proc/sysrq-trigger",
	}
}

func i64(v int64) *int64 { return &v }

func devRule(allow bool, typ string, major, minor int64, access string) specs.LinuxDeviceCgroup {
	r := specs.LinuxDeviceCgroup{Allow: allow, Type: typ, Access: access}
	if typ != "a" && typ != "" {
		r.Major, r.Minor = i64(major), i64(minor)
	}
	return r
}

// defaultDeviceRules are the device cgroup rules a docker container runs
// with: docker's spec list (deny all; allow zero, null, urandom, random,
// tty, console; deny fuse), followed by the rules runc appends to every
// container (libcontainer/specconv AllowedDevices: mknod of any device,
// full, the pts devices, /dev/ptmx, /dev/net/tun), without repeats. berth's
// runtime adds nothing, so the spec carries the whole list. -1 is a
// wildcard major or minor.
func defaultDeviceRules() []specs.LinuxDeviceCgroup {
	return []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		devRule(true, "c", 1, 5, "rwm"),     // /dev/zero
		devRule(true, "c", 1, 3, "rwm"),     // /dev/null
		devRule(true, "c", 1, 9, "rwm"),     // /dev/urandom
		devRule(true, "c", 1, 8, "rwm"),     // /dev/random
		devRule(true, "c", 5, 0, "rwm"),     // /dev/tty
		devRule(true, "c", 5, 1, "rwm"),     // /dev/console
		devRule(false, "c", 10, 229, "rwm"), // /dev/fuse
		// runc's defaults
		devRule(true, "c", -1, -1, "m"),
		devRule(true, "b", -1, -1, "m"),
		devRule(true, "c", 1, 7, "rwm"),    // /dev/full
		devRule(true, "c", 136, -1, "rwm"), // /dev/pts/*
		devRule(true, "c", 5, 2, "rwm"),    // /dev/ptmx
		devRule(true, "c", 10, 200, "rwm"), // /dev/net/tun
	}
}

// defaultDevices are the OCI default devices (config-linux.md "Default
// Devices"), listed explicitly so the spec says everything the runtime
// creates; /dev/ptmx is a symlink to pts/ptmx made by the runtime. A
// runtime that also creates its defaults skips the paths listed here, as
// runc does.
func defaultDevices() []specs.LinuxDevice {
	dev := func(path string, major, minor int64) specs.LinuxDevice {
		mode := os.FileMode(0o666)
		var uid, gid uint32
		return specs.LinuxDevice{Path: path, Type: "c", Major: major, Minor: minor, FileMode: &mode, UID: &uid, GID: &gid}
	}
	return []specs.LinuxDevice{
		dev("/dev/null", 1, 3),
		dev("/dev/zero", 1, 5),
		dev("/dev/full", 1, 7),
		dev("/dev/random", 1, 8),
		dev("/dev/urandom", 1, 9),
		dev("/dev/tty", 5, 0),
	}
}
