package berth_test

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"os"

	"github.com/berth-run/berth"
)

// Run a container in the foreground: this program is its parent, its
// output is copied here, Wait returns its exit code.
func ExampleRuntime_Run() {
	ctx := context.Background()
	rt, err := berth.Open(ctx) // $BERTH_ROOT or /var/lib/berth
	if err != nil {
		log.Fatal(err)
	}
	defer rt.Close()
	ctr, err := rt.Run(ctx, berth.Spec{
		Image:      "busybox",
		Cmd:        []string{"sh", "-c", "echo hello from $(hostname)"},
		Network:    "none",
		AutoRemove: true,
	}, berth.WithStdout(os.Stdout))
	if err != nil {
		log.Fatal(err)
	}
	code, err := ctr.Wait(ctx)
	fmt.Println("exit code", code, err)
}

// Publish a port, exec into the container, stop and remove it.
func ExampleContainer_Exec() {
	ctx := context.Background()
	rt, err := berth.Open(ctx)
	if err != nil {
		log.Fatal(err)
	}
	ports, err := berth.ParsePorts("127.0.0.1::6379") // a free host port on loopback
	if err != nil {
		log.Fatal(err)
	}
	ctr, err := rt.Run(ctx, berth.Spec{Image: "redis:7", Ports: ports}, berth.WithDetach())
	if err != nil {
		log.Fatal(err)
	}
	defer ctr.Remove(ctx, berth.RemoveForce())
	var out bytes.Buffer
	p, err := ctr.Exec(ctx, berth.ExecSpec{Cmd: []string{"redis-cli", "ping"}, Stdout: &out})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := p.Wait(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Print(out.String())
}

// Move an image between machines as a file, as docker save and load.
func ExampleRuntime_Save() {
	ctx := context.Background()
	rt, err := berth.Open(ctx)
	if err != nil {
		log.Fatal(err)
	}
	f, err := os.Create("busybox.tar")
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	if err := rt.Save(ctx, f, []string{"busybox:latest"}, berth.WithFormat(berth.DockerArchive)); err != nil {
		log.Fatal(err)
	}
}
