// Package berthtest runs real services for tests in berth containers: no
// Docker daemon, no reaper container, no shell needed in the image for
// readiness checks.
//
//	func TestCache(t *testing.T) {
//		rdb := berthtest.Redis(t) // pulls once, starts, waits; t.Cleanup removes it
//		client := redis.NewClient(&redis.Options{Addr: rdb.Addr()})
//		...
//	}
//
//	c := berthtest.Run(t, berth.Spec{Image: "nginx:1"}, wait.ForHTTP("/"))
//	resp, err := http.Get("http://" + c.HostAddr("80/tcp") + "/")
//
// # The store
//
// Containers and images live in the store that berth.Default opens: the
// directory $BERTH_ROOT, or /var/lib/berth (run root $BERTH_RUNROOT, or
// /run/berth). A store shared by every test binary of a machine is what
// makes an image pulled (or loaded) once serve every later run; the
// separate binaries that `go test ./...` runs in parallel share it
// safely, as any berth processes do. Tests need root (as berth does).
//
// # Lifetime
//
// A container started by Run, Redis, MySQL or MariaDB is removed, with
// its anonymous volumes, by t.Cleanup. The test process is its parent:
// if the process dies however it dies (SIGKILL, a panic, go test's
// timeout), the kernel kills the container, and the next process that
// opens the store removes what is left of it. Shared() containers serve
// every test of the binary that asks for the same thing and go when the
// binary exits.
//
// # Images
//
// Redis, MySQL and MariaDB use the official images (redis:7, mysql:8,
// mariadb:11) unless WithImage or the environment variables
// BERTHTEST_REDIS_IMAGE, BERTHTEST_MYSQL_IMAGE and
// BERTHTEST_MARIADB_IMAGE name others (any image that follows the
// official images' conventions: environment variables, config
// directories, ports). An image missing from the store is pulled.
package berthtest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-run/berth"
	"github.com/berth-run/berth/berthtest/wait"
	"github.com/berth-run/berth/internal/errdefs"
)

// Container is a container a test started, with its published ports.
type Container struct {
	*berth.Container
	ports []berth.PortBinding
}

// StartTimeout bounds pulling the image, starting the container and
// waiting for it.
const StartTimeout = 10 * time.Minute

// labelTest is the label that names the test that started a container.
const labelTest = "run.berth.test"

// Run starts a container from spec for the test t and returns once every
// wait strategy is satisfied. The image is pulled if the store lacks it.
// Every port the image exposes (and every port in spec.Ports) is
// published on a random port of 127.0.0.1 unless spec.Ports gives it a
// host port; HostAddr says where (on the host's network, spec.Network
// "host", nothing is published: the ports are the host's). t.Cleanup
// removes the container and its anonymous volumes. A failure to start or
// to become ready fails the test, showing the container's last log lines.
func Run(t testing.TB, spec berth.Spec, waits ...wait.Strategy) *Container {
	t.Helper()
	c, err := run(t, spec, waits, false)
	if err != nil {
		t.Fatalf("berthtest: %v", err)
	}
	return c
}

// RunShared is Run for a container that every test of this test binary
// that calls RunShared with the same spec shares: the first call starts
// it, the others get it as it is (what a test changes in it, the next
// sees). It is removed when the test binary exits, however it exits.
func RunShared(t testing.TB, spec berth.Spec, waits ...wait.Strategy) *Container {
	t.Helper()
	c, err := runShared(t, "run", spec, waits)
	if err != nil {
		t.Fatalf("berthtest: %v", err)
	}
	return c
}

