package cgroup

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/berth-run/berth/internal/errdefs"
)

// The bpf(2) attribute layouts used here (the leading fields of union
// bpf_attr for each command; the kernel zero-fills the rest).

type bpfProgLoadAttr struct {
	progType           uint32
	insnCnt            uint32
	insns              uint64
	license            uint64
	logLevel           uint32
	logSize            uint32
	logBuf             uint64
	kernVersion        uint32
	progFlags          uint32
	progName           [16]byte
	progIfindex        uint32
	expectedAttachType uint32
}

type bpfAttachAttr struct {
	targetFd     uint32
	attachBpfFd  uint32
	attachType   uint32
	attachFlags  uint32
	replaceBpfFd uint32
}

type bpfQueryAttr struct {
	targetFd    uint32
	attachType  uint32
	queryFlags  uint32
	attachFlags uint32
	progIDs     uint64
	progCnt     uint32
	_           uint32
}

type bpfGetFDAttr struct {
	progID    uint32
	nextID    uint32
	openFlags uint32
}

func bpf(cmd int, attr unsafe.Pointer, size uintptr) (uintptr, error) {
	r, _, errno := unix.Syscall(unix.SYS_BPF, uintptr(cmd), uintptr(attr), size)
	if errno != 0 {
		return 0, errno
	}
	return r, nil
}

// loadDeviceProgram loads the compiled filter and returns its fd.
func loadDeviceProgram(insns []bpfInsn) (int, error) {
	code := encodeProgram(insns)
	license := []byte("Apache-2.0\x00")
	attr := bpfProgLoadAttr{
		progType: unix.BPF_PROG_TYPE_CGROUP_DEVICE,
		insnCnt:  uint32(len(insns)),
		insns:    uint64(uintptr(unsafe.Pointer(&code[0]))),
		license:  uint64(uintptr(unsafe.Pointer(&license[0]))),
	}
	copy(attr.progName[:], "berth_devices")
	fd, err := bpf(unix.BPF_PROG_LOAD, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	if err != nil && !errors.Is(err, unix.EPERM) {
		// Load again with the verifier's log, to say why.
		log := make([]byte, 64<<10)
		attr.logLevel, attr.logSize = 1, uint32(len(log))
		attr.logBuf = uint64(uintptr(unsafe.Pointer(&log[0])))
		_, _ = bpf(unix.BPF_PROG_LOAD, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
		runtime.KeepAlive(log)
		if msg := strings.TrimRight(string(log), "\x00\n"); msg != "" {
			err = fmt.Errorf("%w: %s", err, lastLines(msg, 3))
		}
	}
	runtime.KeepAlive(code)
	runtime.KeepAlive(license)
	if err != nil {
		return -1, err
	}
	return int(fd), nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "; ")
}

// attachedDevicePrograms lists the ids of the device programs attached to
// the cgroup itself.
func attachedDevicePrograms(cgFd int) ([]uint32, error) {
	ids := make([]uint32, 64)
	for {
		attr := bpfQueryAttr{
			targetFd:   uint32(cgFd),
			attachType: unix.BPF_CGROUP_DEVICE,
			progIDs:    uint64(uintptr(unsafe.Pointer(&ids[0]))),
			progCnt:    uint32(len(ids)),
		}
		_, err := bpf(unix.BPF_PROG_QUERY, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
		runtime.KeepAlive(ids)
		if errors.Is(err, unix.ENOSPC) {
			ids = make([]uint32, attr.progCnt)
			continue
		}
		if err != nil {
			return nil, err
		}
		return ids[:attr.progCnt], nil
	}
}

// setDeviceProgram attaches the loaded program progFd to the cgroup dir
// and then detaches the ones attached before, so the cgroup is never left
// without a filter (for a moment both apply, which can only deny more).
func (m *Manager) setDeviceProgram(dir string, progFd int) error {
	cgFd, err := unix.Open(dir, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return m.fileErr("open", dir, "", err)
	}
	defer unix.Close(cgFd)
	old, err := attachedDevicePrograms(cgFd)
	if err != nil {
		return deviceErr(m.path, "query device programs", err)
	}
	attach := bpfAttachAttr{
		targetFd:    uint32(cgFd),
		attachBpfFd: uint32(progFd),
		attachType:  unix.BPF_CGROUP_DEVICE,
		attachFlags: unix.BPF_F_ALLOW_MULTI,
	}
	if _, err := bpf(unix.BPF_PROG_ATTACH, unsafe.Pointer(&attach), unsafe.Sizeof(attach)); err != nil {
		return deviceErr(m.path, "attach device program", err)
	}
	for _, id := range old {
		get := bpfGetFDAttr{progID: id}
		fd, err := bpf(unix.BPF_PROG_GET_FD_BY_ID, unsafe.Pointer(&get), unsafe.Sizeof(get))
		if err != nil {
			if errors.Is(err, unix.ENOENT) {
				continue // gone meanwhile
			}
			return deviceErr(m.path, "open old device program", err)
		}
		detach := bpfAttachAttr{targetFd: uint32(cgFd), attachBpfFd: uint32(fd), attachType: unix.BPF_CGROUP_DEVICE}
		_, err = bpf(unix.BPF_PROG_DETACH, unsafe.Pointer(&detach), unsafe.Sizeof(detach))
		unix.Close(int(fd))
		if err != nil && !errors.Is(err, unix.ENOENT) {
			return deviceErr(m.path, "detach old device program", err)
		}
	}
	return nil
}

// deviceErr classes a bpf(2) failure: a kernel without cgroup BPF cannot
// enforce device rules on v2.
func deviceErr(path, what string, err error) error {
	msg := fmt.Sprintf("cgroup %s: %s", path, what)
	if errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EOPNOTSUPP) {
		return errdefs.Wrap(errdefs.ErrNotSupported, msg+" (a kernel with CONFIG_CGROUP_BPF is needed for device rules on cgroup v2)", causeOf(err))
	}
	return fmt.Errorf("%s: %w", msg, causeOf(err))
}
