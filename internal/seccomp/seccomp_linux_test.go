package seccomp

import (
	"testing"

	mobyseccomp "github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestDockerDefaultProfile(t *testing.T) {
	caps := []string{"CAP_CHOWN", "CAP_SETUID", "CAP_SETGID", "CAP_KILL"}
	rs := &specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps}}}
	prof, err := mobyseccomp.GetDefaultProfile(rs)
	if err != nil {
		t.Fatal(err)
	}
	p, err := CompileFor(prof, amd64)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("docker's default profile: %d instructions", len(p.Instructions))
	if len(p.Instructions) > maxInstructions {
		t.Fatalf("too long: %d", len(p.Instructions))
	}
	for _, tc := range []struct {
		name string
		args [6]uint64
		want uint32
	}{
		{"read", [6]uint64{}, RetAllow},
		{"execve", [6]uint64{}, RetAllow},
		{"exit_group", [6]uint64{}, RetAllow},
		{"unshare", [6]uint64{}, RetErrno | 1},
		{"keyctl", [6]uint64{}, RetErrno | 1},
		{"mount", [6]uint64{}, RetErrno | 1},
		{"clone", [6]uint64{uint64(unix.SIGCHLD)}, RetAllow},
		{"clone", [6]uint64{unix.CLONE_NEWUSER | uint64(unix.SIGCHLD)}, RetErrno | 1},
		{"personality", [6]uint64{0xffffffff}, RetAllow},
		{"personality", [6]uint64{0x1234}, RetErrno | 1},
		{"socket", [6]uint64{unix.AF_INET}, RetAllow},
		{"socket", [6]uint64{unix.AF_VSOCK}, RetErrno | 1},
		{"clone3", [6]uint64{}, RetErrno | uint32(unix.ENOSYS)},
	} {
		if got := eval(t, p, seccompData{nr: nr(t, tc.name), args: tc.args}); got != tc.want {
			t.Errorf("%s%v: %#x, want %#x", tc.name, tc.args[:1], got, tc.want)
		}
	}
	// Every syscall the profile allows unconditionally is allowed, and the
	// binary search finds each of them.
	for _, sc := range prof.Syscalls {
		if sc.Action != specs.ActAllow || len(sc.Args) > 0 {
			continue
		}
		for _, n := range sc.Names {
			num, ok := amd64.Syscalls[n]
			if !ok {
				continue
			}
			if got := eval(t, p, seccompData{nr: num}); got != RetAllow {
				t.Errorf("%s (%d): %#x, want allow", n, num, got)
			}
		}
	}
}
