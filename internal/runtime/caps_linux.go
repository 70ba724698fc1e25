package runtime

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// capNames maps OCI capability names to their numbers.
var capNames = map[string]uint{
	"CAP_CHOWN":              unix.CAP_CHOWN,
	"CAP_DAC_OVERRIDE":       unix.CAP_DAC_OVERRIDE,
	"CAP_DAC_READ_SEARCH":    unix.CAP_DAC_READ_SEARCH,
	"CAP_FOWNER":             unix.CAP_FOWNER,
	"CAP_FSETID":             unix.CAP_FSETID,
	"CAP_KILL":               unix.CAP_KILL,
	"CAP_SETGID":             unix.CAP_SETGID,
	"CAP_SETUID":             unix.CAP_SETUID,
	"CAP_SETPCAP":            unix.CAP_SETPCAP,
	"CAP_LINUX_IMMUTABLE":    unix.CAP_LINUX_IMMUTABLE,
	"CAP_NET_BIND_SERVICE":   unix.CAP_NET_BIND_SERVICE,
	"CAP_NET_BROADCAST":      unix.CAP_NET_BROADCAST,
	"CAP_NET_ADMIN":          unix.CAP_NET_ADMIN,
	"CAP_NET_RAW":            unix.CAP_NET_RAW,
	"CAP_IPC_LOCK":           unix.CAP_IPC_LOCK,
	"CAP_IPC_OWNER":          unix.CAP_IPC_OWNER,
	"CAP_SYS_MODULE":         unix.CAP_SYS_MODULE,
	"CAP_SYS_RAWIO":          unix.CAP_SYS_RAWIO,
	"CAP_SYS_CHROOT":         unix.CAP_SYS_CHROOT,
	"CAP_SYS_PTRACE":         unix.CAP_SYS_PTRACE,
	"CAP_SYS_PACCT":          unix.CAP_SYS_PACCT,
	"CAP_SYS_ADMIN":          unix.CAP_SYS_ADMIN,
	"CAP_SYS_BOOT":           unix.CAP_SYS_BOOT,
	"CAP_SYS_NICE":           unix.CAP_SYS_NICE,
	"CAP_SYS_RESOURCE":       unix.CAP_SYS_RESOURCE,
	"CAP_SYS_TIME":           unix.CAP_SYS_TIME,
	"CAP_SYS_TTY_CONFIG":     unix.CAP_SYS_TTY_CONFIG,
	"CAP_MKNOD":              unix.CAP_MKNOD,
	"CAP_LEASE":              unix.CAP_LEASE,
	"CAP_AUDIT_WRITE":        unix.CAP_AUDIT_WRITE,
	"CAP_AUDIT_CONTROL":      unix.CAP_AUDIT_CONTROL,
	"CAP_SETFCAP":            unix.CAP_SETFCAP,
	"CAP_MAC_OVERRIDE":       unix.CAP_MAC_OVERRIDE,
	"CAP_MAC_ADMIN":          unix.CAP_MAC_ADMIN,
	"CAP_SYSLOG":             unix.CAP_SYSLOG,
	"CAP_WAKE_ALARM":         unix.CAP_WAKE_ALARM,
	"CAP_BLOCK_SUSPEND":      unix.CAP_BLOCK_SUSPEND,
	"CAP_AUDIT_READ":         unix.CAP_AUDIT_READ,
	"CAP_PERFMON":            unix.CAP_PERFMON,
	"CAP_BPF":                unix.CAP_BPF,
	"CAP_CHECKPOINT_RESTORE": unix.CAP_CHECKPOINT_RESTORE,
}

// capSet is a 64-bit capability mask.
type capSet uint64

// parseCaps turns names into a mask; names the running kernel does not
// know are ignored (as runc does), unknown names are an error.
func parseCaps(names []string, last uint) (capSet, error) {
	var s capSet
	for _, n := range names {
		c, ok := capNames[n]
		if !ok {
			return 0, fmt.Errorf("unknown capability %q", n)
		}
		if c > last {
			continue
		}
		s |= 1 << c
	}
	return s, nil
}

// lastCap is the highest capability the kernel knows.
func lastCap() uint {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err == nil {
		if v, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			return uint(v)
		}
	}
	return unix.CAP_LAST_CAP
}

// processCaps are the five sets of a process, parsed.
type processCaps struct {
	bounding, effective, permitted, inheritable, ambient capSet
	last                                                 uint
}

func parseProcessCaps(c *specs.LinuxCapabilities) (*processCaps, error) {
	pc := &processCaps{last: lastCap()}
	if c == nil {
		return pc, nil
	}
	// Capabilities outside this thread's bounding set can never be had
	// (for example CAP_SYS_RESOURCE on a machine that withholds it): a
	// privileged container gets all the others, as with podman.
	have := boundingSet(pc.last)
	defer func() {
		pc.effective &= have
		pc.permitted &= have
		pc.inheritable &= have
		pc.ambient &= have
	}()
	var err error
	for _, x := range []struct {
		dst   *capSet
		names []string
	}{
		{&pc.bounding, c.Bounding}, {&pc.effective, c.Effective}, {&pc.permitted, c.Permitted},
		{&pc.inheritable, c.Inheritable}, {&pc.ambient, c.Ambient},
	} {
		if *x.dst, err = parseCaps(x.names, pc.last); err != nil {
			return nil, err
		}
	}
	return pc, nil
}

// dropBounding removes from this thread's bounding set every capability
// not in pc.bounding (needs CAP_SETPCAP, so before changing user).
func (pc *processCaps) dropBounding() error {
	for c := uint(0); c <= pc.last; c++ {
		if pc.bounding&(1<<c) != 0 {
			continue
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil {
			if err == unix.EINVAL {
				continue
			}
			return fmt.Errorf("drop capability %d from bounding set: %w", c, err)
		}
	}
	return nil
}

// apply sets this thread's effective, permitted and inheritable sets and
// raises the ambient ones.
func (pc *processCaps) apply() error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	for i := 0; i < 2; i++ {
		data[i].Effective = uint32(pc.effective >> (32 * i))
		data[i].Permitted = uint32(pc.permitted >> (32 * i))
		data[i].Inheritable = uint32(pc.inheritable >> (32 * i))
	}
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capset: %w", err)
	}
	if pc.ambient == 0 {
		return nil
	}
	for c := uint(0); c <= pc.last; c++ {
		if pc.ambient&(1<<c) == 0 {
			continue
		}
		// Ambient needs the capability in permitted and inheritable;
		// runc ignores the ones that are not.
		if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_RAISE, uintptr(c), 0, 0); err != nil && err != unix.EPERM && err != unix.EINVAL {
			return fmt.Errorf("raise ambient capability %d: %w", c, err)
		}
	}
	return nil
}

// boundingSet reads this thread's bounding set.
func boundingSet(last uint) capSet {
	var s capSet
	for c := uint(0); c <= last; c++ {
		if v, err := unix.PrctlRetInt(unix.PR_CAPBSET_READ, uintptr(c), 0, 0, 0); err == nil && v == 1 {
			s |= 1 << c
		}
	}
	return s
}
