package main

import (
	"errors"
	"os"
	"os/exec"
	"strings"
)

// peerPackages are the Debian packages of the peers and of the harness's
// tools, by a command each provides.
var peerPackages = []struct{ command, pkg string }{
	{"podman", "podman"},
	{"runc", "runc"},
	{"crun", "crun"},
	{"skopeo", "skopeo"},
	{"dockerd", "docker.io"},
	{"docker-registry", "docker-registry"},
	{"busybox", "busybox-static"},
	{"debootstrap", "debootstrap"},
}

// installPeers installs the packages of missing peers with apt-get. No
// service is started by the installation (a policy-rc.d that refuses
// them is in place meanwhile): dockerd is started by the harness, in its
// own scratch root.
func installPeers(logf func(string, ...any)) error {
	var missing []string
	for _, p := range peerPackages {
		if _, err := exec.LookPath(p.command); err != nil {
			missing = append(missing, p.pkg)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	logf("installing %s", strings.Join(missing, " "))
	const policy = "/usr/sbin/policy-rc.d"
	if _, err := os.Lstat(policy); errors.Is(err, os.ErrNotExist) {
		if err := os.WriteFile(policy, []byte("#!/bin/sh\nexit 101\n"), 0o755); err == nil {
			defer os.Remove(policy)
		}
	}
	env := append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	update := exec.Command("apt-get", "update", "-qq")
	update.Env = env
	if out, err := update.CombinedOutput(); err != nil {
		return errors.New("apt-get update: " + err.Error() + ": " + string(out))
	}
	install := exec.Command("apt-get", append([]string{"install", "-y", "-qq", "--no-install-recommends"}, missing...)...)
	install.Env = env
	if out, err := install.CombinedOutput(); err != nil {
		return errors.New("apt-get install: " + err.Error() + ": " + string(out))
	}
	return nil
}
