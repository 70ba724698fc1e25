// Command redis embeds berth to run a Redis server in a container, uses
// it with go-redis, and removes it: no Docker daemon, the program is the
// container's parent (it dies with the program).
//
//	go build -o redis-demo ./examples/redis && sudo ./redis-demo [-image redis:7]
//
// The image is pulled if the store ($BERTH_ROOT, or /var/lib/berth) lacks
// it; -image (default $BERTHTEST_REDIS_IMAGE, or redis:7) names another.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/berth-run/berth"
	"github.com/berth-run/berth/berthtest/wait"
)

func main() {
	def := os.Getenv("BERTHTEST_REDIS_IMAGE")
	if def == "" {
		def = "redis:7"
	}
	image := flag.String("image", def, "the Redis image")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *image, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "redis:", err)
		os.Exit(1)
	}
}

// run starts Redis from image, talks to it, writes what it did to out,
// and removes the container.
func run(ctx context.Context, image string, out io.Writer) (err error) {
	rt, err := berth.Open(ctx)
	if err != nil {
		return err
	}
	defer rt.Close()
	if _, err := rt.Image(ctx, image); err != nil {
		fmt.Fprintf(out, "pulling %s\n", image)
		if _, err := rt.Pull(ctx, image); err != nil {
			return err
		}
	}

	start := time.Now()
	ctr, err := rt.Run(ctx, berth.Spec{
		Image: image,
		// A random free port of 127.0.0.1 (docker -p 127.0.0.1::6379).
		Ports: []berth.PortBinding{{HostIP: "127.0.0.1", ContainerPort: 6379}},
	})
	if err != nil {
		return err
	}
	defer func() {
		if rerr := ctr.Remove(context.WithoutCancel(ctx), berth.RemoveForce(), berth.RemoveVolumes()); err == nil {
			err = rerr
		}
	}()
	ready := wait.ForAll(wait.ForLog("Ready to accept connections"), wait.ForPort("6379/tcp")).WithTimeout(time.Minute)
	if err := ready.WaitUntilReady(ctx, ctr); err != nil {
		return err
	}
	addr, err := wait.HostAddr(ctx, ctr, "6379/tcp")
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "container %s: redis ready on %s in %s\n", ctr.Name(), addr, time.Since(start).Round(time.Millisecond))

	client := redis.NewClient(&redis.Options{Addr: addr})
	defer client.Close()
	if err := client.Set(ctx, "greeting", "hello from berth", 0).Err(); err != nil {
		return err
	}
	for range 3 {
		if err := client.Incr(ctx, "visits").Err(); err != nil {
			return err
		}
	}
	greeting, err := client.Get(ctx, "greeting").Result()
	if err != nil {
		return err
	}
	visits, err := client.Get(ctx, "visits").Int()
	if err != nil {
		return err
	}
	info, err := client.Info(ctx, "server").Result()
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "greeting=%q visits=%d %s\n", greeting, visits, firstField(info, "redis_version"))
	return nil
}

// firstField returns the "name:value" line of a Redis INFO reply.
func firstField(info, name string) string {
	for line := range strings.Lines(info) {
		if line = strings.TrimSpace(line); strings.HasPrefix(line, name+":") {
			return line
		}
	}
	return name + ":?"
}
