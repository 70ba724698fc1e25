package testutil

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Dockerd is Debian's dockerd (docker.io) confined to a scratch directory
// as ../shared/PEERS.md says: its own data root, exec root, socket and
// pid file, ulimits within the machine's hard limits. It starts its own
// containerd. Its bridge and iptables rules go into the network namespace
// of the caller: run it in one of the test's own.
type Dockerd struct {
	t      testing.TB
	client string
	// Socket is the path of its API socket (DOCKER_HOST=unix://Socket).
	Socket string
}

// dockerLeftovers are host paths dockerd writes even when confined.
var dockerLeftovers = []string{"/etc/docker/key.json"}

// NewDockerd starts a confined dockerd and waits until it answers, or
// skips (fails in strict mode) when docker.io is not installed. Cleanup
// removes its containers, stops it and removes what it wrote outside its
// directory.
func NewDockerd(t testing.TB) *Dockerd {
	t.Helper()
	RequiresRoot(t)
	bin := RequiresCommand(t, "dockerd")
	// Debian's client, which matches the daemon's API; a newer client in
	// /usr/local/bin may shadow it on PATH.
	client := "/usr/bin/docker"
	if _, err := os.Stat(client); err != nil {
		client = RequiresCommand(t, "docker")
	}
	dir := t.TempDir()
	for _, d := range []string{"data", "exec"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	var existed []bool
	for _, p := range dockerLeftovers {
		_, err := os.Lstat(p)
		existed = append(existed, err == nil)
	}
	logPath := filepath.Join(dir, "dockerd.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	d := &Dockerd{t: t, client: client, Socket: filepath.Join(dir, "docker.sock")}
	// Its containers' cgroups go below a parent of its own (docker's
	// default, /docker, would be shared and stay), removed at the end.
	cgParent := fmt.Sprintf("berth-test-dockerd-%d", os.Getpid())
	cmd := exec.Command(bin, "--data-root", filepath.Join(dir, "data"), "--exec-root", filepath.Join(dir, "exec"),
		"-H", "unix://"+d.Socket, "--pidfile", filepath.Join(dir, "docker.pid"), "--cgroup-parent", "/"+cgParent,
		"--default-ulimit", "nofile=20000:20000", "--default-ulimit", "nproc=16384:16384")
	cmd.Stdout, cmd.Stderr = logf, logf
	exited, err := startTied(cmd, func() { logf.Close() })
	if err != nil {
		t.Fatalf("start dockerd: %v", err)
	}
	t.Cleanup(func() {
		if ids, _, err := d.run("ps", "-aq"); err == nil && strings.TrimSpace(ids) != "" {
			d.run(append([]string{"rm", "-f"}, strings.Fields(ids)...)...)
		}
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		unmountBelow(dir)
		// Empty by now: rmdir removes nothing else.
		parents, _ := filepath.Glob("/sys/fs/cgroup/*/" + cgParent)
		if p := "/sys/fs/cgroup/" + cgParent; isDir(p) {
			parents = append(parents, p) // cgroup v2
		}
		for _, p := range parents {
			removeEmptyCgroups(p)
		}
		for i, p := range dockerLeftovers {
			if !existed[i] {
				os.RemoveAll(p)
			}
		}
	})
	deadline := time.Now().Add(time.Minute)
	for {
		if _, _, err := d.run("version"); err == nil {
			return d
		}
		select {
		case <-exited:
			log, _ := os.ReadFile(logPath)
			t.Fatalf("dockerd exited:\n%s", log)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(logPath)
			t.Fatalf("dockerd did not start:\n%s", log)
		}
	}
}

// Command returns the docker client's command line on this daemon with
// args, for a caller that runs it itself.
func (d *Dockerd) Command(args ...string) *exec.Cmd {
	return exec.Command(d.client, append([]string{"-H", "unix://" + d.Socket}, args...)...)
}

// Run runs the docker client with args and returns its standard output;
// a failure fails the test with the client's standard error.
func (d *Dockerd) Run(args ...string) string {
	d.t.Helper()
	out, errOut, err := d.run(args...)
	if err != nil {
		d.t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, errOut)
	}
	return out
}

func (d *Dockerd) run(args ...string) (string, string, error) { return output(d.Command(args...)) }

// output runs cmd and returns its standard output and error.
func output(cmd *exec.Cmd) (string, string, error) {
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// removeEmptyCgroups removes the cgroup directory dir and those below it,
// deepest first; a cgroup that still has processes stays.
func removeEmptyCgroups(dir string) {
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if e.IsDir() {
			removeEmptyCgroups(filepath.Join(dir, e.Name()))
		}
	}
	os.Remove(dir)
}
