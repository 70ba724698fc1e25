//go:build !linux

package testutil

import "os/exec"

func startTied(cmd *exec.Cmd, after func()) (<-chan struct{}, error) {
	exited := make(chan struct{})
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() { cmd.Wait(); after(); close(exited) }()
	return exited, nil
}
