package runtime

import (
	"errors"
	"fmt"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-run/berth/internal/errdefs"
)

// runInitStage is the container's init: it prepares the container from
// the config it receives, reports "ready", blocks on the start socket
// until Start, and execs the user's process. It runs on the locked main thread
// and never returns.
func runInitStage(sock *syncSocket, sockFd int) {
	cfg := receiveConfig(sock)
	startFd := sockFd + 1
	unix.CloseOnExec(startFd)
	unix.Umask(0)
	if err := prepareInit(sock, cfg); err != nil {
		stageFail(sock, err)
	}
	path := ""
	if cfg.Process != nil {
		var err error
		if path, err = lookPath(cfg.Process); err != nil {
			stageFail(sock, err)
		}
	}
	if err := sock.send(&message{Type: msgReady}); err != nil {
		os.Exit(125)
	}
	// Created: wait for Start. The parent may be gone from here on
	// (OCI create): errors go to the starter's connection and stderr.
	conn, err := waitStart(startFd)
	if err != nil {
		stageFail(nil, err)
	}
	fail := func(err error) {
		reportStart(conn, err)
		stageFail(nil, err)
	}
	if cfg.Process == nil {
		fail(errdefs.New(errdefs.ErrInvalid, "the container has no process to start"))
	}
	if h := cfg.Spec.Hooks; h != nil && len(h.StartContainer) > 0 {
		if err := runHooks(h.StartContainer, "startContainer", childHookState(cfg, StatusCreated)); err != nil {
			fail(err)
		}
	}
	cfg.startConn = conn
	execProcess(sock, cfg, path)
}

// prepareInit does everything between the clone and the "ready" report.
func prepareInit(sock *syncSocket, cfg *stageConfig) error {
	spec := cfg.Spec
	if spec.Linux == nil {
		spec.Linux = &specs.Linux{}
	}
	if cfg.NewCgroupNS {
		if err := unix.Unshare(unix.CLONE_NEWCGROUP); err != nil {
			return fmt.Errorf("unshare cgroup namespace: %w", err)
		}
	}
	if spec.Process != nil && spec.Process.OOMScoreAdj != nil {
		if err := os.WriteFile("/proc/self/oom_score_adj", fmt.Appendf(nil, "%d", *spec.Process.OOMScoreAdj), 0); err != nil {
			return fmt.Errorf("set oom_score_adj: %w", err)
		}
	}
	hasMntNS := hasNewNamespace(spec, specs.MountNamespace)
	if hasMntNS {
		if err := prepareRootfs(cfg); err != nil {
			return err
		}
	}
	if cfg.ParentHooks {
		if err := sock.send(&message{Type: msgHooks}); err != nil {
			return err
		}
		m, _, err := sock.recv()
		if err != nil {
			return fmt.Errorf("wait for hooks: %w", err)
		}
		if m.Type == msgError {
			return m.err()
		}
	}
	if h := spec.Hooks; h != nil && len(h.CreateContainer) > 0 {
		if err := runHooks(h.CreateContainer, "createContainer", childHookState(cfg, StatusCreating)); err != nil {
			return err
		}
	}
	if hasMntNS {
		if err := enterRootfs(cfg); err != nil {
			return err
		}
	} else {
		// No mount namespace: nothing may be mounted (it would be the
		// host's), but the process still runs in its root.
		if err := unix.Chroot(cfg.Rootfs); err != nil {
			return fmt.Errorf("chroot: %w", err)
		}
		if err := unix.Chdir("/"); err != nil {
			return err
		}
	}
	if cfg.Process != nil && cfg.Process.Terminal {
		if err := setupConsole(sock, cfg, hasMntNS); err != nil {
			return err
		}
	}
	// Sysctls go before finishRootfs makes /proc/sys read-only (runc's
	// order).
	for k, v := range spec.Linux.Sysctl {
		if err := writeSysctl(k, v); err != nil {
			return err
		}
	}
	if hasMntNS {
		if err := finishRootfs(cfg); err != nil {
			return err
		}
	}
	if spec.Hostname != "" {
		if err := unix.Sethostname([]byte(spec.Hostname)); err != nil {
			return fmt.Errorf("set hostname: %w", err)
		}
	}
	if spec.Domainname != "" {
		if err := unix.Setdomainname([]byte(spec.Domainname)); err != nil {
			return fmt.Errorf("set domainname: %w", err)
		}
	}
	return nil
}

// hasNewNamespace reports whether the spec asks for a new namespace of
// type t (one without a path).
func hasNewNamespace(spec *specs.Spec, t specs.LinuxNamespaceType) bool {
	if spec.Linux == nil {
		return false
	}
	for _, ns := range spec.Linux.Namespaces {
		if ns.Type == t {
			return true
		}
	}
	return false
}

func writeSysctl(key, value string) error {
	p := "/proc/sys/" + sysctlPath(key)
	if err := os.WriteFile(p, []byte(value), 0); err != nil {
		return fmt.Errorf("sysctl %s=%s: %w", key, value, errors.Unwrap(err))
	}
	return nil
}

// sysctlPath turns "net.ipv4.ip_forward" into "net/ipv4/ip_forward"
// (names may use / already, then dots stay dots).
func sysctlPath(key string) string {
	for i := 0; i < len(key); i++ {
		if key[i] == '/' {
			return key
		}
	}
	b := []byte(key)
	for i := range b {
		if b[i] == '.' {
			b[i] = '/'
		}
	}
	return string(b)
}

// childHookState is the OCI state given to hooks the init runs itself.
func childHookState(cfg *stageConfig, status Status) *specs.State {
	return &specs.State{
		Version:     specs.Version,
		ID:          cfg.ID,
		Status:      specs.ContainerState(status),
		Pid:         cfg.Pid,
		Bundle:      cfg.Bundle,
		Annotations: cfg.Annotations,
	}
}
