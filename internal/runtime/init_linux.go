package runtime

import (
	"errors"
	"fmt"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// runInitStage is the container's init: it prepares the container from
// the config it receives, reports "ready", blocks on the exec fifo until
// Start, and execs the user's process. It runs on the locked main thread
// and never returns.
func runInitStage(sock *syncSocket, sockFd int) {
	cfg := receiveConfig(sock)
	fifoFd := sockFd + 1
	unix.CloseOnExec(fifoFd)
	unix.Umask(0)
	if err := prepareInit(sock, cfg); err != nil {
		stageFail(sock, err)
	}
	path, err := lookPath(cfg.Process)
	if err != nil {
		stageFail(sock, err)
	}
	if err := sock.send(&message{Type: msgReady}); err != nil {
		os.Exit(125)
	}
	// Created: wait for Start to write a byte into the fifo. The fd is
	// O_RDWR, so the read blocks until then instead of seeing EOF.
	var b [1]byte
	for {
		_, err := unix.Read(fifoFd, b[:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			stageFail(sock, fmt.Errorf("wait for start: %w", err))
		}
		break
	}
	unix.Close(fifoFd)
	if h := cfg.Spec.Hooks; h != nil && len(h.StartContainer) > 0 {
		if err := runHooks(h.StartContainer, "startContainer", childHookState(cfg, StatusCreated)); err != nil {
			stageFail(sock, err)
		}
	}
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
	}
	if cfg.Process.Terminal {
		if err := setupConsole(sock, cfg, hasMntNS); err != nil {
			return err
		}
	}
	if hasMntNS {
		if err := finishRootfs(cfg); err != nil {
			return err
		}
	}
	for k, v := range spec.Linux.Sysctl {
		if err := writeSysctl(k, v); err != nil {
			return err
		}
	}
	// Rlimits before "ready", so a limit the kernel refuses fails create.
	if err := setRlimits(cfg.Process.Rlimits); err != nil {
		return err
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
