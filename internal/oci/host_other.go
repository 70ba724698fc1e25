//go:build !linux

package oci

import (
	"os"
	"runtime"

	"github.com/berth-run/berth/internal/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// probeHost on other systems: containers run only on Linux, so only the
// parts that need no Linux interface work (validation, user resolution
// through a rootfs on disk); the rest reports ErrNotSupported.
func probeHost() *host {
	unsupported := errdefs.New(errdefs.ErrNotSupported, "containers run only on linux")
	return &host{
		capLast:       len(capNames) - 1,
		effectiveCaps: ^uint64(0),
		numCPU:        runtime.NumCPU(),
		hostname:      os.Hostname,
		rlimit:        func(int) (uint64, uint64, error) { return 0, 0, unsupported },
		sysctlExists:  func(string) bool { return false },
		devicesFromPath: func(string) ([]specs.LinuxDevice, error) {
			return nil, unsupported
		},
		hostDevices: func() ([]specs.LinuxDevice, error) { return nil, unsupported },
		mountOf:     func(string) (string, string, error) { return "", "", unsupported },
		readFile:    os.ReadFile,
		openUserFile: func(string, string) ([]byte, error) {
			return nil, unsupported
		},
		seccomp: seccompProfile,
	}
}
