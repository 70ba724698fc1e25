package seccomp

import (
	"encoding/binary"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/berth-run/berth/internal/errdefs"
)

// Install loads a program encoded by Program.Bytes as a seccomp filter of
// the calling thread (the filter is per thread: call it on the locked
// thread that will execve). The thread needs no_new_privs or
// CAP_SYS_ADMIN.
func Install(prog []byte, flags uint) error {
	if len(prog) == 0 || len(prog)%8 != 0 {
		return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("seccomp: bad program length %d", len(prog)))
	}
	filter := make([]unix.SockFilter, len(prog)/8)
	for i := range filter {
		filter[i] = unix.SockFilter{
			Code: binary.NativeEndian.Uint16(prog[8*i:]),
			Jt:   prog[8*i+2],
			Jf:   prog[8*i+3],
			K:    binary.NativeEndian.Uint32(prog[8*i+4:]),
		}
	}
	fprog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	_, _, errno := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, uintptr(flags), uintptr(unsafe.Pointer(&fprog)))
	if errno != 0 {
		return fmt.Errorf("seccomp: install filter: %w", errno)
	}
	return nil
}
