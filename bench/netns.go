package main

import (
	"errors"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"github.com/vishvananda/netlink"
)

// netnsMarker is set in the environment of the harness re-executed in its
// own network namespace.
const netnsMarker = "_BERTH_BENCH_NETNS"

func inOwnNetns() bool { return os.Getenv(netnsMarker) == "1" }

// reexecInNetns runs this program again in a new network namespace, with
// the same arguments and standard streams, and returns its exit status.
// Signals reach it too (it shares the terminal's process group; a signal
// sent to this process alone is forwarded).
func reexecInNetns() int {
	cmd := exec.Command("/proc/self/exe", os.Args[1:]...)
	cmd.Args[0] = os.Args[0]
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), netnsMarker+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	if err := cmd.Start(); err != nil {
		fatalf("start in a new network namespace: %v", err)
	}
	go func() {
		for s := range sigs {
			cmd.Process.Signal(s)
		}
	}()
	err := cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		fatalf("%v", err)
	}
	return 0
}

// setupNetns brings the namespace's loopback up: the registry and the
// published ports are reached through it.
func setupNetns() error {
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return err
	}
	return netlink.LinkSetUp(lo)
}
