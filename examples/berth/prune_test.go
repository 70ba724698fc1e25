package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/berth-run/berth/internal/testutil"
)

func TestPruneAndCheckCLI(t *testing.T) {
	testutil.RequiresRoot(t)
	dir := t.TempDir()
	run := func(stdin string, args ...string) string {
		t.Helper()
		out, err := volCLI(t, dir, stdin, args...)
		if err != nil {
			t.Fatalf("berth %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	expect := func(want string, args ...string) {
		t.Helper()
		if got := run("", args...); got != want {
			t.Errorf("berth %s:\n%q\nwant\n%q", strings.Join(args, " "), got, want)
		}
	}
	matches := func(pattern string, args ...string) {
		t.Helper()
		if got := run("", args...); !regexp.MustCompile(pattern).MatchString(got) {
			t.Errorf("berth %s:\n%q\ndoes not match\n%q", strings.Join(args, " "), got, pattern)
		}
	}

	expect("No problems found\n", "system", "check")
	expect("Total reclaimed space: 0B\n", "container", "prune", "-f")
	expect("Total reclaimed space: 0B\n", "system", "prune", "-f")
	declined := run("n\n", "system", "prune", "-a", "--volumes")
	want := "WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n" +
		"  - all anonymous volumes not used by at least one container\n  - all images without at least one container associated to them\n\n" +
		"Are you sure you want to continue? [y/N] "
	if declined != want {
		t.Errorf("declined prune:\n%q\nwant\n%q", declined, want)
	}
	expect("WARNING! This will remove all stopped containers.\nAre you sure you want to continue? [y/N] ", "container", "prune")

	run("", "import", testutil.BusyboxTar(t), "busybox")
	run("", "run", "--network", "none", "--name", "done", "busybox", "/bin/true")
	id := strings.TrimSpace(run("", "inspect", "-f", "{{.Id}}", "done"))
	expect("Deleted Containers:\n"+id+"\n\nTotal reclaimed space: 0B\n", "system", "prune", "-f")
	matches(`^Deleted Images:\nuntagged: busybox:latest\ndeleted: sha256:[0-9a-f]{64}\n\nTotal reclaimed space: [0-9.]+[kM]B\n$`, "system", "prune", "-a", "-f")

	// A blob that no image uses: reported, then repaired.
	orphan := []byte("nobody uses me")
	blob := filepath.Join(dir, "root", "blobs", "sha256", digest.FromBytes(orphan).Encoded())
	if err := os.WriteFile(blob, orphan, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := volCLI(t, dir, "", "system", "check")
	if err == nil || !strings.HasSuffix(out, ": is used by no image\n1 problem found; run with --repair to fix what can be fixed\n") {
		t.Errorf("check: %v %q", err, out)
	}
	if out := run("", "system", "check", "--repair", "--quick"); !strings.HasSuffix(out, "no image (repaired)\n1 problem found, 1 repaired\n") {
		t.Errorf("check --repair: %q", out)
	}
	expect("No problems found\n", "system", "check")
}
