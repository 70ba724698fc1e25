package ociruntime

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"testing"

	"github.com/berth-run/berth/internal/testutil"
)

// suiteResult is the closing line of scripts/oci-validation.sh.
type suiteResult struct{ passed, failed, skipped int }

var suiteLine = regexp.MustCompile(`(?m)^oci-validation: (\d+) passed, (\d+) failed, (\d+) skipped`)

// runSuite runs the OCI runtime validation suite (opencontainers/
// runtime-tools, built from the Go module proxy by the script) against the
// runtime executable rt.
func runSuite(t *testing.T, rt, acc string) suiteResult {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(file), "..", "scripts", "oci-validation.sh")
	cmd := exec.Command(script)
	cmd.Env = append(os.Environ(), "RUNTIME="+rt, "ACC="+acc)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	m := suiteLine.FindStringSubmatch(out.String())
	if err != nil || m == nil {
		t.Fatalf("oci-validation.sh with %s: %v\n%s", rt, err, out.String())
	}
	atoi := func(s string) int { n, _ := strconv.Atoi(s); return n }
	r := suiteResult{atoi(m[1]), atoi(m[2]), atoi(m[3])}
	t.Logf("%s: %s", filepath.Base(rt), m[0])
	return r
}

// TestOCIValidationSuite runs the OCI runtime validation suite against
// `berth oci` and, in the same run on the same machine, against runc:
// berth must pass at least as many tests and fail no more.
func TestOCIValidationSuite(t *testing.T) {
	testutil.RequiresRoot(t)
	if testing.Short() {
		t.Skip("the validation suite takes minutes; not in -short")
	}
	runc := testutil.RequiresCommand(t, "runc")
	testutil.RequiresCommand(t, "go")
	dir := t.TempDir()
	bin := filepath.Join(dir, "berth")
	build := exec.Command("go", "build", "-o", bin, "../examples/berth")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build berth: %v\n%s", err, out)
	}
	wrapper := filepath.Join(dir, "berth-oci")
	if err := os.WriteFile(wrapper, []byte(fmt.Sprintf("#!/bin/sh\nexec %s oci \"$@\"\n", bin)), 0o755); err != nil {
		t.Fatal(err)
	}
	// The script caches its build of runtime-tools here across runs.
	acc := filepath.Join(os.TempDir(), "berth-acc")
	ours := runSuite(t, wrapper, acc)
	theirs := runSuite(t, runc, acc)
	if ours.passed < theirs.passed || ours.failed > theirs.failed {
		t.Errorf("berth oci: %d passed, %d failed; runc: %d passed, %d failed — berth must pass at least as many and fail no more",
			ours.passed, ours.failed, theirs.passed, theirs.failed)
	}
}
