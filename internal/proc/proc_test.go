package proc

import (
	"os/exec"
	"runtime"
	"testing"
)

func TestSelfAlive(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("needs /proc")
	}
	me := Self()
	if me.Start == 0 || !me.Alive() {
		t.Fatalf("self %v not alive", me)
	}
	id, ok := ParseID(me.String())
	if !ok || id != me {
		t.Fatalf("round trip %v -> %q -> %v", me, me.String(), id)
	}
	if (ID{PID: me.PID, Start: me.Start + 1}).Alive() {
		t.Fatal("a different start time must not be alive")
	}
}

func TestExited(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("needs /proc")
	}
	cmd := exec.Command("/bin/sh", "-c", "exit 0")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	id, err := Of(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if id.Alive() {
		t.Fatal("exited process reported alive")
	}
	if _, ok := ParseID("x.1"); ok {
		t.Fatal("ParseID accepted garbage")
	}
}
