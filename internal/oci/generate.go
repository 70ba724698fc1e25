package oci

import (
	"encoding/hex"
	"maps"
	"path"
	"slices"
	"strings"

	"github.com/berth-run/berth/internal/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Generate turns cfg into an OCI runtime configuration with docker's
// defaults and semantics. It reads the image's /etc/passwd and /etc/group
// from cfg.Rootfs (never outside it), a few facts about the host and the
// calling process (its capabilities and rlimits, the cgroup version, the
// kernel's namespaces), the host's devices for privileged containers and
// --device, and the seccomp profile file if one is named. It writes
// nothing; the caller creates the working directory (see CreateWorkdir).
//
// Malformed or conflicting settings are ErrInvalid errors naming the
// offending value; a user or group missing from the image is ErrNotFound.
func Generate(cfg Config) (*specs.Spec, error) {
	return generate(cfg, probeHost())
}

func generate(cfg Config, h *host) (*specs.Spec, error) {
	if err := validateID(cfg.ID); err != nil {
		return nil, err
	}
	if cfg.Rootfs == "" || !path.IsAbs(cfg.Rootfs) {
		return nil, invalidf("rootfs %q must be an absolute path", cfg.Rootfs)
	}
	if _, err := StopSignal(cfg); err != nil {
		return nil, err
	}

	args, err := processArgs(&cfg)
	if err != nil {
		return nil, err
	}

	s := &specs.Spec{
		Version:     specs.Version,
		Root:        &specs.Root{Path: cfg.Rootfs, Readonly: cfg.ReadOnly},
		Process:     &specs.Process{Terminal: cfg.Tty, NoNewPrivileges: cfg.NoNewPrivileges},
		Linux:       &specs.Linux{CgroupsPath: cfg.CgroupsPath, Sysctl: map[string]string{}},
		Annotations: maps.Clone(cfg.Annotations),
	}

	// namespaces
	ns, err := namespaces(&cfg, h)
	if err != nil {
		return nil, err
	}
	s.Linux.Namespaces = ns

	// hostname
	hostname, envHostname, err := hostnames(&cfg, h)
	if err != nil {
		return nil, err
	}
	s.Hostname = hostname
	if cfg.Domainname != "" {
		if cfg.UTSMode != "" {
			return nil, invalidf("conflicting options: domainname and the UTS mode")
		}
		if strings.ContainsRune(cfg.Domainname, 0) || len(cfg.Domainname) > 64 {
			return nil, invalidf("invalid domainname %q", cfg.Domainname)
		}
		// docker's way: the kernel.domainname sysctl, as setdomainname(2).
		s.Linux.Sysctl["kernel.domainname"] = cfg.Domainname
	}

	// user
	userSpec := cfg.User
	if userSpec == "" {
		userSpec = cfg.Image.User
	}
	passwd, err := h.openUserFile(cfg.Rootfs, "/etc/passwd")
	if err != nil {
		return nil, errdefs.Wrap(errdefs.ErrInvalid, "reading the image's /etc/passwd", err)
	}
	group, err := h.openUserFile(cfg.Rootfs, "/etc/group")
	if err != nil {
		return nil, errdefs.Wrap(errdefs.ErrInvalid, "reading the image's /etc/group", err)
	}
	u, err := resolveUser(userSpec, passwd, group)
	if err != nil {
		return nil, err
	}
	extra, err := additionalGroups(cfg.GroupAdd, group)
	if err != nil {
		return nil, err
	}
	gids := []uint32{uint32(u.gid)} // docker lists the primary group too
	for _, g := range append(u.sgids, extra...) {
		if !slices.Contains(gids, uint32(g)) {
			gids = append(gids, uint32(g))
		}
	}
	s.Process.User = specs.User{UID: uint32(u.uid), GID: uint32(u.gid), AdditionalGids: gids}

	// environment, arguments, working directory
	if err := validateEnv(cfg.Env); err != nil {
		return nil, err
	}
	s.Process.Env = processEnv(mergeImageEnv(cfg.Env, cfg.Image.Env), envHostname, cfg.Tty, u.home)
	initMount := cfg.Init && cfg.PIDMode == ""
	if initMount {
		if cfg.InitPath == "" || !path.IsAbs(cfg.InitPath) {
			return nil, invalidf("init binary path %q must be an absolute path", cfg.InitPath)
		}
		args = append([]string{InitMountPath, "--"}, args...)
		s.Process.Env = append(s.Process.Env, ReaperEnv+"=1")
	}
	s.Process.Args = args
	cwd := cfg.WorkingDir
	if cwd == "" {
		cwd = cfg.Image.WorkingDir
	}
	if cwd == "" {
		cwd = "/"
	}
	if !path.IsAbs(cwd) {
		return nil, invalidf("the working directory %q is invalid, it needs to be an absolute path", cwd)
	}
	s.Process.Cwd = path.Clean(cwd)

	// capabilities
	caps, err := capabilities(&cfg, h)
	if err != nil {
		return nil, err
	}
	s.Process.Capabilities = &specs.LinuxCapabilities{
		Bounding:  caps,
		Effective: slices.Clone(caps),
		Permitted: slices.Clone(caps),
	}

	// rlimits, oom score
	if s.Process.Rlimits, err = rlimits(cfg.Ulimits, h); err != nil {
		return nil, err
	}
	if cfg.OomScoreAdj != nil {
		if v := *cfg.OomScoreAdj; v < -1000 || v > 1000 {
			return nil, invalidf("invalid value %d, range for oom score adj is [-1000, 1000]", v)
		}
		v := *cfg.OomScoreAdj
		s.Process.OOMScoreAdj = &v
	}

	// resources and devices
	if s.Linux.Resources, err = resources(cfg.Resources, h); err != nil {
		return nil, err
	}
	if s.Linux.Devices, s.Linux.Resources.Devices, err = devices(&cfg, h); err != nil {
		return nil, err
	}

	// sysctls: docker's defaults for a network namespace of the
	// container's own, then the user's (which win).
	if cfg.NetNS != "host" && !cfg.NetNSShared {
		if h.sysctlExists("net.ipv4.ping_group_range") {
			s.Linux.Sysctl["net.ipv4.ping_group_range"] = "0 2147483647"
		}
		if h.sysctlExists("net.ipv4.ip_unprivileged_port_start") {
			s.Linux.Sysctl["net.ipv4.ip_unprivileged_port_start"] = "0"
		}
	}
	if err := checkSysctls(cfg.Sysctls, &cfg); err != nil {
		return nil, err
	}
	maps.Copy(s.Linux.Sysctl, cfg.Sysctls)
	if len(s.Linux.Sysctl) == 0 {
		s.Linux.Sysctl = nil
	}

	// mounts, masked and read-only paths
	if s.Mounts, s.Linux.RootfsPropagation, err = buildMounts(&cfg, h, initMount); err != nil {
		return nil, err
	}
	if !cfg.Privileged && !cfg.SystemPathsUnconfined {
		s.Linux.MaskedPaths = append(defaultMaskedPaths(), h.extraMasked...)
		s.Linux.ReadonlyPaths = defaultReadonlyPaths()
	}

	// seccomp, for the final capability set
	if s.Linux.Seccomp, err = seccompFor(&cfg, h, s); err != nil {
		return nil, err
	}
	return s, nil
}

func validateID(id string) error {
	if len(id) != 64 {
		return invalidf("container id %q is not 64 hex digits", id)
	}
	if _, err := hex.DecodeString(id); err != nil || strings.ToLower(id) != id {
		return invalidf("container id %q is not 64 hex digits", id)
	}
	return nil
}

// processArgs combines entrypoint and command as docker does
// (daemon/commit.go merge, daemon/create.go mergeAndVerifyConfig,
// daemon/container.go getEntrypointAndArgs):
//
//   - without --entrypoint: the image's entrypoint, and the user's command
//     if given, else the image's;
//   - with --entrypoint: that entrypoint and the user's command only (the
//     image's command is dropped); an empty entrypoint ("" or none) means
//     no entrypoint at all;
//   - nothing at all to run is an error.
func processArgs(cfg *Config) ([]string, error) {
	var entrypoint, cmd []string
	if cfg.EntrypointSet {
		entrypoint = cfg.Entrypoint
		if len(entrypoint) == 1 && entrypoint[0] == "" {
			entrypoint = nil
		}
		cmd = cfg.Cmd
	} else {
		entrypoint = cfg.Image.Entrypoint
		cmd = cfg.Cmd
		if len(cmd) == 0 {
			cmd = cfg.Image.Cmd
		}
	}
	args := append(slices.Clone(entrypoint), cmd...)
	if len(args) == 0 {
		return nil, invalidf("no command specified")
	}
	if args[0] == "" {
		return nil, invalidf("the command to run is an empty string")
	}
	for _, a := range args {
		if strings.ContainsRune(a, 0) {
			return nil, invalidf("argument %q contains a NUL byte", a)
		}
	}
	return args, nil
}

// hostnames returns the UTS hostname to set ("" with the host's UTS
// namespace) and the HOSTNAME environment value.
func hostnames(cfg *Config, h *host) (string, string, error) {
	if cfg.Hostname != "" {
		if cfg.UTSMode == "host" {
			return "", "", invalidf("conflicting options: hostname and the UTS mode")
		}
		if len(cfg.Hostname) > 64 || strings.ContainsAny(cfg.Hostname, "\x00/ \t\n") {
			return "", "", invalidf("hostname %q is invalid (at most 64 bytes, no spaces or slashes)", cfg.Hostname)
		}
		if cfg.UTSMode != "" {
			return "", "", invalidf("conflicting options: hostname and a joined UTS namespace")
		}
		return cfg.Hostname, cfg.Hostname, nil
	}
	if cfg.UTSMode != "" && cfg.UTSMode != "host" {
		return "", "", nil // a joined UTS namespace keeps its name
	}
	if cfg.UTSMode == "host" || cfg.NetNS == "host" {
		name, err := h.hostname()
		if err != nil {
			return "", "", errdefs.Wrap(errdefs.ErrInvalid, "reading the host's name", err)
		}
		if cfg.UTSMode == "host" {
			return "", name, nil
		}
		return name, name, nil
	}
	return cfg.ID[:12], cfg.ID[:12], nil
}

// nsMode validates a namespace mode: "" (private), "host", or an absolute
// path to join.
func nsMode(what, mode string) (private bool, joinPath string, err error) {
	switch {
	case mode == "":
		return true, "", nil
	case mode == "host":
		return false, "", nil
	case path.IsAbs(mode) && !strings.ContainsRune(mode, 0):
		return true, path.Clean(mode), nil
	default:
		return false, "", invalidf("invalid %s mode: %q (\"\", \"host\" or a namespace path)", what, mode)
	}
}

// namespaces returns the container's namespaces in docker's order (mount,
// network, time, uts, pid, ipc, cgroup). Docker v29.7 adds a private time
// namespace by default; berth only on request (Config.TimeNS) until
// internal/runtime supports creating one.
func namespaces(cfg *Config, h *host) ([]specs.LinuxNamespace, error) {
	var out []specs.LinuxNamespace
	add := func(t specs.LinuxNamespaceType, what, mode string) error {
		private, p, err := nsMode(what, mode)
		if err != nil {
			return err
		}
		if private {
			out = append(out, specs.LinuxNamespace{Type: t, Path: p})
		}
		return nil
	}
	out = append(out, specs.LinuxNamespace{Type: specs.MountNamespace})
	if err := add(specs.NetworkNamespace, "network", cfg.NetNS); err != nil {
		return nil, err
	}
	if cfg.NetNSShared && (cfg.NetNS == "" || cfg.NetNS == "host") {
		return nil, invalidf("a shared network namespace needs its path")
	}
	switch cfg.TimeNS {
	case "", "host":
	case "private":
		if !h.timeNS {
			return nil, errdefs.New(errdefs.ErrNotSupported, "this kernel has no time namespaces")
		}
		out = append(out, specs.LinuxNamespace{Type: specs.TimeNamespace})
	default:
		return nil, invalidf("invalid time namespace mode: %q (\"\", \"private\" or \"host\")", cfg.TimeNS)
	}
	if err := add(specs.UTSNamespace, "UTS", cfg.UTSMode); err != nil {
		return nil, err
	}
	if err := add(specs.PIDNamespace, "PID", cfg.PIDMode); err != nil {
		return nil, err
	}
	ipc := cfg.IPCMode
	switch ipc {
	case "private", "shareable", "none":
		ipc = ""
	}
	if err := add(specs.IPCNamespace, "IPC", ipc); err != nil {
		return nil, err
	}
	switch cfg.CgroupNS {
	case "private":
		out = append(out, specs.LinuxNamespace{Type: specs.CgroupNamespace})
	case "host":
	case "":
		// docker: private on a cgroup v2 host, else (and for a
		// privileged container on v1) the host's.
		if h.cgroup2 {
			out = append(out, specs.LinuxNamespace{Type: specs.CgroupNamespace})
		}
	default:
		return nil, invalidf("invalid cgroup namespace mode: %q (\"\", \"private\" or \"host\")", cfg.CgroupNS)
	}
	return out, nil
}

// seccompFor picks the profile as docker's WithSeccomp does: none for
// "unconfined" or a privileged container (unless a profile is named),
// docker's default profile for "" and "builtin", else the named file.
func seccompFor(cfg *Config, h *host, s *specs.Spec) (*specs.LinuxSeccomp, error) {
	switch {
	case cfg.Seccomp == "unconfined":
		return nil, nil
	case cfg.Seccomp == "" && cfg.Privileged:
		return nil, nil
	case cfg.Seccomp == "" || cfg.Seccomp == "builtin":
		p, err := h.seccomp(nil, s)
		if err != nil {
			return nil, errdefs.Wrap(errdefs.ErrInvalid, "docker's default seccomp profile", err)
		}
		return p, nil
	}
	if !path.IsAbs(cfg.Seccomp) {
		return nil, invalidf("seccomp profile %q: must be \"unconfined\", \"builtin\" or an absolute path", cfg.Seccomp)
	}
	body, err := h.readFile(cfg.Seccomp)
	if err != nil {
		return nil, errdefs.Wrap(errdefs.ErrInvalid, "opening seccomp profile "+cfg.Seccomp, err)
	}
	p, err := h.seccomp(body, s)
	if err != nil {
		return nil, errdefs.Wrap(errdefs.ErrInvalid, "seccomp profile "+cfg.Seccomp, err)
	}
	return p, nil
}
