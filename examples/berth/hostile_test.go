package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-run/berth/internal/testutil"
)

// TestHostileCommandLine: malformed references, port specs, memory sizes,
// env files and --format templates that loop, blow up or panic are each
// refused with a clear error, and change nothing in the store.
func TestHostileCommandLine(t *testing.T) {
	testutil.RequiresRoot(t)
	dir := t.TempDir()
	if out, err := volCLI(t, dir, "", "import", testutil.BusyboxTar(t), "busybox"); err != nil {
		t.Fatalf("import: %v\n%s", err, out)
	}
	envFile := func(content string) string {
		p := filepath.Join(t.TempDir(), "env")
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	run := func(flags ...string) []string {
		return append(append([]string{"run", "--rm", "--network", "none"}, flags...), "busybox", "true")
	}
	long := strings.Repeat("a", 300)
	cases := []struct {
		args []string
		want string
	}{
		// References.
		{[]string{"pull", "UPPER/Case"}, "must be lowercase"},
		{[]string{"pull", ""}, "invalid reference format"},
		{[]string{"pull", "a:b:c"}, "invalid reference format"},
		{[]string{"pull", "x@sha256:abc"}, "invalid reference format"},
		{[]string{"pull", "../../etc/passwd"}, "invalid reference format"},
		{[]string{"pull", "busybox\x00evil"}, "invalid reference format"},
		{[]string{"pull", long}, "must not be more than 255 characters"},
		{[]string{"tag", "busybox", "bad tag!"}, "invalid reference format"},
		{[]string{"tag", "busybox", "x@sha256:" + strings.Repeat("0", 64)}, "digest"},
		{[]string{"run", "--rm", "Not/Valid", "true"}, "invalid reference format"},
		{[]string{"rmi", ":latest"}, "invalid reference format"},
		// Port specs.
		{run("-p", "99999:80"), `invalid port spec "99999:80"`},
		{run("-p", "abc"), `invalid port spec "abc"`},
		{run("-p", "80-70:80"), "ends before it starts"},
		{run("-p", "1.2.3.4.5:80:80"), `invalid host address "1.2.3.4.5"`},
		{run("-p", "80:80/ftp"), `unknown protocol "ftp"`},
		{run("-p", "::::"), "no container port"},
		{run("-p", "0:0"), "port 0"},
		// Memory sizes.
		{run("-m", "10zz"), `invalid suffix: "zz"`},
		{run("-m", "-1"), `invalid size: "-1"`},
		{run("-m", "99999999999999999999g"), "too large"},
		{run("-m", "1.5.5g"), `invalid size: "1.5.5g"`},
		{run("-m", "1b"), "minimum memory limit"},
		{run("--memory-swap", "lots"), "invalid size"},
		{run("--shm-size", "-5"), "invalid size"},
		// Env files.
		{run("--env-file", envFile("A=1\x00B=2\n")), "NUL byte"},
		{run("--env-file", envFile("A="+strings.Repeat("x", 2<<20)+"\n")), "longer than 1048576 bytes"},
		{run("--env-file", envFile("A B=c\n")), "contains whitespaces"},
		{run("--env-file", envFile("=v\n")), "no variable name"},
		{run("--env-file", envFile("\xff\xfe=1\n")), "invalid utf8"},
		{run("--env-file", filepath.Join(dir, "missing")), "no such file"},
		// Templates that loop, blow up the memory or panic.
		{[]string{"images", "--format", "{{range 100000000000}}{{end}}"}, "range iterations"},
		{[]string{"images", "--format", "{{range .Size}}{{range $.Size}}x{{end}}{{end}}"}, "range can't iterate"},
		{[]string{"images", "--format", `{{range $i := split "a,b" ","}}{{range 1000000}}{{end}}{{end}}`}, "range iterations"},
		{[]string{"images", "--format", `{{pad "" 0 99999999999}}`}, "over the limit"},
		{[]string{"images", "--format", `{{pad "" -1 0}}`}, "negative count"},
		{[]string{"images", "--format", `{{$s := "aaaaaaaaaaaaaaaa"}}{{range 40}}{{$s = printf "%s%s" $s $s}}{{end}}{{len $s}}`}, "over the limit"},
		{[]string{"images", "--format", `{{$s := "aaaaaaaaaaaaaaaa"}}{{range 40}}{{$s = js (print $s $s "\\")}}{{end}}`}, "over the limit"},
		{[]string{"images", "--format", `{{printf "%999999d%999999d" 1 2}}`}, "over the limit"},
		{[]string{"images", "--format", `{{printf "%*d" 99999999 1}}`}, "widths are not allowed"},
		{[]string{"images", "--format", `{{range 200}}{{printf "%999999d" 1}}{{end}}`}, "output over the limit"},
		{[]string{"images", "--format", `{{define "a"}}{{template "a"}}{{end}}{{template "a"}}`}, "maximum template depth"},
		{[]string{"images", "--format", "{{" + strings.Repeat("(", 20000) + "1" + strings.Repeat(")", 20000) + "}}"}, "max expression depth"},
		{[]string{"images", "--format", `{{truncate .ID -5}}`}, "negative length"},
		{[]string{"images", "--format", `{{index .ID 99}}`}, "index out of range"},
		{[]string{"images", "--format", `{{slice .ID 5 1}}`}, "slice"},
		{[]string{"images", "--format", `{{template "nope"}}`}, "not defined"},
		{[]string{"images", "--format", `{{.ID`}, "template parsing error"},
		{[]string{"inspect", "-f", "{{range 100000000000}}{{end}}", "busybox"}, "range iterations"},
		{[]string{"info", "--format", `{{pad "" 0 99999999999}}`}, "over the limit"},
	}
	for _, tc := range cases {
		out, err := volCLI(t, dir, "", tc.args...)
		if err == nil || !strings.Contains(err.Error()+out, tc.want) {
			t.Errorf("berth %.120q: %v (output %.200q), want an error with %q", tc.args, err, out, tc.want)
		}
	}
	// Nothing was made.
	if out, err := volCLI(t, dir, "", "ps", "-a", "-q"); err != nil || out != "" {
		t.Errorf("containers: %q %v", out, err)
	}
	if out, err := volCLI(t, dir, "", "images", "--format", "{{.Repository}}:{{.Tag}}"); err != nil || out != "busybox:latest\n" {
		t.Errorf("images: %q %v", out, err)
	}
	if out, err := volCLI(t, dir, "", "system", "check"); err != nil || out != "No problems found\n" {
		t.Errorf("check: %q %v", out, err)
	}
}
