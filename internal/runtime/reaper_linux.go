package runtime

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

// reaperEnv marks a process started as a container's tiny init (docker
// run --init): internal/oci bind-mounts the caller's own binary at
// /sbin/berth-init and runs `/sbin/berth-init -- CMD ARGS...` with
// _BERTH_REAPER=1. The value must match internal/oci.ReaperEnv.
const reaperEnv = "_BERTH_REAPER"

// runReaper is the --init process: it starts the command after "--",
// forwards every signal it gets to it, reaps every child (it is PID 1, or
// a child subreaper otherwise) and exits with the command's status
// (128+signal when a signal killed it). It never returns.
func runReaper() {
	os.Unsetenv(reaperEnv)
	args := os.Args[1:]
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "berth-init: no command given")
		os.Exit(127)
	}
	_ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
	path, err := exec.LookPath(args[0])
	if err != nil {
		fmt.Fprintf(os.Stderr, "berth-init: %v\n", err)
		os.Exit(127)
	}
	sigs := make(chan os.Signal, 32)
	signal.Notify(sigs)
	p, err := os.StartProcess(path, args, &os.ProcAttr{
		Env:   os.Environ(),
		Files: []*os.File{os.Stdin, os.Stdout, os.Stderr},
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "berth-init: %v\n", err)
		if errnoOf(err) == unix.EACCES {
			os.Exit(126)
		}
		os.Exit(127)
	}
	go func() {
		for s := range sigs {
			sig := s.(syscall.Signal)
			if sig == syscall.SIGCHLD || sig == syscall.SIGURG {
				continue // our own business, and the Go runtime's
			}
			_ = syscall.Kill(p.Pid, sig)
		}
	}()
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, 0, nil)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "berth-init: wait: %v\n", err)
			os.Exit(125)
		}
		if pid == p.Pid {
			os.Exit(exitStatus(ws).Code)
		}
	}
}
