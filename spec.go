package berth

// Spec describes a container the way the flags of `docker run` do. The
// zero value of every field means docker's default; the image supplies
// the command, environment, working directory, user and stop signal that
// the Spec leaves empty. A Spec is stored with the container and shown by
// Inspect.
type Spec struct {
	// Image is the image's name or ID. Required.
	Image string
	// Name is the container's name; empty gives a random docker-style
	// name ("eager_turing"). Names are unique in a store.
	Name string

	// Cmd replaces the image's command (docker run IMAGE CMD...).
	Cmd []string
	// Entrypoint replaces the image's entrypoint when not nil; an empty,
	// non-nil slice resets it (docker --entrypoint ""). An explicit
	// entrypoint drops the image's command, as in docker.
	Entrypoint []string
	// Env entries ("KEY=VALUE") add to and override the image's.
	Env []string
	// WorkingDir replaces the image's working directory; created when
	// missing.
	WorkingDir string
	// User is "name", "uid", "uid:gid", "name:group" or "uid:group",
	// resolved in the image's /etc/passwd and /etc/group.
	User string
	// GroupAdd are supplementary groups (names or numbers).
	GroupAdd []string
	// Hostname defaults to the first 12 characters of the ID.
	Hostname   string
	Domainname string
	// Labels are the container's labels (docker --label).
	Labels map[string]string
	// Annotations are added to the OCI runtime configuration.
	Annotations map[string]string

	// Tty allocates a pseudo-terminal (docker -t).
	Tty bool
	// OpenStdin keeps the container's standard input open (docker -i).
	OpenStdin bool

	// StopSignal replaces the image's stop signal (default SIGTERM).
	StopSignal string
	// StopTimeout is how long Stop waits before SIGKILL, in seconds;
	// nil means 10.
	StopTimeout *int

	// Init runs a small reaper as PID 1 that forwards signals to the
	// command and reaps zombies (docker --init).
	Init bool
	// ReadOnly mounts the root filesystem read-only.
	ReadOnly bool
	// Privileged gives every capability and host device and lifts the
	// seccomp, masking and read-only restrictions.
	Privileged bool
	// CapAdd and CapDrop change the default capability set ("NET_ADMIN",
	// "CAP_SYS_TIME", "ALL").
	CapAdd, CapDrop []string
	// SecurityOpt are docker's --security-opt values:
	// "no-new-privileges", "seccomp=unconfined", "seccomp=PROFILE.json",
	// "systempaths=unconfined".
	SecurityOpt []string

	// Resources are cgroup limits.
	Resources Resources
	// Ulimits set rlimits; they may not exceed the caller's hard limits.
	Ulimits []Ulimit
	// Sysctls are namespaced kernel parameters (net.*, kernel.shm*, ...).
	Sysctls map[string]string
	// ShmSize is the size of /dev/shm in bytes; 0 means 64 MiB.
	ShmSize int64
	// OomScoreAdj sets the processes' oom_score_adj.
	OomScoreAdj *int
	// Devices are host devices to add (docker --device).
	Devices []Device
	// CgroupParent places the container's cgroup below this path instead
	// of the runtime's default.
	CgroupParent string
	// PidMode, IpcMode and UTSMode are "" (private), "host", or
	// "container:NAME" to share another container's namespace.
	PidMode, IpcMode, UTSMode string

	// Network is "bridge" (the default network), "none", "host",
	// "container:NAME", or the name of a user-defined network.
	Network string
	// NetworkAliases are extra names on user-defined networks.
	NetworkAliases []string
	// Ports publishes container ports on the host (docker -p); see
	// ParsePorts.
	Ports []PortBinding
	// PublishAll publishes every port the image exposes on random host
	// ports (docker -P).
	PublishAll bool
	// DNS, DNSSearch and DNSOptions override the resolv.conf the
	// container gets from the host.
	DNS, DNSSearch, DNSOptions []string
	// ExtraHosts are "host:ip" lines added to /etc/hosts.
	ExtraHosts []string
	// MacAddress and IPAddress request fixed addresses on the network.
	MacAddress, IPAddress string

	// Mounts are bind mounts, volumes and tmpfs mounts; see ParseVolume,
	// ParseMount and ParseTmpfs for docker's -v, --mount and --tmpfs.
	Mounts []Mount
	// VolumesFrom mounts the volumes of other containers
	// ("NAME[:ro|:rw]").
	VolumesFrom []string

	// RestartPolicy restarts a detached container when it exits.
	RestartPolicy RestartPolicy
	// AutoRemove removes the container when it exits (docker --rm).
	AutoRemove bool
	// LogConfig selects the log driver and its rotation (docker
	// --log-driver, --log-opt); the default is json-file, rotated at
	// 20 MB with 5 files kept.
	LogConfig LogConfig
	// DieWithCreator kills and removes a detached container when the
	// process that created it exits, however it exits (berthtest uses it:
	// a killed test leaves no container behind). Foreground containers
	// always die with the process running them.
	DieWithCreator bool
}

