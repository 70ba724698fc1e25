package oci

import (
	"strings"
)

// ipcSysctls are the IPC-namespaced kernel parameters docker accepts.
var ipcSysctls = map[string]bool{
	"kernel.msgmax":          true,
	"kernel.msgmnb":          true,
	"kernel.msgmni":          true,
	"kernel.sem":             true,
	"kernel.shmall":          true,
	"kernel.shmmax":          true,
	"kernel.shmmni":          true,
	"kernel.shm_rmid_forced": true,
}

// validSysctlName rejects names that cannot be a /proc/sys path: empty
// components, slashes (a runtime turns dots into slashes), NUL bytes.
func validSysctlName(k string) bool {
	if k == "" || strings.ContainsAny(k, "/\x00 \t\n") {
		return false
	}
	for c := range strings.SplitSeq(k, ".") {
		if c == "" {
			return false
		}
	}
	return true
}

// checkSysctls validates the user's sysctls: docker's namespaced list
// (docker/cli opts.ValidateSysctl), and runc's rule that a namespaced
// parameter needs its namespace to be the container's (net.* is refused
// with the host's network namespace, IPC ones with the host's IPC
// namespace).
func checkSysctls(sysctls map[string]string, cfg *Config) error {
	for k, v := range sysctls {
		if !validSysctlName(k) {
			return invalidf("sysctl %q is not a valid name", k)
		}
		if strings.ContainsRune(v, 0) {
			return invalidf("sysctl %s: value contains a NUL byte", k)
		}
		switch {
		case strings.HasPrefix(k, "net."):
			if cfg.NetNS == "host" {
				return invalidf("sysctl %q is not allowed in the host network namespace", k)
			}
		case ipcSysctls[k] || strings.HasPrefix(k, "fs.mqueue."):
			if cfg.IPCMode == "host" {
				return invalidf("sysctl %q is not allowed in the host IPC namespace", k)
			}
		default:
			return invalidf("sysctl %q is not allowed: only net.*, kernel.shm*, kernel.msg*, kernel.sem and fs.mqueue.* are namespaced", k)
		}
	}
	return nil
}
