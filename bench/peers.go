package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-run/berth/internal/testutil"
)

// peer is a peer engine, set up on first use, or why it cannot run here.
type peer struct {
	cli    *engine      // podman, docker
	bare   *bareRuntime // runc, crun
	socket string       // dockerd's API socket
	skip   string
}

// peerSetups make the peers, in the run's scope (torn down at its end).
var peerSetups = map[string]func(h *harness, p *peer){
	"podman": func(h *harness, p *peer) {
		pm := testutil.NewPodman(h.tb)
		p.cli = &engine{name: "podman", command: pm.Command, pull: []string{"--tls-verify=false"}}
	},
	"docker": func(h *harness, p *peer) {
		d := testutil.NewDockerd(h.tb)
		p.cli, p.socket = &engine{name: "docker", command: d.Command}, d.Socket
	},
	"runc": func(h *harness, p *peer) {
		bin := testutil.RequiresCommand(h.tb, "runc")
		p.bare = &bareRuntime{name: "runc", argv: []string{bin, "--root", h.tb.TempDir()}}
	},
	"crun": func(h *harness, p *peer) {
		bin := testutil.RequiresCommand(h.tb, "crun")
		th, err := newCgroupV1Thread()
		if err != nil {
			h.tb.Skip("crun: a thread without /sys/fs/cgroup/unified: ", err)
		}
		p.bare = &bareRuntime{name: "crun", argv: []string{bin, "--root", h.tb.TempDir()}, thread: th}
	},
}

// peer returns the named peer, setting it up the first time.
func (h *harness) peer(name string) *peer {
	h.mu.Lock()
	defer h.mu.Unlock()
	if p, ok := h.peers[name]; ok {
		return p
	}
	p := &peer{}
	h.logf("   setting up %s", name)
	if err := h.tb.do(func() { peerSetups[name](h, p) }); err != nil {
		p.skip = strings.TrimPrefix(err.Error(), "skipped: ")
		h.logf("   %s cannot run here: %s", name, p.skip)
	}
	h.peers[name] = p
	return p
}

// cliContenders returns a contender per docker-like engine (berth first,
// then podman and docker), made by mk; a peer that cannot run is skipped.
func (h *harness) cliContenders(t *tb, mk func(e *engine) *contender) []*contender {
	var cs []*contender
	add := func(e *engine) {
		var c *contender
		if err := t.do(func() { c = mk(e) }); err != nil {
			c = &contender{name: e.name, fail: err.Error()}
		}
		cs = append(cs, c)
	}
	add(h.berth)
	for _, name := range []string{"podman", "docker"} {
		if p := h.peer(name); p.skip != "" {
			cs = append(cs, &contender{name: name, skip: p.skip})
		} else {
			add(p.cli)
		}
	}
	return cs
}

// bareRuntime is an OCI runtime run on a bundle: runc or crun.
type bareRuntime struct {
	name   string
	argv   []string        // the command up to its verb: "runc --root DIR"
	thread *cgroupV1Thread // crun's commands start from it
}

// run runs the runtime with args.
func (b *bareRuntime) run(args ...string) error {
	cmd := exec.Command(b.argv[0], append(b.argv[1:], args...)...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	var err error
	if b.thread != nil {
		err = b.thread.run(cmd)
	} else {
		err = cmd.Run()
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", b.name, strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return nil
}

// cgroupV1Thread is an OS thread whose mount namespace is a private copy
// without /sys/fs/cgroup/unified, from which commands are started (they
// inherit its namespace). crun refuses this machine's cgroup v1/v2
// hybrid; without the unified mount it sees plain v1 (PEERS.md).
type cgroupV1Thread struct {
	reqs chan threadReq
}

type threadReq struct {
	cmd  *exec.Cmd
	done chan error
}

func newCgroupV1Thread() (*cgroupV1Thread, error) {
	th := &cgroupV1Thread{reqs: make(chan threadReq)}
	ready := make(chan error)
	go func() {
		// Never unlocked: the thread's namespace is not the process's;
		// it ends with the goroutine (which lives as long as the
		// process).
		runtime.LockOSThread()
		err := unix.Unshare(unix.CLONE_FS | unix.CLONE_NEWNS)
		if err == nil {
			err = unix.Mount("", "/", "", unix.MS_SLAVE|unix.MS_REC, "")
		}
		if err == nil {
			err = unix.Unmount("/sys/fs/cgroup/unified", unix.MNT_DETACH)
			if err == unix.EINVAL || err == unix.ENOENT {
				err = nil // not a hybrid
			}
		}
		ready <- err
		if err != nil {
			return
		}
		for r := range th.reqs {
			r.done <- r.cmd.Start()
		}
	}()
	if err := <-ready; err != nil {
		return nil, err
	}
	return th, nil
}

// run starts cmd from the thread and waits for it.
func (th *cgroupV1Thread) run(cmd *exec.Cmd) error {
	done := make(chan error)
	th.reqs <- threadReq{cmd, done}
	if err := <-done; err != nil {
		return err
	}
	return cmd.Wait()
}

// bundle returns an OCI bundle of busybox running /bin/true with the
// configuration berth's own `run --network none busybox true` executes
// (docker's namespaces, capabilities, seccomp profile, masked paths,
// devices), so that the bare runtimes run exactly what berth's does. Made
// once per run.
func (h *harness) bundle() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.bundleDir != "" {
		return h.bundleDir
	}
	t := h.tb
	dir := filepath.Join(h.work, "bundle")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	name := "bench-spec"
	h.berth.run(t, "run", "--name", name, "--network", "none", h.busybox, "true")
	defer h.berth.try("rm", "-f", name)
	id := strings.TrimSpace(h.berth.run(t, "inspect", "-f", "{{.Id}}", name))
	ctrDir := filepath.Join(h.work, "berth", "root", "containers", id)
	raw, err := os.ReadFile(filepath.Join(ctrDir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var spec specs.Spec
	if err := json.Unmarshal(raw, &spec); err != nil {
		t.Fatal(err)
	}
	spec.Version = "1.0.2" // crun 1.8 refuses newer versions
	spec.Root = &specs.Root{Path: testutil.CopyRootfs(t)}
	spec.Hooks = nil
	spec.Linux.CgroupsPath = "" // each runtime's default: the container's id below its own cgroup
	if r := spec.Linux.Resources; r != nil {
		// The spec's wildcard is an absent major/minor; runc also takes
		// docker's -1, crun does not.
		for i, d := range r.Devices {
			if d.Major != nil && *d.Major == -1 {
				r.Devices[i].Major = nil
			}
			if d.Minor != nil && *d.Minor == -1 {
				r.Devices[i].Minor = nil
			}
		}
	}
	for i, m := range spec.Mounts {
		if filepath.Dir(m.Source) != ctrDir {
			continue
		}
		// /etc/hosts, hostname, resolv.conf: copies in the bundle.
		b, err := os.ReadFile(m.Source)
		if err != nil {
			t.Fatal(err)
		}
		src := filepath.Join(dir, filepath.Base(m.Source))
		if err := os.WriteFile(src, b, 0o644); err != nil {
			t.Fatal(err)
		}
		spec.Mounts[i].Source = src
	}
	raw, _ = json.MarshalIndent(&spec, "", "\t")
	if err := os.WriteFile(filepath.Join(dir, "config.json"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	h.bundleDir = dir
	return dir
}
