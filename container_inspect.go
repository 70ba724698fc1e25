package berth

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-run/berth/internal/store"
)

// ContainerInspect is a container's description in the shape of `docker
// inspect` (field names and JSON keys as docker's).
type ContainerInspect struct {
	ID              string `json:"Id"`
	Created         string
	Path            string
	Args            []string
	State           InspectState
	Image           string
	ResolvConfPath  string
	HostnamePath    string
	HostsPath       string
	LogPath         string
	Name            string
	RestartCount    int
	Driver          string
	Platform        string
	MountLabel      string
	ProcessLabel    string
	AppArmorProfile string
	ExecIDs         []string
	HostConfig      InspectHostConfig
	GraphDriver     GraphDriver
	Mounts          []MountPoint
	Config          InspectConfig
	NetworkSettings InspectNetworkSettings
}

// InspectState is the State section of ContainerInspect.
type InspectState struct {
	Status     string
	Running    bool
	Paused     bool
	Restarting bool
	OOMKilled  bool
	Dead       bool
	Pid        int
	ExitCode   int
	Error      string
	StartedAt  string
	FinishedAt string
}

// InspectHostConfig is the HostConfig section of ContainerInspect.
type InspectHostConfig struct {
	Binds             []string
	NetworkMode       string
	PortBindings      map[string][]PortBindingJSON
	RestartPolicy     RestartPolicy
	AutoRemove        bool
	VolumesFrom       []string
	CapAdd            []string
	CapDrop           []string
	DNS               []string `json:"Dns"`
	DNSOptions        []string `json:"DnsOptions"`
	DNSSearch         []string `json:"DnsSearch"`
	ExtraHosts        []string
	GroupAdd          []string
	IpcMode           string
	PidMode           string
	UTSMode           string
	Privileged        bool
	PublishAllPorts   bool
	ReadonlyRootfs    bool
	SecurityOpt       []string
	Tmpfs             map[string]string `json:",omitempty"`
	ShmSize           int64
	Memory            int64
	MemorySwap        int64
	MemoryReservation int64
	NanoCpus          int64 `json:"NanoCpus"`
	CPUShares         int64 `json:"CpuShares"`
	CPUPeriod         int64 `json:"CpuPeriod"`
	CPUQuota          int64 `json:"CpuQuota"`
	CpusetCpus        string
	CpusetMems        string
	PidsLimit         *int64
	BlkioWeight       uint16
	OomKillDisable    bool
	Ulimits           []Ulimit
	Sysctls           map[string]string `json:",omitempty"`
	CgroupParent      string
	Init              *bool `json:",omitempty"`
}

// PortBindingJSON is a host binding of a port, as docker prints it.
type PortBindingJSON struct {
	HostIP   string `json:"HostIp"`
	HostPort string
}

// InspectConfig is the Config section of ContainerInspect.
type InspectConfig struct {
	Hostname     string
	Domainname   string
	User         string
	AttachStdin  bool
	AttachStdout bool
	AttachStderr bool
	ExposedPorts map[string]struct{} `json:",omitempty"`
	Tty          bool
	OpenStdin    bool
	StdinOnce    bool
	Env          []string
	Cmd          []string
	Image        string
	Volumes      map[string]struct{}
	WorkingDir   string
	Entrypoint   []string
	OnBuild      []string
	Labels       map[string]string
	StopSignal   string `json:",omitempty"`
	StopTimeout  *int   `json:",omitempty"`
}

// InspectNetworkSettings is the NetworkSettings section of
// ContainerInspect.
type InspectNetworkSettings struct {
	Bridge      string
	SandboxID   string
	SandboxKey  string
	Ports       map[string][]PortBindingJSON
	Gateway     string
	IPAddress   string
	IPPrefixLen int
	MacAddress  string
	Networks    map[string]*InspectEndpoint
}