// Resources are a container's cgroup limits. Zero means unlimited.
type Resources struct {
	// Memory is the memory limit in bytes (docker -m).
	Memory int64
	// MemorySwap is memory plus swap in bytes; -1 is unlimited swap, 0
	// with Memory set means twice Memory.
	MemorySwap int64
	// MemoryReservation is a soft limit in bytes.
	MemoryReservation int64
	// NanoCPUs is the CPU quota in billionths of a CPU (docker --cpus
	// 1.5 is 1500000000).
	NanoCPUs int64
	// CPUShares is the relative CPU weight (docker --cpu-shares).
	CPUShares int64
	// CPUPeriod and CPUQuota are the CFS period and quota in
	// microseconds.
	CPUPeriod, CPUQuota int64
	// CpusetCpus and CpusetMems pin the container ("0-2,4").
	CpusetCpus, CpusetMems string
	// PidsLimit bounds the number of tasks; -1 is unlimited.
	PidsLimit int64
	// BlkioWeight is the block IO weight, 10 to 1000.
	BlkioWeight uint16
	// OomKillDisable disables the OOM killer for the container.
	OomKillDisable bool
}

// Ulimit is one rlimit (docker --ulimit nofile=1024:2048).
type Ulimit struct {
	Name       string // "nofile", "nproc", "core", ...
	Soft, Hard int64  // -1 is unlimited
}

// Device makes a host device available in the container.
type Device struct {
	PathOnHost        string
	PathInContainer   string // default PathOnHost
	CgroupPermissions string // subset of "rwm"; default "rwm"
}

// PortBinding publishes a container port on the host.
type PortBinding struct {
	// HostIP is the host address to listen on; "" means all.
	HostIP string
	// HostPort is the host port; 0 picks a free one.
	HostPort uint16
	// HostPortEnd, when not 0, makes HostPort-HostPortEnd a range to pick
	// one free host port from (docker's "8000-8010:80").
	HostPortEnd uint16
	// ContainerPort is the port inside the container.
	ContainerPort uint16
	// Protocol is "tcp" (default), "udp" or "sctp".
	Protocol string
}

// Mount types.
const (
	MountTypeBind   = "bind"
	MountTypeVolume = "volume"
	MountTypeTmpfs  = "tmpfs"
)

// Mount is a bind mount, a volume or a tmpfs in the container.
type Mount struct {
	// Type is MountTypeBind, MountTypeVolume or MountTypeTmpfs.
	Type string
	// Source is the host path of a bind mount, or the volume's name (""
	// for a new anonymous volume).
	Source string
	// Target is the absolute path in the container.
	Target string
	// ReadOnly mounts it read-only.
	ReadOnly bool
	// Propagation is a bind's "private", "rprivate" (default), "shared",
	// "rshared", "slave" or "rslave".
	Propagation string
	// NoCopy leaves a new volume empty instead of copying the image's
	// content at Target into it.
	NoCopy bool
	// CreateSource creates a missing bind source (always done by -v).
	CreateSource bool
	// TmpfsSize is the tmpfs size in bytes (0 is the kernel's default).
	TmpfsSize int64
	// TmpfsMode is the tmpfs root's mode (0 is 1777).
	TmpfsMode uint32
	// Options are extra tmpfs options ("exec", "uid=1000").
	Options []string
}

// Restart policy names.
const (
	RestartNo            = "no"
	RestartAlways        = "always"
	RestartOnFailure     = "on-failure"
	RestartUnlessStopped = "unless-stopped"
)

// RestartPolicy says when the monitor restarts a detached container.
type RestartPolicy struct {
	// Name is RestartNo (default), RestartAlways, RestartOnFailure or
	// RestartUnlessStopped.
	Name string
	// MaximumRetryCount bounds on-failure restarts; 0 is no bound.
	MaximumRetryCount int
}
