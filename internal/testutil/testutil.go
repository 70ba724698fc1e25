// Package testutil holds the helpers berth's tests share: root checks,
// scratch roots, the local registry and the fixture images.
//
// A test that needs something the machine lacks calls the matching
// Requires* helper. Outside CI it skips; when BERTH_TEST_STRICT=1 (set by
// `make test` and .ci/run, which run as root with everything installed) a
// missing requirement fails the test instead, so a suite cannot pass by
// silently skipping.
package testutil

import (
	"os"
	"os/exec"
	"testing"
)

// Strict reports whether missing requirements fail tests instead of
// skipping them (BERTH_TEST_STRICT=1).
func Strict() bool { return os.Getenv("BERTH_TEST_STRICT") == "1" }

// Unavailable skips the test, or fails it in strict mode, saying why.
func Unavailable(t testing.TB, why string) {
	t.Helper()
	if Strict() {
		t.Fatalf("requirement missing (BERTH_TEST_STRICT=1): %s", why)
	}
	t.Skip(why)
}

// RequiresRoot skips (or, in strict mode, fails) unless the test runs as root.
func RequiresRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		Unavailable(t, "needs root")
	}
}

// RequiresCommand skips (or fails in strict mode) unless name is on PATH.
// It returns the command's path.
func RequiresCommand(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Unavailable(t, name+" is not installed")
	}
	return p
}
