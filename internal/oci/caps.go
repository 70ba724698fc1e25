package oci

import (
	"fmt"
	"slices"
	"strings"

	"github.com/berth-run/berth/internal/errdefs"
)

// capNames are the Linux capabilities by number (linux/capability.h).
var capNames = [...]string{
	"CAP_CHOWN",              // 0
	"CAP_DAC_OVERRIDE",       // 1
	"CAP_DAC_READ_SEARCH",    // 2
	"CAP_FOWNER",             // 3
	"CAP_FSETID",             // 4
	"CAP_KILL",               // 5
	"CAP_SETGID",             // 6
	"CAP_SETUID",             // 7
	"CAP_SETPCAP",            // 8
	"CAP_LINUX_IMMUTABLE",    // 9
	"CAP_NET_BIND_SERVICE",   // 10
	"CAP_NET_BROADCAST",      // 11
	"CAP_NET_ADMIN",          // 12
	"CAP_NET_RAW",            // 13
	"CAP_IPC_LOCK",           // 14
	"CAP_IPC_OWNER",          // 15
	"CAP_SYS_MODULE",         // 16
	"CAP_SYS_RAWIO",          // 17
	"CAP_SYS_CHROOT",         // 18
	"CAP_SYS_PTRACE",         // 19
	"CAP_SYS_PACCT",          // 20
	"CAP_SYS_ADMIN",          // 21
	"CAP_SYS_BOOT",           // 22
	"CAP_SYS_NICE",           // 23
	"CAP_SYS_RESOURCE",       // 24
	"CAP_SYS_TIME",           // 25
	"CAP_SYS_TTY_CONFIG",     // 26
	"CAP_MKNOD",              // 27
	"CAP_LEASE",              // 28
	"CAP_AUDIT_WRITE",        // 29
	"CAP_AUDIT_CONTROL",      // 30
	"CAP_SETFCAP",            // 31
	"CAP_MAC_OVERRIDE",       // 32
	"CAP_MAC_ADMIN",          // 33
	"CAP_SYSLOG",             // 34
	"CAP_WAKE_ALARM",         // 35
	"CAP_BLOCK_SUSPEND",      // 36
	"CAP_AUDIT_READ",         // 37
	"CAP_PERFMON",            // 38
	"CAP_BPF",                // 39
	"CAP_CHECKPOINT_RESTORE", // 40
}

// defaultCaps is docker's default capability set (moby
// daemon/pkg/oci/caps/defaults.go), in docker's order. As a bitmask it is
// 0x00000000a80425fb, the CapEff of a default container's PID 1.
var defaultCaps = []string{
	"CAP_CHOWN",
	"CAP_DAC_OVERRIDE",
	"CAP_FSETID",
	"CAP_FOWNER",
	"CAP_MKNOD",
	"CAP_NET_RAW",
	"CAP_SETGID",
	"CAP_SETUID",
	"CAP_SETFCAP",
	"CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE",
	"CAP_SYS_CHROOT",
	"CAP_KILL",
	"CAP_AUDIT_WRITE",
}

// DefaultCapabilities returns docker's default capability set.
func DefaultCapabilities() []string { return slices.Clone(defaultCaps) }

// CapabilityNames returns the names of all capabilities berth knows, by
// number.
func CapabilityNames() []string { return slices.Clone(capNames[:]) }

const allCaps = "ALL"

// NormalizeCapability turns a docker capability name ("net_admin",
// "CAP_NET_ADMIN", "Net_Admin") into its canonical form ("CAP_NET_ADMIN");
// "all" becomes "ALL". An unknown name is an ErrInvalid error.
func NormalizeCapability(name string) (string, error) {
	c := strings.ToUpper(strings.TrimSpace(name))
	if c == allCaps {
		return c, nil
	}
	if !strings.HasPrefix(c, "CAP_") {
		c = "CAP_" + c
	}
	if !slices.Contains(capNames[:], c) {
		return "", errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("unknown capability: %q", name))
	}
	return c, nil
}

// capsFromMask returns the names of the capabilities set in mask, up to
// last (the kernel's cap_last_cap), in number order.
func capsFromMask(mask uint64, last int) []string {
	var out []string
	for i := 0; i <= last && i < len(capNames) && i < 64; i++ {
		if mask&(1<<uint(i)) != 0 {
			out = append(out, capNames[i])
		}
	}
	return out
}

// capabilities computes the container's capability set as docker's
// caps.TweakCapabilities does: privileged gets every capability of the
// caller; otherwise the default set minus drops plus adds, with "ALL" in
// adds meaning every available capability except the dropped ones, and
// "ALL" in drops meaning only the added ones. A known capability that the
// caller itself lacks cannot be added (docker: "not available in the
// current environment").
func capabilities(cfg *Config, h *host) ([]string, error) {
	available := capsFromMask(h.effectiveCaps, h.capLast)
	if cfg.Privileged {
		return available, nil
	}
	if len(cfg.CapAdd) == 0 && len(cfg.CapDrop) == 0 {
		return DefaultCapabilities(), nil
	}
	norm := func(list []string) ([]string, error) {
		out := make([]string, 0, len(list))
		for _, n := range list {
			c, err := NormalizeCapability(n)
			if err != nil {
				return nil, err
			}
			if c != allCaps && !slices.Contains(available, c) {
				return nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf(
					"capability not supported by the kernel or not available to this process: %q", c))
			}
			out = append(out, c)
		}
		return out, nil
	}
	drops, err := norm(cfg.CapDrop)
	if err != nil {
		return nil, err
	}
	adds, err := norm(cfg.CapAdd)
	if err != nil {
		return nil, err
	}
	var out []string
	switch {
	case slices.Contains(adds, allCaps):
		for _, c := range available {
			if !slices.Contains(drops, c) {
				out = append(out, c)
			}
		}
	case slices.Contains(drops, allCaps):
		out = append(out, adds...)
	default:
		for _, c := range defaultCaps {
			if !slices.Contains(drops, c) {
				out = append(out, c)
			}
		}
		out = append(out, adds...)
	}
	return dedup(out), nil
}

// dedup removes repeated strings, keeping the first of each.
func dedup(list []string) []string {
	seen := make(map[string]bool, len(list))
	out := list[:0:0]
	for _, s := range list {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