// run starts spec's container and waits for it. A test's container is
// this process's child and t.Cleanup removes it; a shared one runs under
// the store's monitor, which removes it once this process has exited.
func run(t testing.TB, spec berth.Spec, waits []wait.Strategy, shared bool) (*Container, error) {
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	rt, err := berth.Default(ctx)
	if err != nil {
		return nil, err
	}
	if spec.Image == "" {
		return nil, errdefs.New(errdefs.ErrInvalid, "spec.Image is empty")
	}
	im, err := image(ctx, rt, spec.Image)
	if err != nil {
		return nil, err
	}
	if spec.Network == "host" {
		spec.Ports = nil // the container's ports are the host's
	} else {
		spec.Ports = publish(spec.Ports, im.Config().Config)
	}
	spec.DieWithCreator = true
	spec.Labels = maps.Clone(spec.Labels)
	if spec.Labels == nil {
		spec.Labels = map[string]string{}
	}
	spec.Labels[labelTest] = t.Name()
	if shared {
		spec.Labels[labelTest] = "shared"
	}
	ctr, err := rt.Create(ctx, spec)
	if err != nil {
		return nil, fmt.Errorf("create a container of %s: %w", spec.Image, err)
	}
	remove := func() error {
		err := ctr.Remove(context.Background(), berth.RemoveForce(), berth.RemoveVolumes())
		if errors.Is(err, berth.ErrNotFound) {
			return nil
		}
		return err
	}
	if !shared {
		t.Cleanup(func() {
			if err := remove(); err != nil {
				t.Errorf("berthtest: remove container %s: %v", ctr.Name(), err)
			}
		})
	}
	var opts []berth.RunOption
	if shared {
		opts = append(opts, berth.WithDetach())
	}
	if err := ctr.Start(ctx, opts...); err != nil {
		err = fmt.Errorf("start container %s of %s: %w\nits last log lines:\n%s", ctr.Name(), spec.Image, err, wait.LastLogs(ctr, wait.LogLines))
		if shared {
			_ = remove()
		}
		return nil, err
	}
	c := &Container{Container: ctr}
	if c.ports, err = wait.Ports(ctx, ctr); err == nil && len(waits) > 0 {
		err = wait.ForAll(waits...).WaitUntilReady(ctx, ctr)
	}
	if err != nil {
		if shared {
			_ = remove()
		}
		return nil, fmt.Errorf("container %s of %s is not ready: %w", ctr.Name(), spec.Image, err)
	}
	return c, nil
}

// image finds ref in the store, pulling it when it is not there.
func image(ctx context.Context, rt *berth.Runtime, ref string) (*berth.Image, error) {
	im, err := rt.Image(ctx, ref)
	if err == nil {
		return im, nil
	}
	if !errors.Is(err, berth.ErrNotFound) {
		return nil, err
	}
	im, err = rt.Pull(ctx, ref)
	if err != nil {
		return nil, fmt.Errorf("image %s is not in store %s and pulling it failed: %w", ref, rt.Root(), err)
	}
	return im, nil
}

// publish adds to ports a binding on a random port of 127.0.0.1 for each
// port cfg exposes that ports does not publish yet, and gives bindings
// without a host address 127.0.0.1.
func publish(ports []berth.PortBinding, cfg ocispec.ImageConfig) []berth.PortBinding {
	out := make([]berth.PortBinding, 0, len(ports)+len(cfg.ExposedPorts))
	bound := map[string]bool{}
	for _, p := range ports {
		if p.HostIP == "" {
			p.HostIP = "127.0.0.1"
		}
		bound[fmt.Sprintf("%d/%s", p.ContainerPort, protoOr(p.Protocol))] = true
		out = append(out, p)
	}
	for _, e := range slices.Sorted(maps.Keys(cfg.ExposedPorts)) {
		num, proto, _ := strings.Cut(e, "/")
		proto = protoOr(proto)
		n, err := strconv.ParseUint(num, 10, 16)
		if err != nil || n == 0 || bound[fmt.Sprintf("%d/%s", n, proto)] {
			continue
		}
		out = append(out, berth.PortBinding{HostIP: "127.0.0.1", ContainerPort: uint16(n), Protocol: proto})
	}
	return out
}

func protoOr(p string) string {
	if p == "" {
		return "tcp"
	}
	return p
}

// Host is the address the container's ports are published on.
func (c *Container) Host() string { return "127.0.0.1" }

// HostPort returns the host port that the container port ("6379/tcp",
// "6379") is published on, 0 if it is not.
func (c *Container) HostPort(port string) int {
	num, proto, _ := strings.Cut(port, "/")
	proto = protoOr(proto)
	for _, p := range c.ports {
		if strconv.Itoa(int(p.ContainerPort)) == num && protoOr(p.Protocol) == proto {
			return int(p.HostPort)
		}
	}
	return 0
}

// HostAddr returns "127.0.0.1:PORT", the host address that the container
// port ("6379/tcp", "6379") is published on; it panics if the port is
// not published (a test's mistake).
func (c *Container) HostAddr(port string) string {
	hp := c.HostPort(port)
	if hp == 0 {
		panic(fmt.Sprintf("berthtest: container %s does not publish port %s", c.Name(), port))
	}
	host := c.Host()
	for _, p := range c.ports {
		if int(p.HostPort) == hp && p.HostIP != "" && p.HostIP != "0.0.0.0" {
			host = p.HostIP
		}
	}
	return net.JoinHostPort(host, strconv.Itoa(hp))
}

// Logs returns the container's log so far (both streams).
func (c *Container) Logs() string { return wait.LastLogs(c.Container, 1<<30) }
