package testutil

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Podman is podman confined to a scratch directory (its own root, run
// root, temp and network config), configured for this machine kind as
// ../shared/PEERS.md says: runc, cgroupfs, nofile and nproc within the hard
// limits. Use it as a peer in interop tests.
type Podman struct {
	t    testing.TB
	bin  string
	dir  string
	conf string
}

// podmanLeftovers are host paths podman writes even when confined; the
// test removes the ones that did not exist before it.
var podmanLeftovers = []string{"/run/containers", "/etc/containers/networks", "/etc/cni/net.d/cni.lock", "/run/libpod", "/dev/shm/libpod_lock"}

// NewPodman returns a confined podman, or skips (fails in strict mode)
// when podman is not installed. Cleanup removes its images, containers
// and scratch files.
func NewPodman(t testing.TB) *Podman {
	t.Helper()
	RequiresRoot(t)
	bin := RequiresCommand(t, "podman")
	dir := t.TempDir()
	conf := filepath.Join(dir, "containers.conf")
	err := os.WriteFile(conf, []byte(`[containers]
default_ulimits = ["nofile=20000:20000", "nproc=16384:16384"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
`), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	var existed []bool
	for _, p := range podmanLeftovers {
		_, err := os.Lstat(p)
		existed = append(existed, err == nil)
	}
	p := &Podman{t: t, bin: bin, dir: dir, conf: conf}
	t.Cleanup(func() {
		p.run("rm", "-a", "-f")
		p.run("rmi", "-a", "-f")
		// Storage may hold overlay mounts below dir.
		unmountBelow(dir)
		for i, path := range podmanLeftovers {
			if !existed[i] {
				os.RemoveAll(path)
			}
		}
	})
	return p
}

// Run runs podman with args and returns its standard output; a failure
// fails the test with podman's standard error.
func (p *Podman) Run(args ...string) string {
	p.t.Helper()
	out, errOut, err := p.run(args...)
	if err != nil {
		p.t.Fatalf("podman %s: %v\n%s", strings.Join(args, " "), err, errOut)
	}
	return out
}

// Command returns the confined podman command line with args, for a
// caller that runs it itself (a benchmark that times it, or runs several
// at once).
func (p *Podman) Command(args ...string) *exec.Cmd {
	full := append([]string{"--root", filepath.Join(p.dir, "root"), "--runroot", filepath.Join(p.dir, "run"),
		"--tmpdir", filepath.Join(p.dir, "tmp"), "--network-config-dir", filepath.Join(p.dir, "net")}, args...)
	cmd := exec.Command(p.bin, full...)
	cmd.Env = append(os.Environ(), "CONTAINERS_CONF="+p.conf)
	return cmd
}

func (p *Podman) run(args ...string) (string, string, error) { return output(p.Command(args...)) }
