package cgroup

import "syscall"

// rawFork is fork(2) through clone(SIGCHLD) with no runtime hooks: the
// child is a copy of the calling thread alone.
func rawFork() (int, syscall.Errno) {
	r, _, errno := syscall.RawSyscall6(syscall.SYS_CLONE, uintptr(syscall.SIGCHLD), 0, 0, 0, 0, 0)
	return int(r), errno
}

// waitForever blocks in ppoll(NULL, 0, NULL, NULL) until killed, without
// the Go scheduler.
//
//go:nosplit
func waitForever() {
	for {
		syscall.RawSyscall6(syscall.SYS_PPOLL, 0, 0, 0, 0, 0, 0)
	}
}
