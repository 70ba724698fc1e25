package oci

import (
	"path"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// validDeviceMode reports whether mode is a non-empty combination of r, w
// and m, each at most once (docker's validDeviceMode).
func validDeviceMode(mode string) bool {
	if mode == "" || len(mode) > 3 {
		return false
	}
	seen := map[rune]bool{}
	for _, c := range mode {
		if (c != 'r' && c != 'w' && c != 'm') || seen[c] {
			return false
		}
		seen[c] = true
	}
	return true
}

// devices computes the container's device nodes and device cgroup rules as
// docker's WithDevices does: the defaults plus each --device (a node, or
// every node under a directory) with its permissions; for a privileged
// container every host device, the mapped devices whose path differs, and
// one rule allowing everything.
func devices(cfg *Config, h *host) ([]specs.LinuxDevice, []specs.LinuxDeviceCgroup, error) {
	var devs []specs.LinuxDevice
	rules := defaultDeviceRules()
	if cfg.Privileged {
		hostDevs, err := h.hostDevices()
		if err != nil {
			return nil, nil, invalidf("listing the host's devices: %v", err)
		}
		for _, d := range hostDevs {
			// /dev/ptmx is the runtime's symlink to pts/ptmx (runc replaces
			// the node with it too).
			if d.Path != "/dev/ptmx" {
				devs = append(devs, d)
			}
		}
		rules = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
	}
	for _, d := range cfg.Devices {
		if !path.IsAbs(d.PathOnHost) {
			return nil, nil, invalidf("device %q: the host path must be absolute", d.PathOnHost)
		}
		inCtr := d.PathInContainer
		if inCtr == "" {
			inCtr = d.PathOnHost
		}
		if _, err := checkDestination(inCtr); err != nil {
			return nil, nil, invalidf("device %s: invalid path in container %q", d.PathOnHost, inCtr)
		}
		inCtr = path.Clean(inCtr)
		perms := d.CgroupPermissions
		if perms == "" {
			perms = "rwm"
		}
		if !validDeviceMode(perms) {
			return nil, nil, invalidf("device %s: invalid cgroup permissions %q (a combination of r, w and m)", d.PathOnHost, perms)
		}
		if cfg.Privileged && path.Clean(d.PathOnHost) == inCtr {
			continue // already there with all the host's devices
		}
		found, err := h.devicesFromPath(d.PathOnHost)
		if err != nil {
			return nil, nil, invalidf("error gathering device information while adding custom device %q: %v", d.PathOnHost, err)
		}
		if len(found) == 0 {
			return nil, nil, invalidf("error gathering device information while adding custom device %q: not a device node", d.PathOnHost)
		}
		root := path.Clean(d.PathOnHost)
		for _, dev := range found {
			if dev.Path == root {
				dev.Path = inCtr
			} else {
				dev.Path = path.Join(inCtr, strings.TrimPrefix(dev.Path, root+"/"))
			}
			devs = append(devs, dev)
			if !cfg.Privileged {
				rules = append(rules, devRule(true, dev.Type, dev.Major, dev.Minor, perms))
			}
		}
	}
	// The defaults first, unless a device is already at their path.
	have := map[string]bool{}
	for _, d := range devs {
		have[d.Path] = true
	}
	out := make([]specs.LinuxDevice, 0, len(devs)+6)
	for _, d := range defaultDevices() {
		if !have[d.Path] {
			out = append(out, d)
		}
	}
	for _, d := range devs {
		if !have[d.Path] {
			continue // a repeated path: keep the first
		}
		delete(have, d.Path)
		out = append(out, d)
	}
	return out, rules, nil
}
