package runtime

import (
	"strings"
	"testing"
)

func TestRunTrue(t *testing.T) {
	spec := sh(t, "true")
	spec.Process.Args = []string{"true"}
	r := run(t, spec)
	if r.status.Code != 0 {
		t.Fatalf("exit %d, stderr %q", r.status.Code, r.err)
	}
}

func TestEcho(t *testing.T) {
	out := runOK(t, sh(t, "echo hello; echo $$"))
	if out != "hello\n1" {
		t.Fatalf("got %q", out)
	}
	_ = strings.TrimSpace
}
