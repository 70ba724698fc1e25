package runtime

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// stageEnv is the environment marker of a re-exec:
// "<stage>,<socket fd>[,<parent-death signal>]".
const stageEnv = "_BERTH_RUNTIME_STAGE"

const (
	stageInit = "init"
	stageExec = "exec"
)

// stageConfig is everything the init or exec stage needs, sent once over
// the sync socket.
type stageConfig struct {
	Stage  string `json:"stage"`
	ID     string `json:"id"`
	Bundle string `json:"bundle"`
	// Rootfs is the absolute host path of the root filesystem (init).
	Rootfs string `json:"rootfs,omitempty"`
	// Spec is the container's spec without its seccomp section (init).
	Spec *specs.Spec `json:"spec,omitempty"`
	// Process is the process to execve.
	Process *specs.Process `json:"process"`
	// Seccomp is the compiled filter (struct sock_filter array, host
	// byte order); empty for none.
	Seccomp      []byte `json:"seccomp,omitempty"`
	SeccompFlags uint   `json:"seccompFlags,omitempty"`
	// NoPivot uses MS_MOVE+chroot instead of pivot_root.
	NoPivot bool `json:"noPivot,omitempty"`
	// NewCgroupNS: unshare the cgroup namespace once placed in the
	// container's cgroup (init).
	NewCgroupNS bool `json:"newCgroupNS,omitempty"`
	// CgroupDirs, when set, are the cgroups the parent is moving the
	// init into, for its cgroup mounts (init).
	CgroupDirs []cgroupHierarchy `json:"cgroupDirs,omitempty"`
	// CgroupTasks are the tasks files of cgroup v1 hierarchies through
	// which the stage moves its own thread into the container's cgroups
	// as soon as it has its config (joinOwnThread).
	CgroupTasks []string `json:"cgroupTasks,omitempty"`
	// UserNS: the container has its own user namespace (device nodes are
	// bind-mounted from the host instead of made).
	UserNS bool `json:"userNS,omitempty"`
	// ParentHooks: ask the parent to run prestart/createRuntime hooks
	// once the mounts are done.
	ParentHooks bool `json:"parentHooks,omitempty"`
	// Annotations for the OCI state given to createContainer and
	// startContainer hooks.
	Annotations map[string]string `json:"annotations,omitempty"`
	// Pid is the init's pid as the parent sees it (for hook states).
	Pid int `json:"pid,omitempty"`
	// ExtraFiles is how many fds from 3 on are passed to the process.
	ExtraFiles int `json:"extraFiles,omitempty"`
	// Pdeathsig is set again right before execve (credential changes
	// clear it).
	Pdeathsig int `json:"pdeathsig,omitempty"`

	// consoleSlave is the pty slave made by setupConsole (child only).
	consoleSlave int
	// startConn is the starter's connection (init only, after start):
	// errors up to the execve are reported on it.
	startConn int
}

// init runs the init or exec stage when this process is a re-exec made by
// this package, or the --init reaper when started as one, and never
// returns then. It does nothing otherwise.
func init() {
	if os.Getenv(reaperEnv) == "1" {
		runReaper()
	}
	v, ok := os.LookupEnv(stageEnv)
	if !ok {
		return
	}
	// Capabilities, credentials, no_new_privs and seccomp are per thread:
	// everything happens on the main thread, which calls execve.
	runtime.LockOSThread()
	parts := strings.Split(v, ",")
	stage := parts[0]
	fd, err := -1, error(nil)
	if len(parts) > 1 {
		fd, err = strconv.Atoi(parts[1])
	}
	if err != nil || fd < 3 {
		fmt.Fprintf(os.Stderr, "berth runtime: bad %s=%q\n", stageEnv, v)
		os.Exit(125)
	}
	if len(parts) > 2 {
		// Set before the config is read: a parent that died before
		// this shows as EOF on the socket.
		if sig, _ := strconv.Atoi(parts[2]); sig > 0 {
			_ = unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(sig), 0, 0, 0)
		}
	}
	os.Unsetenv(stageEnv)
	unix.CloseOnExec(fd)
	sock := newSyncSocket(os.NewFile(uintptr(fd), "sync"))
	switch stage {
	case stageInit:
		runInitStage(sock, fd)
	case stageExec:
		runExecStage(sock, fd)
	}
	fmt.Fprintf(os.Stderr, "berth runtime: unknown stage %q\n", stage)
	os.Exit(125)
}

// stageFail reports err to the parent and exits. It writes the error to
// stderr too when the parent is gone (the OCI CLI's start).
func stageFail(sock *syncSocket, err error) {
	if sock == nil || sock.send(errorMessage(err)) != nil {
		fmt.Fprintf(os.Stderr, "berth: %v\n", err)
	}
	os.Exit(127)
}

// receiveConfig reads the stage configuration.
func receiveConfig(sock *syncSocket) *stageConfig {
	m, _, err := sock.recv()
	if err != nil {
		// The parent is gone: nothing to report to.
		os.Exit(125)
	}
	if m.Type != msgConfig || m.Config == nil {
		stageFail(sock, fmt.Errorf("expected config, got %q", m.Type))
	}
	m.Config.startConn = -1
	if err := joinOwnThread(m.Config.CgroupTasks); err != nil {
		stageFail(sock, err)
	}
	return m.Config
}

// joinOwnThread moves the calling thread — the stage's locked main
// thread, which executes the process and is then all that is left of it —
// into the cgroup v1 hierarchies whose tasks files are given. The kernel
// moves a thread that writes 0 for itself without the global threadgroup
// lock that moving another process (cgroup.procs) takes, and so without
// waiting out an RCU grace period (0.2 ms against 5-15 ms on a busy
// machine). The stage's other threads stay behind until the execve ends
// them.
func joinOwnThread(tasks []string) error {
	for _, f := range tasks {
		if err := os.WriteFile(f, []byte("0"), 0); err != nil {
			return fmt.Errorf("join cgroup %s: %w", filepath.Dir(f), err)
		}
	}
	return nil
}