// InspectEndpoint is one network of InspectNetworkSettings.
type InspectEndpoint struct {
	Aliases     []string
	NetworkID   string
	EndpointID  string
	Gateway     string
	IPAddress   string
	IPPrefixLen int
	MacAddress  string
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return "0001-01-01T00:00:00Z"
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// Inspect describes the container in the shape of `docker inspect`.
func (c *Container) Inspect(ctx context.Context) (*ContainerInspect, error) {
	r := c.rt
	// A fresh record (a rename, new mounts); the handle's own record is
	// left alone: the goroutine that finalizes the container reads it.
	rec, err := r.readRecord(c.rec.ID)
	if err != nil {
		return nil, err
	}
	st, err := r.reconcile(ctx, rec.ID)
	if err != nil {
		return nil, err
	}
	ps := publicState(st)
	dir := r.containerDir(rec.ID)
	spec := rec.Spec
	out := &ContainerInspect{
		ID:      rec.ID,
		Created: formatTime(rec.Created),
		Path:    rec.Path,
		Args:    nonNil(rec.Args),
		State: InspectState{Status: st.Status, Running: ps.Running, Paused: ps.Paused, Restarting: st.Status == StatusRestarting,
			OOMKilled: st.OOMKilled, Dead: st.Status == StatusDead, Pid: ps.Pid, ExitCode: st.ExitCode, Error: st.Error,
			StartedAt: formatTime(st.StartedAt), FinishedAt: formatTime(st.FinishedAt)},
		Image:          rec.Image.String(),
		ResolvConfPath: filepath.Join(dir, "resolv.conf"),
		HostnamePath:   filepath.Join(dir, "hostname"),
		HostsPath:      filepath.Join(dir, "hosts"),
		LogPath:        filepath.Join(dir, logFileName),
		Name:           "/" + rec.Name,
		RestartCount:   st.RestartCount,
		Driver:         "overlay",
		Platform:       "linux",
		Mounts:         rec.Mounts,
		HostConfig: InspectHostConfig{
			NetworkMode: networkMode(&spec), RestartPolicy: spec.RestartPolicy, AutoRemove: spec.AutoRemove,
			VolumesFrom: spec.VolumesFrom, CapAdd: spec.CapAdd, CapDrop: spec.CapDrop, DNS: spec.DNS,
			DNSOptions: spec.DNSOptions, DNSSearch: spec.DNSSearch, ExtraHosts: spec.ExtraHosts, GroupAdd: spec.GroupAdd,
			IpcMode: spec.IpcMode, PidMode: spec.PidMode, UTSMode: spec.UTSMode, Privileged: spec.Privileged,
			PublishAllPorts: spec.PublishAll, ReadonlyRootfs: spec.ReadOnly, SecurityOpt: spec.SecurityOpt,
			ShmSize: spec.ShmSize, Memory: spec.Resources.Memory, MemorySwap: spec.Resources.MemorySwap,
			MemoryReservation: spec.Resources.MemoryReservation, NanoCpus: spec.Resources.NanoCPUs,
			CPUShares: spec.Resources.CPUShares, CPUPeriod: spec.Resources.CPUPeriod, CPUQuota: spec.Resources.CPUQuota,
			CpusetCpus: spec.Resources.CpusetCpus, CpusetMems: spec.Resources.CpusetMems, BlkioWeight: spec.Resources.BlkioWeight,
			OomKillDisable: spec.Resources.OomKillDisable, Ulimits: spec.Ulimits, Sysctls: spec.Sysctls,
			CgroupParent: spec.CgroupParent, PortBindings: map[string][]PortBindingJSON{},
		},
		NetworkSettings: InspectNetworkSettings{Ports: map[string][]PortBindingJSON{}, Networks: map[string]*InspectEndpoint{}},
	}
	if out.Mounts == nil {
		out.Mounts = []MountPoint{}
	}
	if spec.Resources.PidsLimit != 0 {
		out.HostConfig.PidsLimit = &spec.Resources.PidsLimit
	}
	if spec.Init {
		t := true
		out.HostConfig.Init = &t
	}
	out.HostConfig.Binds, out.HostConfig.Tmpfs = inspectBinds(spec.Mounts), inspectTmpfs(spec.Mounts)
	for _, p := range spec.Ports {
		key := fmt.Sprintf("%d/%s", p.ContainerPort, protoOr(p.Protocol))
		hp := ""
		if p.HostPort != 0 {
			hp = fmt.Sprint(p.HostPort)
		}
		out.HostConfig.PortBindings[key] = append(out.HostConfig.PortBindings[key], PortBindingJSON{HostIP: p.HostIP, HostPort: hp})
	}
	var lowers []string
	for i := len(rec.Layers) - 1; i >= 0; i-- {
		lowers = append(lowers, r.store.LayerDir(rec.Layers[i]))
	}
	out.GraphDriver = GraphDriver{Name: "overlay", Data: map[string]string{
		"LowerDir": strings.Join(lowers, ":"), "MergedDir": filepath.Join(dir, "rootfs"),
		"UpperDir": filepath.Join(dir, "upper"), "WorkDir": filepath.Join(dir, "work")}}
	// Config: the image's config combined with the spec, as docker keeps it.
	cfg := InspectConfig{User: spec.User, Tty: spec.Tty, OpenStdin: spec.OpenStdin, AttachStdout: true, AttachStderr: true,
		Image: rec.ImageName, WorkingDir: spec.WorkingDir, Labels: spec.Labels, StopSignal: spec.StopSignal,
		StopTimeout: spec.StopTimeout, Hostname: spec.Hostname, Domainname: spec.Domainname}
	if cfg.Labels == nil {
		cfg.Labels = map[string]string{}
	}
	if im, err := r.imageOfRecord(rec); err == nil {
		ic := im.config.Config
		cfg.ExposedPorts, cfg.Volumes, cfg.OnBuild = ic.ExposedPorts, inspectVolumes(ic.Volumes, spec.Mounts), nil
		if cfg.User == "" {
			cfg.User = ic.User
		}
		if cfg.WorkingDir == "" {
			cfg.WorkingDir = ic.WorkingDir
		}
		if cfg.StopSignal == "" {
			cfg.StopSignal = ic.StopSignal
		}
		for k, v := range ic.Labels {
			if _, ok := cfg.Labels[k]; !ok {
				cfg.Labels[k] = v
			}
		}
		cfg.Entrypoint, cfg.Cmd = ic.Entrypoint, ic.Cmd
		if spec.Entrypoint != nil {
			cfg.Entrypoint, cfg.Cmd = spec.Entrypoint, nil
		}
		if len(spec.Cmd) > 0 {
			cfg.Cmd = spec.Cmd
		}
		cfg.Env = ic.Env
	}
	var gen specs.Spec
	if store.ReadJSON(filepath.Join(dir, "config.json"), &gen) == nil && gen.Process != nil {
		cfg.Env = gen.Process.Env
		if cfg.Hostname == "" {
			cfg.Hostname = gen.Hostname
		}
	} else {
		cfg.Env = append(cfg.Env, spec.Env...)
	}
	if cfg.Hostname == "" {
		cfg.Hostname = rec.ID[:12]
	}
	out.Config = cfg
	if ns := rec.Network; ns != nil {
		out.NetworkSettings.SandboxKey = ns.NetNS
		for _, p := range ns.Ports {
			key := fmt.Sprintf("%d/%s", p.ContainerPort, protoOr(p.Protocol))
			hostIP := p.HostIP
			if hostIP == "" {
				hostIP = "0.0.0.0"
			}
			out.NetworkSettings.Ports[key] = append(out.NetworkSettings.Ports[key], PortBindingJSON{HostIP: hostIP, HostPort: fmt.Sprint(p.HostPort)})
		}
		for name, ep := range ns.Networks {
			out.NetworkSettings.Networks[name] = &InspectEndpoint{Aliases: ep.Aliases, NetworkID: ep.NetworkID, EndpointID: ep.EndpointID,
				Gateway: ep.Gateway, IPAddress: ep.IPAddress, IPPrefixLen: ep.IPPrefixLen, MacAddress: ep.MacAddress}
			if name == "bridge" || len(ns.Networks) == 1 {
				out.NetworkSettings.Gateway, out.NetworkSettings.IPAddress = ep.Gateway, ep.IPAddress
				out.NetworkSettings.IPPrefixLen, out.NetworkSettings.MacAddress = ep.IPPrefixLen, ep.MacAddress
			}
		}
	}
	return out, nil
}

func protoOr(p string) string {
	if p == "" {
		return "tcp"
	}
	return p
}
