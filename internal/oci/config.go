// Package oci turns a container's configuration and its image's config into
// an OCI runtime-spec configuration (config.json) with docker's defaults and
// semantics: namespaces, capabilities, masked and read-only paths, the
// default mounts and devices, the default device cgroup rules, seccomp,
// resources, rlimits, the process user resolved in the image's /etc/passwd
// and /etc/group, environment, entrypoint and command.
//
// The root package fills a Config after resolving the image, the volumes and
// the network, calls Generate, writes the result as the container's
// config.json and hands it to internal/runtime. Every rule here follows
// moby's daemon (daemon/oci_linux.go, daemon/pkg/oci, daemon/commit.go,
// daemon/container.go) as of docker v29.7; docs/internals.md ("Spec
// generation") lists the rules and the few places where berth differs.
package oci

import (
	"os"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Config is a container's configuration, already resolved by the caller:
// image config read, volumes and network set up, paths absolute.
type Config struct {
	// ID is the container's 64-hex-digit ID. The default hostname is ID[:12].
	ID string
	// Rootfs is the absolute path of the mounted root filesystem. The
	// image's /etc/passwd and /etc/group are read from it, with symlinks
	// resolved inside it (never out of it).
	Rootfs string
	// Image is the image's config: Env, Entrypoint, Cmd, WorkingDir, User
	// and StopSignal are used here.
	Image ocispec.ImageConfig

	// Entrypoint replaces the image's entrypoint when EntrypointSet (docker
	// --entrypoint). An empty Entrypoint (nil, [] or [""]) resets it. An
	// explicit entrypoint also drops the image's Cmd, as docker does.
	Entrypoint    []string
	EntrypointSet bool
	// Cmd replaces the image's Cmd; nil or empty keeps the image's.
	Cmd []string

	// Env is added to the image's environment; the caller's value wins for
	// a key. An entry without "=" removes the key (docker's -e KEY where
	// KEY is unset in the caller's environment).
	Env []string
	// WorkingDir replaces the image's; it must be absolute. Default "/".
	WorkingDir string
	// User is "name", "uid", "uid:gid", "name:group", "uid:group"; empty
	// means the image's user, and then root.
	User string
	// Hostname defaults to ID[:12], or to the host's name with NetNS
	// "host". It must be empty with UTSMode "host".
	Hostname   string
	Domainname string

	Tty       bool
	OpenStdin bool // not part of the spec: the caller wires stdin

	Privileged      bool
	ReadOnly        bool // read-only root filesystem
	NoNewPrivileges bool
	// SystemPathsUnconfined drops the masked and read-only paths (docker
	// --security-opt systempaths=unconfined).
	SystemPathsUnconfined bool
	// WritableCgroups mounts /sys/fs/cgroup writable; nil means only for
	// privileged containers (docker --security-opt writable-cgroups).
	WritableCgroups *bool

	// Init runs InitPath (the caller's own binary, statically linked) as
	// PID 1, bind-mounted read-only at InitMountPath, with ReaperEnv set:
	// internal/runtime's re-exec hook then acts as a zombie reaper and
	// runs the command after "--". Ignored unless the PID namespace is
	// the container's own, as in docker.
	Init     bool
	InitPath string

	// CapAdd and CapDrop take docker names, with or without CAP_, in any
	// case, and "ALL".
	CapAdd, CapDrop []string
	// Seccomp is "" (docker's default profile), "unconfined", "builtin"
	// (the default profile, also with Privileged) or the path of a JSON
	// profile in docker's format.
	Seccomp string

	Resources Resources
	Ulimits   []Ulimit
	// Mounts are the user's mounts, already resolved (volumes as host
	// paths). A mount at the destination of a default one replaces it.
	Mounts []Mount

	// NetNS is "" for a new network namespace, "host" for the host's, or
	// the path of a namespace to join (a bind-mounted netns, or another
	// container's /proc/PID/ns/net).
	NetNS string
	// NetNSShared says the NetNS path belongs to another container
	// (docker's --network container:X): docker's default network sysctls
	// are then not applied (the owner already has its own).
	NetNSShared bool
	// PIDMode, IPCMode and UTSMode are "" (private), "host", or the path
	// of a namespace to join (/proc/PID/ns/pid ...). IPCMode also takes
	// "none" (private namespace without /dev/shm), "private" and
	// "shareable" (both the same as "").
	PIDMode, IPCMode, UTSMode string
	// CgroupNS is "" (docker's default: "private" on a cgroup v2 host,
	// "host" on a v1 or hybrid host, and always "host" for privileged
	// containers on v1), "private" or "host".
	CgroupNS string
	// TimeNS is "" (the host's time namespace, docker before v29.7) or
	// "private" (a new one, docker v29.7's default on kernels >= 5.6;
	// berth will default to it once internal/runtime can create one).
	TimeNS string

	// HostsPath, ResolvConfPath and HostnamePath are bind-mounted at
	// /etc/hosts, /etc/resolv.conf and /etc/hostname (writable unless
	// ReadOnly, as docker does); empty skips the mount.
	HostsPath, ResolvConfPath, HostnamePath string

	// CgroupsPath is the OCI cgroupsPath.
	CgroupsPath string

	// Sysctls are namespaced kernel parameters (net.*, kernel.shm*,
	// kernel.msg*, kernel.sem, fs.mqueue.*).
	Sysctls map[string]string
	// ShmSize is the size of /dev/shm in bytes; 0 means 64 MiB.
	ShmSize int64
	// OomScoreAdj is the process's oom_score_adj; nil inherits the
	// caller's (docker always writes 0, which fails without
	// CAP_SYS_RESOURCE when the caller's value is positive).
	OomScoreAdj *int
	// GroupAdd are extra groups (names from the image's /etc/group, or
	// numbers).
	GroupAdd []string
	Devices  []DeviceMapping

	Annotations map[string]string
	// StopSignal replaces the image's stop signal; see StopSignal.
	StopSignal string
}

// Resources are docker's cgroup limits (docker run --memory, --cpus ...).
// Zero values mean "not set".
type Resources struct {
	Memory            int64  // bytes; at least 6 MiB
	MemorySwap        int64  // memory+swap bytes; -1 unlimited; 0 with Memory = 2*Memory
	MemoryReservation int64  // soft limit, bytes
	MemorySwappiness  *int64 // 0-100; nil or -1 = the kernel's
	OomKillDisable    *bool
	NanoCPUs          int64  // --cpus * 1e9: quota over a 100ms period
	CPUShares         int64  // relative weight
	CPUPeriod         int64  // microseconds, 1000-1000000
	CPUQuota          int64  // microseconds per period; -1 unlimited
	CpusetCpus        string // "0-2,4"
	CpusetMems        string
	PidsLimit         int64  // 0 unset, negative unlimited
	BlkioWeight       uint16 // 10-1000
}

// Ulimit is an rlimit (docker --ulimit nofile=1024:2048). Name is docker's
// name ("nofile", "nproc", ...); RLIM_INFINITY is ^uint64(0).
type Ulimit struct {
	Name       string
	Soft, Hard uint64
}

// Mount types.
const (
	MountBind   = "bind"   // a host path
	MountVolume = "volume" // a named or anonymous volume, bind-mounted from its host directory
	MountTmpfs  = "tmpfs"
)

// Mount is a resolved user mount.
type Mount struct {
	Type        string // MountBind, MountVolume or MountTmpfs
	Source      string // absolute host path (bind, volume)
	Destination string // absolute path in the container, not "/"
	ReadOnly    bool
	// Propagation is "", "private", "rprivate", "shared", "rshared",
	// "slave" or "rslave". "" is rprivate for binds and nothing for
	// volumes, as docker.
	Propagation string
	// NonRecursive bind-mounts without submounts (--mount
	// bind-recursive=disabled).
	NonRecursive bool
	// Options are tmpfs options as --tmpfs takes them ("size=64m",
	// "exec", "mode=1777", "uid=1000" ...). Only for tmpfs.
	Options   []string
	TmpfsSize int64       // bytes; 0 = the kernel's default (half of RAM)
	TmpfsMode os.FileMode // 0 = 1777
}

// DeviceMapping is a host device made available in the container (docker
// --device).
type DeviceMapping struct {
	PathOnHost        string // a device node or a directory of them
	PathInContainer   string // default PathOnHost
	CgroupPermissions string // "rwm" subset; default "rwm"
}

// ReaperEnv is the environment variable (value "1") that tells
// internal/runtime's re-exec hook to act as the container's init: reap
// zombies, forward signals to the child, run the command that follows
// "--" in its arguments, and exit with its status. The reaper removes the
// variable from the environment it passes to the command.
const ReaperEnv = "_BERTH_REAPER"

// InitMountPath is where InitPath is bind-mounted when Config.Init is set.
const InitMountPath = "/sbin/berth-init"

// DefaultShmSize is the size of /dev/shm when Config.ShmSize is 0.
const DefaultShmSize = 64 << 20

// DefaultPath is PATH when neither the image nor the user sets it.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
