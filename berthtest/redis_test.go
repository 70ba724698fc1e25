package berthtest_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/berth-run/berth/berthtest"
	"github.com/berth-run/berth/internal/fixtures"
	"github.com/berth-run/berth/internal/testutil"
)

func TestRedis(t *testing.T) {
	useFixtures(t)
	rdb := berthtest.Redis(t)
	client := redis.NewClient(&redis.Options{Addr: rdb.Addr()})
	defer client.Close()
	ctx := context.Background()
	if err := client.Set(ctx, "greeting", "中文测试", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if got, err := client.Get(ctx, "greeting").Result(); err != nil || got != "中文测试" {
		t.Fatalf("GET greeting = %q, %v", got, err)
	}
	// The official image's conventions: protected mode off, data in /data.
	if got := client.ConfigGet(ctx, "protected-mode").Val()["protected-mode"]; got != "no" {
		t.Errorf("protected-mode = %q, want no", got)
	}
	if got := client.ConfigGet(ctx, "dir").Val()["dir"]; got != "/data" {
		t.Errorf("dir = %q, want /data", got)
	}
	if rdb.Password() != "" {
		t.Errorf("Password() = %q without WithPassword", rdb.Password())
	}
}

func TestRedisPasswordAndConfigFile(t *testing.T) {
	useFixtures(t)
	conf := filepath.Join(t.TempDir(), "redis.conf")
	if err := os.WriteFile(conf, []byte("appendonly yes\nmaxmemory-policy allkeys-lru\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rdb := berthtest.Redis(t, berthtest.WithPassword("s3cret"), berthtest.WithConfigFile(conf))
	ctx := context.Background()
	anon := redis.NewClient(&redis.Options{Addr: rdb.Addr()})
	defer anon.Close()
	if err := anon.Ping(ctx).Err(); err == nil || !strings.Contains(err.Error(), "NOAUTH") {
		t.Fatalf("PING without the password: %v, want NOAUTH", err)
	}
	client := redis.NewClient(&redis.Options{Addr: rdb.Addr(), Password: rdb.Password()})
	defer client.Close()
	if err := client.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	cfg := client.ConfigGet(ctx, "*").Val()
	if cfg["appendonly"] != "yes" || cfg["maxmemory-policy"] != "allkeys-lru" || cfg["requirepass"] != "s3cret" {
		t.Errorf("config: appendonly=%q maxmemory-policy=%q requirepass=%q", cfg["appendonly"], cfg["maxmemory-policy"], cfg["requirepass"])
	}
}

func TestRedisRejectsSQLOptions(t *testing.T) {
	ft := &fatalT{T: t}
	ft.run(func() { berthtest.Redis(ft, berthtest.WithDatabase("x")) })
	if !strings.Contains(ft.msg, "WithDatabase") {
		t.Fatalf("Redis with WithDatabase: %q", ft.msg)
	}
}

// fatalT records a Fatalf instead of failing the test, to test the
// harness's own failures.
type fatalT struct {
	*testing.T
	msg string
}

func (f *fatalT) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (f *fatalT) Fatal(args ...any) {
	f.msg = fmt.Sprint(args...)
	runtime.Goexit()
}

// run runs fn in a goroutine of its own (Fatalf ends it) and waits.
func (f *fatalT) run(fn func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	<-done
}

// TestPullsMissingImage: an image the store lacks is pulled (here from a
// local registry the redis fixture was pushed to).
func TestPullsMissingImage(t *testing.T) {
	ref := fixture(t, fixtures.Redis)
	reg := testutil.StartRegistry(t, testutil.RegistryOptions{})
	ctx := context.Background()
	rt := store(t)
	im, err := rt.Image(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	remote := reg.Addr + "/berth-fixtures/redis:7"
	if _, err := im.Push(ctx, remote); err != nil {
		t.Fatal(err)
	}
	if _, err := rt.Image(ctx, remote); err == nil {
		t.Fatalf("%s is in the store before the test", remote)
	}
	t.Cleanup(func() {
		if err := rt.Untag(context.Background(), remote); err != nil {
			t.Error(err)
		}
	})
	rdb := berthtest.Redis(t, berthtest.WithImage(remote))
	client := redis.NewClient(&redis.Options{Addr: rdb.Addr()})
	defer client.Close()
	if err := client.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := rt.Image(ctx, remote); err != nil {
		t.Fatalf("after the test: %v", err)
	}
}
