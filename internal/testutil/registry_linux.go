package testutil

import (
	"os/exec"
	"runtime"
	"syscall"
)

// startTied starts cmd so that the kernel kills it when the test process
// dies (a killed test binary leaves no registry behind), and returns a
// channel closed when it has exited. Pdeathsig fires when the *thread*
// that forked the child ends, so the fork happens on a goroutine locked to
// its own thread that lives until the child is gone.
func startTied(cmd *exec.Cmd, after func()) (<-chan struct{}, error) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	exited := make(chan struct{})
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		err := cmd.Start()
		started <- err
		if err == nil {
			cmd.Wait()
		}
		after()
		close(exited)
	}()
	return exited, <-started
}
