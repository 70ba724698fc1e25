package main

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// volCLI runs the berth command line on the store under dir and returns
// its output.
func volCLI(t *testing.T, dir, stdin string, args ...string) (string, error) {
	t.Helper()
	cmd := newRootCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetArgs(append([]string{"--root", filepath.Join(dir, "root"), "--runroot", filepath.Join(dir, "run")}, args...))
	err := cmd.Execute()
	return out.String(), err
}

func TestVolumeCLI(t *testing.T) {
	dir := t.TempDir()
	run := func(args ...string) string {
		t.Helper()
		out, err := volCLI(t, dir, "", args...)
		if err != nil {
			t.Fatalf("berth %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	expect := func(want string, args ...string) {
		t.Helper()
		if got := run(args...); got != want {
			t.Errorf("berth %s:\n%q\nwant\n%q", strings.Join(args, " "), got, want)
		}
	}
	fails := func(want string, args ...string) {
		t.Helper()
		if out, err := volCLI(t, dir, "", args...); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("berth %s: %v %q, want an error with %q", strings.Join(args, " "), err, out, want)
		}
	}

	expect("v1\n", "volume", "create", "v1")
	expect("v2\n", "volume", "create", "--label", "a=b", "--label", "c", "--name", "v2")
	expect("v1\n", "volume", "create", "v1") // exists: returned as is
	fails("invalid characters for a local volume name", "volume", "create", "x")
	fails("missing required option", "volume", "create", "-o", "type=tmpfs", "v3")
	fails("plugin \"nfs\" not found", "volume", "create", "-d", "nfs", "v3")
	fails("conflicting options", "volume", "create", "--name", "a1", "b1")

	expect("DRIVER    VOLUME NAME\nlocal     v1\nlocal     v2\n", "volume", "ls")
	expect("v1\nv2\n", "volume", "list", "-q")
	expect("v2\n", "volume", "ls", "-q", "--filter", "label=a=b")
	expect("v1\n", "volume", "ls", "-q", "-f", "name=1", "-f", "dangling=true")
	expect("v1 \nv2 a=b,c=\n", "volume", "ls", "--format", "{{.Name}} {{.Labels}}")
	fails("invalid filter 'color'", "volume", "ls", "--filter", "color=red")

	expect("v1 local local\n", "volume", "inspect", "-f", "{{.Name}} {{.Driver}} {{.Scope}}", "v1")
	var docs []map[string]any
	if err := json.Unmarshal([]byte(run("volume", "inspect", "v1", "v2")), &docs); err != nil || len(docs) != 2 {
		t.Fatalf("inspect JSON: %v %v", docs, err)
	}
	for _, k := range []string{"CreatedAt", "Driver", "Labels", "Mountpoint", "Name", "Options", "Scope"} {
		if _, ok := docs[1][k]; !ok {
			t.Errorf("inspect lacks %s: %v", k, docs[1])
		}
	}
	if docs[1]["Mountpoint"] != filepath.Join(dir, "root", "volumes", "v2", "_data") {
		t.Errorf("Mountpoint: %v", docs[1]["Mountpoint"])
	}
	fails("get nosuch: no such volume", "volume", "inspect", "nosuch")

	if out := run("system", "df"); !strings.Contains(out, "Local Volumes") || !regexpLine(out, `^Local Volumes\s+2\s+0\s+0B\s+0B`) {
		t.Errorf("system df:\n%s", out)
	}

	expect("v1\n", "volume", "rm", "v1")
	fails("get v1: no such volume", "volume", "rm", "v1")
	expect("v1\n", "volume", "rm", "-f", "v1")

	// prune: asks first; anonymous volumes only unless -a.
	if out, err := volCLI(t, dir, "n\n", "volume", "prune", "-a"); err != nil || !strings.Contains(out, "WARNING! This will remove all local volumes not used by at least one container.") {
		t.Fatalf("prune, declined: %v %q", err, out)
	}
	expect("v2\n", "volume", "ls", "-q")
	expect("Total reclaimed space: 0B\n", "volume", "prune", "-f")
	expect("Deleted Volumes:\nv2\n\nTotal reclaimed space: 0B\n", "volume", "prune", "-f", "--all")
	expect("DRIVER    VOLUME NAME\n", "volume", "ls")
}

func regexpLine(out, re string) bool {
	for l := range strings.SplitSeq(out, "\n") {
		if ok, _ := regexp.MatchString(re, l); ok {
			return true
		}
	}
	return false
}
