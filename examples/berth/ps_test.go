package main

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth-run/berth"
	"github.com/berth-run/berth/internal/testutil"
)

// toolCLI runs the berth command line on the store under dir with stdin
// and returns its output (stdout and stderr together).
func toolCLI(t *testing.T, dir string, stdin io.Reader, args ...string) (string, error) {
	t.Helper()
	cmd := newRootCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	cmd.SetIn(stdin)
	cmd.SetArgs(append([]string{"--root", filepath.Join(dir, "root"), "--runroot", filepath.Join(dir, "run")}, args...))
	err := cmd.ExecuteContext(context.Background())
	return out.String(), err
}

// mustCLI is toolCLI for a command that must succeed.
func mustCLI(t *testing.T, dir string, stdin io.Reader, args ...string) string {
	t.Helper()
	out, err := toolCLI(t, dir, stdin, args...)
	if err != nil {
		t.Fatalf("berth %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// toolStore opens the store the CLI tests use, with busybox imported.
func toolStore(t *testing.T) (string, *berth.Runtime) {
	t.Helper()
	testutil.RequiresRoot(t)
	dir := t.TempDir()
	rt, err := berth.Open(context.Background(), berth.WithRoot(filepath.Join(dir, "root")), berth.WithRunRoot(filepath.Join(dir, "run")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	f, err := os.Open(testutil.BusyboxTar(t))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := rt.Import(context.Background(), f, "busybox", berth.WithChanges(`CMD ["sh"]`)); err != nil {
		t.Fatal(err)
	}
	return dir, rt
}

// toolRun runs a container in this process (no network); removed at the
// end of the test.
func toolRun(t *testing.T, rt *berth.Runtime, spec berth.Spec) *berth.Container {
	t.Helper()
	ctx := context.Background()
	spec.Image, spec.Network = "busybox", "none"
	c, err := rt.Run(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Remove(ctx, berth.RemoveForce()) })
	return c
}

// columns splits a table line at runs of two or more spaces.
func columns(line string) []string {
	return regexp.MustCompile(`\s{2,}`).Split(strings.TrimSpace(line), -1)
}

func lines(out string) []string { return strings.Split(strings.TrimRight(out, "\n"), "\n") }

const ago = `(Less than a second|\d+ seconds?|About a minute) ago`

// TestPsCLI checks ps's columns, flags and formats against docker's.
func TestPsCLI(t *testing.T) {
	dir, rt := toolStore(t)
	ctx := context.Background()
	cli := func(args ...string) string { t.Helper(); return mustCLI(t, dir, nil, args...) }
	created, err := rt.Create(ctx, berth.Spec{Image: "busybox", Name: "new", Network: "none"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { created.Remove(ctx) })
	exited := toolRun(t, rt, berth.Spec{Name: "three", Cmd: []string{"sh", "-c", "exit 3"}})
	exited.Wait(ctx)
	web := toolRun(t, rt, berth.Spec{Name: "web", Cmd: []string{"sleep", "1000"}, Labels: map[string]string{"tier": "front"}})
	long := toolRun(t, rt, berth.Spec{Name: "long", Cmd: []string{"sh", "-c", "sleep 1000; echo a long command line"}})

	out := lines(cli("ps"))
	if h := columns(out[0]); !slices.Equal(h, []string{"CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"}) {
		t.Fatalf("header %q", h)
	}
	if len(out) != 3 {
		t.Fatalf("ps shows %d lines:\n%s", len(out), strings.Join(out, "\n"))
	}
	// Columns line up under the header.
	// (tabwriter counts runes: the … is one.)
	if idx := strings.Index(out[0], "NAMES"); !strings.HasPrefix(string([]rune(out[1])[idx:]), "long") || !strings.HasPrefix(string([]rune(out[2])[idx:]), "web") {
		t.Errorf("names not under NAMES:\n%s", strings.Join(out, "\n"))
	}
	if !regexp.MustCompile(`^` + web.ID()[:12] + ` +busybox +"sleep 1000" +` + ago + ` +Up (Less than a second|\d+ seconds?) +web$`).MatchString(out[2]) {
		t.Errorf("web row %q", out[2])
	}
	if !strings.Contains(out[1], `"sh -c 'sleep 1000; …"`) {
		t.Errorf("long command not cut like docker: %q", out[1])
	}
	all := lines(cli("ps", "-a"))
	if len(all) != 5 || !regexp.MustCompile(`"sh -c 'exit 3'" +`+ago+` +Exited \(3\) `+ago+` +three$`).MatchString(all[3]) ||
		!regexp.MustCompile(`"sh" +`+ago+` +Created +new$`).MatchString(all[4]) {
		t.Errorf("ps -a:\n%s", strings.Join(all, "\n"))
	}
	if ids := lines(cli("ps", "-aq")); len(ids) != 4 || ids[1] != web.ID()[:12] {
		t.Errorf("ps -aq: %q", ids)
	}
	if ids := lines(cli("ps", "-q", "--no-trunc", "-n", "2")); !slices.Equal(ids, []string{long.ID(), web.ID()}) {
		t.Errorf("ps -q --no-trunc -n 2: %q", ids)
	}
	if got := cli("ps", "-l", "--format", "{{.Names}}"); got != "long\n" {
		t.Errorf("ps -l: %q", got)
	}
	if got := cli("ps", "-a", "--filter", "status=exited", "--format", "{{.Names}} {{.State}} {{.Status}}"); !regexp.MustCompile(`^three exited Exited \(3\) ` + ago + "\n$").MatchString(got) {
		t.Errorf("filter status=exited: %q", got)
	}
	if got := cli("ps", "-a", "-f", "label=tier=front", "-f", "name=w", "--format", `{{.Names}} {{.Label "tier"}} {{.Labels}}`); got != "web front tier=front\n" {
		t.Errorf("label and name filters: %q", got)
	}
	if got := cli("ps", "-a", "--filter", "exited=3", "--format", "{{.Names}}"); got != "three\n" {
		t.Errorf("filter exited=3: %q", got)
	}
	if got := cli("ps", "--filter", "exited=3"); len(lines(got)) != 1 {
		t.Errorf("filter exited=3 without -a (none, as docker): %q", got)
	}
	sized := lines(cli("ps", "-s", "--filter", "name=web"))
	if h := columns(sized[0]); h[len(h)-1] != "SIZE" || !regexp.MustCompile(`web +0B \(virtual \d+(\.\d+)?[kM]B\)$`).MatchString(sized[1]) {
		t.Errorf("ps -s:\n%s", strings.Join(sized, "\n"))
	}
	var row map[string]any
	if err := json.Unmarshal([]byte(cli("ps", "--filter", "name=web", "--format", "json")), &row); err != nil || row["Names"] != "web" || row["State"] != "running" {
		t.Errorf("ps --format json: %v %v", row, err)
	}
	for _, bad := range [][]string{{"ps", "--filter", "status=sleepy"}, {"ps", "--filter", "nonsense"}, {"ps", "--filter", "colour=red"}} {
		if _, err := toolCLI(t, dir, nil, bad...); err == nil {
			t.Errorf("%q succeeded", bad)
		}
	}

	// pause shows in STATUS; unpause, rename.
	cli("pause", "web")
	if got := cli("ps", "--filter", "name=web", "--format", "{{.Status}}"); !regexp.MustCompile(`^Up (Less than a second|\d+ seconds?) \(Paused\)\n$`).MatchString(got) {
		t.Errorf("paused status %q", got)
	}
	if out, err := toolCLI(t, dir, nil, "pause", "web"); err == nil || !strings.Contains(out, "already paused") {
		t.Errorf("second pause: %v %q", err, out)
	}
	if got := cli("unpause", "web"); got != "web\n" {
		t.Errorf("unpause printed %q", got)
	}
	if out, err := toolCLI(t, dir, nil, "pause", "three"); err == nil || !strings.Contains(out, "is not running") {
		t.Errorf("pause of an exited container: %v %q", err, out)
	}
	cli("rename", "web", "web2")
	if got := cli("ps", "-a", "--format", "{{.Names}}"); got != "long\nweb2\nthree\nnew\n" {
		t.Errorf("after rename: %q", got)
	}
	if _, err := toolCLI(t, dir, nil, "rename", "web2", "long"); err == nil {
		t.Error("rename onto a name in use succeeded")
	}
	if got := cli("port", "web2"); got != "" {
		t.Errorf("port of a container without published ports: %q", got)
	}
	// Published ports as the network setup records them.
	recPath := filepath.Join(dir, "root", "containers", web.ID(), "container.json")
	var rec map[string]any
	b, err := os.ReadFile(recPath)
	if err != nil || json.Unmarshal(b, &rec) != nil {
		t.Fatalf("container record: %v", err)
	}
	rec["network"] = map[string]any{"mode": "bridge", "ports": []map[string]any{
		{"HostIP": "0.0.0.0", "HostPort": 8080, "ContainerPort": 80, "Protocol": "tcp"},
		{"HostIP": "::", "HostPort": 8080, "ContainerPort": 80, "Protocol": "tcp"},
		{"HostIP": "127.0.0.1", "HostPort": 5353, "ContainerPort": 53, "Protocol": "udp"}}}
	if b, err = json.Marshal(rec); err != nil || os.WriteFile(recPath, b, 0o600) != nil {
		t.Fatal(err)
	}
	if got := cli("port", "web2"); got != "53/udp -> 127.0.0.1:5353\n80/tcp -> 0.0.0.0:8080\n80/tcp -> [::]:8080\n" {
		t.Errorf("port web2: %q", got)
	}
	if got := cli("port", "web2", "80/tcp"); got != "0.0.0.0:8080\n[::]:8080\n" {
		t.Errorf("port web2 80/tcp: %q", got)
	}
	if got := cli("ps", "--filter", "name=web2", "--format", "{{.Ports}}"); got != "127.0.0.1:5353->53/udp, 0.0.0.0:8080->80/tcp, [::]:8080->80/tcp\n" {
		t.Errorf("ps PORTS: %q", got)
	}
	if _, err := toolCLI(t, dir, nil, "port", "web2", "81"); err == nil || err.Error() != "no public port '81/tcp' published for web2" {
		t.Errorf("port web2 81: %v", err)
	}
}

// TestInspectImagesHistoryCLI checks inspect -f, images and history
// against docker's shapes, and commit's -m="..." form.
func TestInspectImagesHistoryCLI(t *testing.T) {
	dir, rt := toolStore(t)
	cli := func(args ...string) string { t.Helper(); return mustCLI(t, dir, nil, args...) }
	c := toolRun(t, rt, berth.Spec{Name: "web", Cmd: []string{"sleep", "1000"}, Env: []string{"FOO=bar"}})
	if got := cli("inspect", "-f", "{{.State.Status}} {{.State.Running}} {{.Name}}", "web"); got != "running true /web\n" {
		t.Errorf("inspect State: %q", got)
	}
	if got := cli("inspect", "--format", "{{.NetworkSettings.IPAddress}}", "web"); got != "\n" {
		t.Errorf("inspect IPAddress (no network): %q", got)
	}
	var env []string
	if err := json.Unmarshal([]byte(cli("inspect", "-f", "{{json .Config.Env}}", "web")), &env); err != nil ||
		!slices.Contains(env, "FOO=bar") || !slices.ContainsFunc(env, func(s string) bool { return strings.HasPrefix(s, "PATH=") }) {
		t.Errorf("inspect Config.Env: %q %v", env, err)
	}
	if got := cli("inspect", "-f", "{{.Config.Cmd}} {{.Id}}", "web"); got != "[sleep 1000] "+c.ID()+"\n" {
		t.Errorf("inspect Config.Cmd: %q", got)
	}

	images := lines(cli("images"))
	if h := columns(images[0]); !slices.Equal(h, []string{"REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"}) {
		t.Fatalf("images header %q", h)
	}
	if !regexp.MustCompile(`^busybox +latest +[0-9a-f]{12} +` + ago + ` +\d+(\.\d+)?[kM]B$`).MatchString(images[1]) {
		t.Errorf("images row %q", images[1])
	}

	// commit with docker's -m="..." -a="..." forms (the shell drops the quotes).
	if p, err := c.Exec(context.Background(), berth.ExecSpec{Cmd: []string{"touch", "/ifconfig"}}); err != nil {
		t.Fatal(err)
	} else if code, err := p.Wait(context.Background()); code != 0 || err != nil {
		t.Fatal(code, err)
	}
	id := cli("commit", "-m=提交的描述信息 add ifconfig", "-a=zzyy", "web", "zzyyubuntu:1.2")
	if !regexp.MustCompile(`^sha256:[0-9a-f]{64}\n$`).MatchString(id) {
		t.Fatalf("commit printed %q", id)
	}
	hist := lines(cli("history", "zzyyubuntu:1.2"))
	if h := columns(hist[0]); !slices.Equal(h, []string{"IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"}) {
		t.Fatalf("history header %q", h)
	}
	if len(hist) != 3 || !regexp.MustCompile(`^`+id[7:19]+` +`+ago+` +sleep 1000 +\d+(\.\d+)?k?B +提交的描述信息 add ifconfig$`).MatchString(hist[1]) ||
		!regexp.MustCompile(`^<missing> +`+ago+` +\d+(\.\d+)?[kM]B +Imported from -$`).MatchString(hist[2]) {
		t.Errorf("history:\n%s", strings.Join(hist, "\n"))
	}
	if got := cli("inspect", "-f", "{{.Author}}", "zzyyubuntu:1.2"); got != "zzyy\n" {
		t.Errorf("author %q", got)
	}
	if got := cli("images", "--format", "{{.Repository}}:{{.Tag}}"); !strings.Contains(got, "zzyyubuntu:1.2\n") {
		t.Errorf("images after commit: %q", got)
	}
	// A second commit to the tag leaves the first one dangling.
	cli("commit", "--pause=false", "-c", "CMD [\"true\"]", "web", "zzyyubuntu:1.2")
	if got := cli("images", "--filter", "dangling=true", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"); got != "<none>:<none> "+id[7:19]+"\n" {
		t.Errorf("dangling after recommit: %q", got)
	}
}

// TestContainerToolsCLI covers top, stats, diff, export, cp, update and
// events through the command line.
func TestContainerToolsCLI(t *testing.T) {
	dir, rt := toolStore(t)
	start := time.Now()
	cli := func(stdin io.Reader, args ...string) string { t.Helper(); return mustCLI(t, dir, stdin, args...) }
	c := toolRun(t, rt, berth.Spec{Name: "web", Cmd: []string{"sh", "-c", "sleep 1000"}})
	_ = c

	top := lines(cli(nil, "top", "web"))
	if h := columns(top[0]); !slices.Equal(h, []string{"UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"}) {
		t.Fatalf("top header %q", h)
	}
	if !regexp.MustCompile(`^root +\d+ +\d+ +\d+ +\d\d:\d\d +\? +00:00:00 +(sh -c )?sleep 1000$`).MatchString(top[1]) {
		t.Errorf("top row %q", top[1])
	}
	if got := lines(cli(nil, "top", "web", "-eo", "pid,comm")); columns(got[0])[1] != "COMMAND" || !slices.Contains([]string{"sh", "sleep"}, columns(got[1])[1]) {
		t.Errorf("top -eo pid,comm: %q", got)
	}

	stats := lines(cli(nil, "stats", "--no-stream"))
	if h := columns(stats[0]); !slices.Equal(h, []string{"CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O", "BLOCK I/O", "PIDS"}) {
		t.Fatalf("stats header %q", h)
	}
	if len(stats) != 2 || !regexp.MustCompile(`^[0-9a-f]{12} +web +\d+\.\d\d% +\d+(\.\d+)?[KMG]?i?B / \d+(\.\d+)?[KMG]iB +\d+\.\d\d% +0B / 0B +\d+(\.\d+)?[kMG]?B / \d+(\.\d+)?[kMG]?B +[12]$`).MatchString(stats[1]) {
		t.Errorf("stats:\n%s", strings.Join(stats, "\n"))
	}
	if got := cli(nil, "stats", "--no-stream", "--format", "{{.Name}}: {{.PIDs}}", "web"); got != "web: 1\n" {
		t.Errorf("stats --format: %q", got)
	}

	// update changes the limit file of the running container.
	if got := cli(nil, "update", "--memory", "100m", "--pids-limit", "20", "web"); got != "web\n" {
		t.Errorf("update printed %q", got)
	}
	in, _ := c.Inspect(context.Background())
	if in.HostConfig.Memory != 100<<20 || *in.HostConfig.PidsLimit != 20 {
		t.Errorf("after update: %+v", in.HostConfig)
	}
	if _, err := toolCLI(t, dir, nil, "update", "web"); err == nil {
		t.Error("update without flags succeeded")
	}
	if _, err := toolCLI(t, dir, nil, "update", "--memory", "lots", "web"); err == nil {
		t.Error("update --memory lots succeeded")
	}

	// cp both ways, the stream forms included; diff; export.
	host := t.TempDir()
	os.WriteFile(filepath.Join(host, "in.txt"), []byte("hello\n"), 0o644)
	cli(nil, "cp", filepath.Join(host, "in.txt"), "web:/tmp/")
	cli(nil, "cp", "web:/tmp/in.txt", filepath.Join(host, "back.txt"))
	if b, _ := os.ReadFile(filepath.Join(host, "back.txt")); string(b) != "hello\n" {
		t.Errorf("round trip: %q", b)
	}
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	tw.WriteHeader(&tar.Header{Name: "streamed.txt", Typeflag: tar.TypeReg, Mode: 0o644, Size: 3})
	tw.Write([]byte("st\n"))
	tw.Close()
	cli(&tb, "cp", "-", "web:/tmp")
	archive := cli(nil, "cp", "web:/tmp/streamed.txt", "-")
	tr := tar.NewReader(strings.NewReader(archive))
	if h, err := tr.Next(); err != nil || h.Name != "streamed.txt" {
		t.Errorf("cp to stdout: %v %v", h, err)
	}
	for _, bad := range [][]string{{"cp", "web:/a", "web:/b"}, {"cp", "/a", "/b"}, {"cp", "web:/nonexistent", host}, {"cp", "-", "web:/tmp/in.txt"}} {
		if _, err := toolCLI(t, dir, nil, bad...); err == nil {
			t.Errorf("%q succeeded", bad)
		}
	}
	if got := cli(nil, "diff", "web"); got != "C /tmp\nA /tmp/in.txt\nA /tmp/streamed.txt\n" {
		t.Errorf("diff: %q", got)
	}
	cli(nil, "export", "-o", filepath.Join(host, "web.tar"), "web")
	f, err := os.Open(filepath.Join(host, "web.tar"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	found := false
	for tr := tar.NewReader(f); ; {
		h, err := tr.Next()
		if err != nil {
			break
		}
		found = found || h.Name == "tmp/in.txt"
	}
	if !found {
		t.Error("export lacks tmp/in.txt")
	}

	// events: replayed between since and until, docker's line format.
	ev := lines(cli(nil, "events", "--since", start.Format(time.RFC3339Nano), "--until", time.Now().Format(time.RFC3339Nano), "--filter", "type=container"))
	re := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}[-+Z][0-9:]* container (\w+|[\w-]+) [0-9a-f]{64} \((.*)\)$`)
	var acts []string
	for _, l := range ev {
		m := re.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("event line %q", l)
		}
		acts = append(acts, m[1])
	}
	for _, want := range []string{"create", "start", "update", "extract-to-dir", "archive-path", "export"} {
		if !slices.Contains(acts, want) {
			t.Errorf("events lack %s: %q", want, acts)
		}
	}
	if got := cli(nil, "events", "--since", start.Format(time.RFC3339Nano), "--until", "0s", "--filter", "event=create", "--format", "{{.Action}} {{.Actor.Attributes.name}}"); got != "create web\n" {
		t.Errorf("events --format: %q", got)
	}
}

// TestStatusAndPorts checks the STATUS and PORTS renderings.
func TestStatusAndPorts(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		st   berth.State
		want string
	}{
		{berth.State{Status: "running", StartedAt: now.Add(-3 * time.Second)}, "Up 3 seconds"},
		{berth.State{Status: "paused", StartedAt: now.Add(-5 * time.Second)}, "Up 5 seconds (Paused)"},
		{berth.State{Status: "exited", StartedAt: now.Add(-time.Hour), FinishedAt: now.Add(-2 * time.Minute)}, "Exited (0) 2 minutes ago"},
		{berth.State{Status: "restarting", ExitCode: 1, FinishedAt: now.Add(-3 * time.Second)}, "Restarting (1) 3 seconds ago"},
		{berth.State{Status: "created"}, "Created"},
		{berth.State{Status: "dead"}, "Dead"},
	} {
		if got := statusString(tc.st); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.st, got, tc.want)
		}
	}
	p := func(ip string, host, ctr uint16, proto string) berth.PortBinding {
		return berth.PortBinding{HostIP: ip, HostPort: host, ContainerPort: ctr, Protocol: proto}
	}
	for _, tc := range []struct {
		ports []berth.PortBinding
		want  string
	}{
		{nil, ""},
		{[]berth.PortBinding{p("", 8080, 80, "tcp")}, "0.0.0.0:8080->80/tcp"},
		{[]berth.PortBinding{p("0.0.0.0", 8080, 80, "tcp"), p("::", 8080, 80, "tcp")}, "0.0.0.0:8080->80/tcp, [::]:8080->80/tcp"},
		{[]berth.PortBinding{p("", 8000, 8000, "tcp"), p("", 8001, 8001, "tcp"), p("", 53, 53, "udp")}, "0.0.0.0:8000-8001->8000-8001/tcp, 0.0.0.0:53->53/udp"},
		{[]berth.PortBinding{p("10.0.0.100", 8080, 80, "tcp")}, "10.0.0.100:8080->80/tcp"},
	} {
		if got := displayPorts(tc.ports); got != tc.want {
			t.Errorf("%v: %q, want %q", tc.ports, got, tc.want)
		}
	}
	for in, want := range map[string]string{
		"sh -c 'exit 3'":                       "sh -c 'exit 3'",
		"sh -c 'sleep 1000; echo a long line'": "sh -c 'sleep 1000; …",
		"echo 提交的描述信息提交的描述信息":                  "echo 提交的描述信息…",
	} {
		if got := ellipsisWidth(in, 20); got != want {
			t.Errorf("ellipsis %q: %q, want %q", in, got, want)
		}
	}
}
