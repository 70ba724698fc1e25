package oci

import (
	seccomp "github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// seccompProfile converts a seccomp profile in docker's JSON format (nil:
// docker's default profile) into the spec's form for the spec's
// capabilities, which must already be set: rules that docker conditions on
// a capability (CAP_SYS_ADMIN allows mount, ...) follow the bounding set.
func seccompProfile(profile []byte, s *specs.Spec) (*specs.LinuxSeccomp, error) {
	if profile == nil {
		return seccomp.GetDefaultProfile(s)
	}
	return seccomp.LoadProfile(string(profile), s)
}
