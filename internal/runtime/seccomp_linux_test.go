package runtime

import (
	"strings"
	"testing"

	mobyseccomp "github.com/moby/profiles/seccomp"
)

func TestSeccompDockerDefault(t *testing.T) {
	for _, nnp := range []bool{false, true} {
		spec := sh(t, `grep -E '^Seccomp:' /proc/1/status; unshare -U true 2>&1; echo rc=$?`)
		spec.Process.NoNewPrivileges = nnp
		prof, err := mobyseccomp.GetDefaultProfile(spec)
		if err != nil {
			t.Fatal(err)
		}
		spec.Linux.Seccomp = prof
		out := runOK(t, spec)
		if !strings.HasPrefix(out, "Seccomp:\t2\n") || !strings.Contains(out, "Operation not permitted") || !strings.HasSuffix(out, "rc=1") {
			t.Fatalf("no_new_privs=%v: %q", nnp, out)
		}
	}
	out := runOK(t, sh(t, `grep -E '^Seccomp:' /proc/1/status; unshare -U true 2>&1; echo rc=$?`))
	if out != "Seccomp:\t0\nrc=0" {
		t.Fatalf("without seccomp: %q", out)
	}
}
