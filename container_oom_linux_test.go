package berth_test

import (
	"context"
	"testing"

	"github.com/berth-run/berth"
)

// TestForegroundOOMKilled runs a container that outgrows its memory limit
// and checks that its owner records the OOM kill (read from the cgroup
// the runtime made, which the owner finds from the state it holds).
func TestForegroundOOMKilled(t *testing.T) {
	rt := newRuntime(t)
	importBusybox(t, rt, "busybox")
	ctx := context.Background()
	c, err := rt.Run(ctx, berth.Spec{Image: "busybox", Network: "none", Cmd: []string{"tail", "/dev/zero"},
		Resources: berth.Resources{Memory: 16 << 20, MemorySwap: 16 << 20}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Remove(context.Background(), berth.RemoveForce()) })
	code, err := c.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if code != 137 {
		t.Fatalf("exit code %d, want 137", code)
	}
	ins, err := c.Inspect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !ins.State.OOMKilled {
		t.Errorf("OOMKilled is false after an OOM kill: %+v", ins.State)
	}
	// A clean exit clears it.
	ok, err := rt.Run(ctx, berth.Spec{Image: "busybox", Network: "none", Cmd: []string{"true"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ok.Remove(context.Background(), berth.RemoveForce()) })
	if _, err := ok.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if ins, err := ok.Inspect(ctx); err != nil || ins.State.OOMKilled {
		t.Errorf("OOMKilled after a clean exit: %+v, %v", ins, err)
	}
}
