package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/berth-run/berth"
	"github.com/berth-run/berth/internal/testutil"
)

func TestNetworkCLI(t *testing.T) {
	testutil.RequiresRoot(t)
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	t.Cleanup(func() { testutil.RemoveBerthNetworking(t, root) })
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

	ls := run("network", "ls")
	if !regexp.MustCompile(`^NETWORK ID\s+NAME\s+DRIVER\s+SCOPE\n[0-9a-f]{12}\s+bridge\s+bridge\s+local\n[0-9a-f]{12}\s+host\s+host\s+local\n[0-9a-f]{12}\s+none\s+null\s+local\n$`).MatchString(ls) {
		t.Errorf("network ls:\n%s", ls)
	}
	id := strings.TrimSpace(run("network", "create", "--subnet", "10.131.0.0/24", "--gateway", "10.131.0.254", "--label", "k=v", "--internal", "n1"))
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(id) {
		t.Fatalf("network create printed %q", id)
	}
	run("network", "create", "-d", "bridge", "n2")
	fails("already exists", "network", "create", "n1")
	fails("Pool overlaps", "network", "create", "--subnet", "10.131.0.0/16", "n3")
	fails("not supported", "network", "create", "-d", "macvlan", "n3")
	fails("invalid network name", "network", "create", "no/slash")

	expect(id+"\n", "network", "ls", "-q", "--no-trunc", "--filter", "label=k=v")
	expect("n1\nn2\n", "network", "list", "--filter", "type=custom", "--format", "{{.Name}}")
	expect("n1 10.131.0.0/24 10.131.0.254 true map[k:v]\n", "network", "inspect", "-f",
		"{{.Name}} {{(index .IPAM.Config 0).Subnet}} {{(index .IPAM.Config 0).Gateway}} {{.Internal}} {{.Labels}}", "n1")
	fails("not found", "network", "inspect", "nosuch")

	// A container started by this process (its parent) on n1.
	ctx := context.Background()
	rt, err := berth.Open(ctx, berth.WithRoot(root), berth.WithRunRoot(filepath.Join(dir, "run")))
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	f, err := os.Open(testutil.BusyboxTar(t))
	if err != nil {
		t.Fatal(err)
	}
	_, err = rt.Import(ctx, f, "busybox", berth.WithChanges(`CMD ["sh"]`))
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	c, err := rt.Run(ctx, berth.Spec{Image: "busybox", Name: "member", Network: "n1", Cmd: []string{"sleep", "600"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Remove(ctx, berth.RemoveForce())
	expect("member 10.131.0.1/24\n", "network", "inspect", "-f", "{{range .Containers}}{{.Name}} {{.IPv4Address}}{{end}}", "n1")
	fails("not in network n2's subnet", "network", "connect", "--ip", "10.131.0.9", "n2", "member")
	expect("", "network", "connect", "--alias", "m2", "n2", "member")
	fails("already exists", "network", "connect", "n2", "member")
	got := run("inspect", "-f", "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}", "member")
	if got != "n1 n2 \n" {
		t.Errorf("networks of member: %q", got)
	}
	expect("", "network", "disconnect", "n2", "member")
	fails("is not connected", "network", "disconnect", "n2", "member")
	fails("has active endpoints", "network", "rm", "n1")
	fails("pre-defined network", "network", "rm", "bridge")
	expect("Deleted Networks:\nn2\n", "network", "prune", "-f")
	if err := c.Remove(ctx, berth.RemoveForce()); err != nil {
		t.Fatal(err)
	}
	expect("n1\n", "network", "rm", "n1")
	expect("", "network", "rm", "-f", "n1")
	fails("not found", "network", "rm", "n1")
	expect("bridge\nhost\nnone\n", "network", "ls", "--format", "{{.Name}}")
}
