package berth

import (
	"io"
	"os"
	"strings"

	"github.com/berth-run/berth/internal/oci"
	"github.com/berth-run/berth/internal/opts"
	"github.com/berth-run/berth/internal/portmap"
)

// Parsers for docker's command-line value syntaxes, for programs that take
// docker-style options (the berth CLI uses them). Each returns an
// ErrInvalid error naming the bad value.

// ParsePorts parses docker -p values: "8080:80", "127.0.0.1:8080:80",
// "127.0.0.1::80", "80", "53:53/udp", "8000-8010:80-90", "[::1]:8080:80".
func ParsePorts(values ...string) ([]PortBinding, error) {
	pms, err := portmap.ParseAll(values)
	if err != nil {
		return nil, err
	}
	out := make([]PortBinding, 0, len(pms))
	for _, p := range pms {
		b := PortBinding{HostPort: p.HostPort, HostPortEnd: p.HostPortEnd, ContainerPort: p.ContainerPort, Protocol: p.Protocol}
		if p.HostIP.IsValid() {
			b.HostIP = p.HostIP.String()
		}
		out = append(out, b)
	}
	return out, nil
}

func mountOf(m opts.Mount) Mount {
	return Mount{Type: m.Type, Source: m.Source, Target: m.Target, ReadOnly: m.ReadOnly, Propagation: m.Propagation,
		NoCopy: m.NoCopy, CreateSource: m.CreateSource, TmpfsSize: m.TmpfsSize, TmpfsMode: uint32(m.TmpfsMode), Options: m.Options}
}

// ParseVolume parses a docker -v value: "/host:/ctr[:ro]", "name:/ctr",
// "/ctr" (an anonymous volume).
func ParseVolume(value string) (Mount, error) {
	m, err := opts.ParseVolume(value)
	if err != nil {
		return Mount{}, err
	}
	out := mountOf(m)
	out.CreateSource = out.Type == MountTypeBind // -v makes a missing host directory, as docker
	return out, nil
}

// ParseMount parses a docker --mount value:
// "type=bind,source=/host,target=/ctr,readonly".
func ParseMount(value string) (Mount, error) {
	m, err := opts.ParseMount(value)
	if err != nil {
		return Mount{}, err
	}
	return mountOf(m), nil
}

// ParseTmpfs parses a docker --tmpfs value: "/path[:options]".
func ParseTmpfs(value string) (Mount, error) {
	m, err := opts.ParseTmpfs(value)
	if err != nil {
		return Mount{}, err
	}
	return mountOf(m), nil
}

// ParseMemory parses a docker memory size: "32m", "1g", "512k", bytes.
func ParseMemory(value string) (int64, error) { return opts.ParseMemory(value) }

// ParseMemorySwap parses docker's --memory-swap: a size or -1.
func ParseMemorySwap(value string) (int64, error) { return opts.ParseMemorySwap(value) }

// ParseCPUs parses docker's --cpus ("1.5") into NanoCPUs.
func ParseCPUs(value string) (int64, error) { return opts.ParseCPUs(value) }

// ParseUlimit parses docker's --ulimit: "nofile=1024:2048", "nproc=512".
func ParseUlimit(value string) (Ulimit, error) {
	u, err := opts.ParseUlimit(value)
	if err != nil {
		return Ulimit{}, err
	}
	limit := func(v uint64) int64 {
		if v == oci.RlimitInfinity {
			return -1
		}
		return int64(v)
	}
	return Ulimit{Name: u.Name, Soft: limit(u.Soft), Hard: limit(u.Hard)}, nil
}

// ParseRestartPolicy parses docker's --restart: "no", "always",
// "unless-stopped", "on-failure[:N]".
func ParseRestartPolicy(value string) (RestartPolicy, error) {
	p, err := opts.ParseRestartPolicy(value)
	if err != nil {
		return RestartPolicy{}, err
	}
	return RestartPolicy{Name: p.Name, MaximumRetryCount: p.MaxRetries}, nil
}

// ParseDevice parses docker's --device: "/dev/x[:/dev/y][:rwm]".
func ParseDevice(value string) (Device, error) {
	d, err := opts.ParseDevice(value)
	if err != nil {
		return Device{}, err
	}
	return Device{PathOnHost: d.PathOnHost, PathInContainer: d.PathInContainer, CgroupPermissions: d.CgroupPermissions}, nil
}

// ParseEnv parses a docker -e value: "KEY=VALUE", or "KEY" to take the
// value from this process's environment (dropped when unset).
func ParseEnv(value string) (string, error) { return opts.ParseEnv(value, os.LookupEnv) }

// ParseEnvFile parses a docker --env-file.
func ParseEnvFile(r io.Reader) ([]string, error) { return opts.ParseEnvFile(r, os.LookupEnv) }

// ParseLabel parses a docker --label value: "key=value" or "key".
func ParseLabel(value string) (string, string, error) { return opts.ParseLabel(value) }

// ParseSignal parses a signal name ("SIGTERM", "TERM", "term") or number.
func ParseSignal(value string) (int, error) {
	s, err := oci.ParseSignal(strings.TrimSpace(value))
	return int(s), err
}
