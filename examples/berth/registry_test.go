package main

import (
	"bytes"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/berth-run/berth/internal/testutil"
)

// regCLI runs the command line on the store under dir with stdin.
func regCLI(t *testing.T, dir, stdin string, args ...string) (string, error) {
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

func TestRegistryCLI(t *testing.T) {
	testutil.RequiresRoot(t)
	reg := testutil.StartRegistry(t, testutil.RegistryOptions{})
	dir := t.TempDir()
	t.Setenv("BERTH_CONFIG", filepath.Join(dir, "config.json"))
	t.Setenv("BERTH_AUTH_FILE", filepath.Join(dir, "auth.json"))
	t.Setenv("DOCKER_CONFIG", filepath.Join(dir, "docker"))
	img := testutil.BuildImage(t, testutil.TestImage{Layers: []testutil.TestLayer{
		{Files: map[string]string{"a": "1"}}, {Files: map[string]string{"b": "2"}}}})
	testutil.PushRaw(t, reg.Addr, "cli/img", "v1", img.Blobs(), img.Manifest, img.MediaType)
	testutil.PushRaw(t, reg.Addr, "cli/img", "v2", nil, img.Manifest, img.MediaType)
	name := reg.Addr + "/cli/img:v1"
	run := func(stdin string, args ...string) string {
		t.Helper()
		out, err := regCLI(t, dir, stdin, args...)
		if err != nil {
			t.Fatalf("berth %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	id0 := img.Layers[0].Digest.Encoded()[:12]

	out := run("", "pull", name)
	want := []string{"v1: Pulling from cli/img", id0 + ": Pulling fs layer", id0 + ": Verifying Checksum",
		id0 + ": Download complete", id0 + ": Pull complete", "Digest: " + img.ManifestDigest.String(),
		"Status: Downloaded newer image for " + name, name}
	if !inOrder(out, want) {
		t.Errorf("pull output:\n%s\nwant, in order:\n%s", out, strings.Join(want, "\n"))
	}
	if strings.Contains(out, "Downloading") {
		t.Errorf("byte progress on a non-terminal:\n%s", out)
	}
	out = run("", "pull", name)
	if !inOrder(out, []string{id0 + ": Already exists", "Status: Image is up to date for " + name}) {
		t.Errorf("second pull:\n%s", out)
	}
	if out := run("", "pull", "-q", name); out != name+"\n" {
		t.Errorf("pull -q: %q", out)
	}
	out = run("", "pull", "-a", reg.Addr+"/cli/img")
	if !inOrder(out, []string{"v1: Pulling from cli/img", "v2: Pulling from cli/img", "Status: Downloaded newer image for " + reg.Addr + "/cli/img", reg.Addr + "/cli/img"}) {
		t.Errorf("pull -a:\n%s", out)
	}
	if out, err := regCLI(t, dir, "", "pull", "-a", name); err == nil || !strings.Contains(err.Error(), "tag can't be used with --all-tags") {
		t.Errorf("pull -a with a tag: %v %s", err, out)
	}
	if out, err := regCLI(t, dir, "", "pull", reg.Addr+"/cli/img:nosuch"); err == nil || !strings.Contains(err.Error(), "manifest unknown") {
		t.Errorf("unknown tag: %v %s", err, out)
	}
	if out := run("", "images", "--digests", reg.Addr+"/cli/img"); !strings.Contains(out, img.ManifestDigest.String()) {
		t.Errorf("images --digests:\n%s", out)
	}

	run("", "tag", name, reg.Addr+"/cli/copy:v3")
	out = run("", "push", reg.Addr+"/cli/copy:v3")
	want = []string{"The push refers to repository [" + reg.Addr + "/cli/copy]", id0 + ": Preparing",
		id0 + ": Mounted from cli/img", "v3: digest: " + img.ManifestDigest.String() + " size: "}
	if !inOrder(out, want) {
		t.Errorf("push output:\n%s\nwant, in order:\n%s", out, strings.Join(want, "\n"))
	}
	out = run("", "push", reg.Addr+"/cli/copy:v3")
	if !strings.Contains(out, id0+": Layer already exists") {
		t.Errorf("second push:\n%s", out)
	}
	if out := run("", "push", "-q", reg.Addr+"/cli/copy:v3"); out != reg.Addr+"/cli/copy:v3\n" {
		t.Errorf("push -q: %q", out)
	}

	out = run("", "search", reg.Addr+"/cli")
	if !regexp.MustCompile(`(?m)^NAME\s+DESCRIPTION\s+STARS\s+OFFICIAL\n` + regexp.QuoteMeta(reg.Addr) + `/cli/copy\s+0\s*\n` + regexp.QuoteMeta(reg.Addr) + `/cli/img\s+0`).MatchString(out) {
		t.Errorf("search:\n%s", out)
	}
	if out := run("", "search", "--limit", "1", "--format", "{{.Name}}", reg.Addr+"/cli"); out != reg.Addr+"/cli/copy\n" {
		t.Errorf("search --limit --format: %q", out)
	}
}

func TestLoginCLI(t *testing.T) {
	testutil.RequiresRoot(t)
	reg := testutil.StartRegistry(t, testutil.RegistryOptions{Users: map[string]string{"alice": "s3cret"}})
	dir := t.TempDir()
	t.Setenv("BERTH_CONFIG", filepath.Join(dir, "config.json"))
	t.Setenv("BERTH_AUTH_FILE", filepath.Join(dir, "auth.json"))
	t.Setenv("DOCKER_CONFIG", filepath.Join(dir, "docker"))
	out, err := regCLI(t, dir, "wrong\n", "login", "-u", "alice", "--password-stdin", reg.Addr)
	if err == nil || !strings.Contains(err.Error(), "incorrect username or password") {
		t.Errorf("wrong password: %v %s", err, out)
	}
	out, err = regCLI(t, dir, "s3cret\n", "login", "-u", "alice", "--password-stdin", reg.Addr)
	if err != nil || !strings.HasSuffix(out, "Login Succeeded\n") {
		t.Errorf("login: %v %q", err, out)
	}
	// Prompts, offering the stored user name.
	out, err = regCLI(t, dir, "\ns3cret\n", "login", reg.Addr)
	if err != nil || !strings.Contains(out, "Username (alice): ") || !strings.Contains(out, "Password: ") || !strings.HasSuffix(out, "Login Succeeded\n") {
		t.Errorf("login with prompts: %v %q", err, out)
	}
	out, err = regCLI(t, dir, "", "login", "-u", "alice", "-p", "s3cret", reg.Addr)
	if err != nil || !strings.Contains(out, "WARNING! Using --password via the CLI is insecure") {
		t.Errorf("login -p: %v %q", err, out)
	}
	if out, _ := regCLI(t, dir, "", "logout", reg.Addr); out != "Removing login credentials for "+reg.Addr+"\n" {
		t.Errorf("logout: %q", out)
	}
	if out, _ := regCLI(t, dir, "", "logout", reg.Addr); out != "Not logged in to "+reg.Addr+"\n" {
		t.Errorf("second logout: %q", out)
	}
}

// inOrder reports whether every line of want starts a line of out, in
// that order.
func inOrder(out string, want []string) bool {
	lines := strings.Split(out, "\n")
	i := 0
	for _, l := range lines {
		if i < len(want) && strings.HasPrefix(l, want[i]) {
			i++
		}
	}
	return i == len(want)
}
