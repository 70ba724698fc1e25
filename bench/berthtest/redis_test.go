// Package berthtest_bench measures how long a test waits for a Redis
// server: from berthtest.Redis(t) to the first PING answered, against
// testcontainers-go's redis module on Debian's dockerd, alternated in one
// run. The image is berth's redis fixture (Debian's redis-server, built
// or loaded from the machine's fixture cache), loaded into dockerd with
// `docker load` of the archive berth saved; both engines run it from
// their local stores (no pull). Ryuk, testcontainers' reaper, is off (its
// image cannot be pulled here; berthtest needs no reaper).
//
// It is a module of its own so that berth does not depend on
// testcontainers-go. Run it with ./run.sh (as root): it builds the test
// binary, then runs it in a network namespace of its own, so that
// dockerd's bridge and iptables rules and berth's bridge and nft table
// all vanish with it. Settings: BENCH_ROUNDS (default 15).
package berthtest_bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/testcontainers/testcontainers-go"
	tcredis "github.com/testcontainers/testcontainers-go/modules/redis"

	"github.com/berth-run/berth"
	"github.com/berth-run/berth/berthtest"
	"github.com/berth-run/berth/internal/fixtures"
	"github.com/berth-run/berth/internal/testutil"
)

func BenchmarkRedisReady(b *testing.B) {
	testutil.RequiresRoot(b)
	testutil.RequiresCommand(b, "dockerd")
	ctx := context.Background()
	scratch := b.TempDir()
	// berthtest's store: a scratch one, loaded from the fixture cache.
	b.Setenv("BERTH_ROOT", filepath.Join(scratch, "berth"))
	b.Setenv("BERTH_RUNROOT", filepath.Join(scratch, "berth-run"))
	rt, err := berth.Default(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := fixtures.Ensure(ctx, rt, fixtures.Redis, fixtures.Options{}); err != nil {
		b.Fatal(err)
	}
	ref, _ := fixtures.Ref(fixtures.Redis)
	archive := filepath.Join(scratch, "redis.tar")
	f, err := os.Create(archive)
	if err != nil {
		b.Fatal(err)
	}
	if err := rt.Save(ctx, f, []string{ref}); err != nil {
		b.Fatal(err)
	}
	f.Close()

	docker := startDockerd(b, filepath.Join(scratch, "docker"))
	if out, err := docker("load", "-i", archive); err != nil {
		b.Fatalf("docker load: %v\n%s", err, out)
	}
	b.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")

	rounds, _ := strconv.Atoi(os.Getenv("BENCH_ROUNDS"))
	if rounds <= 0 {
		rounds = 15
	}
	engines := []struct {
		name  string
		ready func(b *testing.B) time.Duration
	}{
		{"berthtest", func(b *testing.B) time.Duration {
			start := time.Now()
			rdb := berthtest.Redis(b, berthtest.WithImage(ref))
			return pingFrom(b, start, rdb.Addr())
		}},
		{"testcontainers", func(b *testing.B) time.Duration {
			start := time.Now()
			ctr, err := tcredis.Run(ctx, ref)
			if err != nil {
				b.Fatal(err)
			}
			defer func() {
				if err := testcontainers.TerminateContainer(ctr); err != nil {
					b.Error(err)
				}
			}()
			endpoint, err := ctr.Endpoint(ctx, "")
			if err != nil {
				b.Fatal(err)
			}
			return pingFrom(b, start, endpoint)
		}},
	}
	// A warm-up of each (the store's first open, dockerd's first run).
	for _, e := range engines {
		b.Run("warmup-"+e.name, func(b *testing.B) { e.ready(b) })
	}
	times := map[string][]time.Duration{}
	for i := range rounds {
		order := []int{0, 1}
		if i%2 == 1 {
			order = []int{1, 0}
		}
		for _, j := range order {
			e := engines[j]
			b.Run(fmt.Sprintf("%s-%d", e.name, i), func(b *testing.B) {
				times[e.name] = append(times[e.name], e.ready(b))
			})
		}
	}
	bt, tt := median(times["berthtest"]), median(times["testcontainers"])
	b.Logf("redis ready (from the call to the first PING), medians of %d rounds:", rounds)
	b.Logf("  berthtest.Redis:        %8.1f ms  (min %.1f, max %.1f)", ms(bt), ms(slices.Min(times["berthtest"])), ms(slices.Max(times["berthtest"])))
	b.Logf("  testcontainers-go redis: %8.1f ms  (min %.1f, max %.1f)", ms(tt), ms(slices.Min(times["testcontainers"])), ms(slices.Max(times["testcontainers"])))
	b.Logf("  ratio berthtest/testcontainers: %.3f (of the minimums %.3f)", float64(bt)/float64(tt),
		float64(slices.Min(times["berthtest"]))/float64(slices.Min(times["testcontainers"])))
	b.ReportMetric(ms(bt), "berth-ms")
	b.ReportMetric(ms(tt), "testcontainers-ms")
}

// pingFrom returns the time from start to the first PING answered by the
// Redis at addr ("host:port", or a redis:// URL).
func pingFrom(b *testing.B, start time.Time, addr string) time.Duration {
	b.Helper()
	addr = strings.TrimPrefix(addr, "redis://")
	client := redis.NewClient(&redis.Options{Addr: addr})
	defer client.Close()
	for {
		err := client.Ping(context.Background()).Err()
		if err == nil {
			return time.Since(start)
		}
		if time.Since(start) > time.Minute {
			b.Fatalf("PING %s: %v", addr, err)
		}
	}
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// startDockerd starts Debian's dockerd as PEERS.md says, with its data
// root, exec root and socket under dir, points testcontainers-go at it
// (DOCKER_HOST), stops it when the benchmark ends, and returns a runner
// of Debian's docker client on it.
func startDockerd(b *testing.B, dir string) func(args ...string) ([]byte, error) {
	b.Helper()
	sock := filepath.Join(dir, "docker.sock")
	for _, d := range []string{"data", "exec"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			b.Fatal(err)
		}
	}
	_, keyErr := os.Stat("/etc/docker/key.json")
	logf, err := os.Create(filepath.Join(dir, "dockerd.log"))
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command("dockerd", "--data-root", filepath.Join(dir, "data"), "--exec-root", filepath.Join(dir, "exec"),
		"-H", "unix://"+sock, "--pidfile", filepath.Join(dir, "docker.pid"),
		"--default-ulimit", "nofile=20000:20000", "--default-ulimit", "nproc=16384:16384")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		logf.Close()
		if os.IsNotExist(keyErr) {
			os.Remove("/etc/docker/key.json") // dockerd 20.10 writes it
		}
	})
	docker := func(args ...string) ([]byte, error) {
		// Debian's client: a newer one in /usr/local/bin may shadow it.
		return exec.Command("/usr/bin/docker", append([]string{"-H", "unix://" + sock}, args...)...).CombinedOutput()
	}
	deadline := time.Now().Add(time.Minute)
	for {
		if _, err := docker("version"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "dockerd.log"))
			b.Fatalf("dockerd did not start:\n%s", log)
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.Setenv("DOCKER_HOST", "unix://"+sock)
	return docker
}
