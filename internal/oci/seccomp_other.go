//go:build !linux

package oci

import (
	"github.com/berth-run/berth/internal/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func seccompProfile(profile []byte, s *specs.Spec) (*specs.LinuxSeccomp, error) {
	return nil, errdefs.New(errdefs.ErrNotSupported, "seccomp profiles are only generated on linux")
}
