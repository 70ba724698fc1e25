package cache_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/berth-run/berth/berthtest"
	"github.com/berth-run/berth/examples/berthtest/cache"
)

func TestHit(t *testing.T) {
	rdb := berthtest.Redis(t)
	client := redis.NewClient(&redis.Options{Addr: rdb.Addr()})
	defer client.Close()
	views := cache.New(client, time.Hour)
	ctx := context.Background()

	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if _, err := views.Hit(ctx, "/home"); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n, err := views.Count(ctx, "/home"); err != nil || n != 50 {
		t.Fatalf("Count(/home) = %d, %v; want 50", n, err)
	}
	if n, err := views.Count(ctx, "/never"); err != nil || n != 0 {
		t.Fatalf("Count(/never) = %d, %v; want 0", n, err)
	}
	if ttl := client.TTL(ctx, "views:/home").Val(); ttl <= 0 || ttl > time.Hour {
		t.Fatalf("TTL = %s", ttl)
	}
}

// The tests below share one server (berthtest.Shared): each uses keys of
// its own.
func TestSharedA(t *testing.T) { hitShared(t, "/a") }
func TestSharedB(t *testing.T) { hitShared(t, "/b") }

func hitShared(t *testing.T, page string) {
	rdb := berthtest.Redis(t, berthtest.Shared())
	client := redis.NewClient(&redis.Options{Addr: rdb.Addr()})
	defer client.Close()
	if n, err := cache.New(client, time.Minute).Hit(context.Background(), page); err != nil || n != 1 {
		t.Fatalf("Hit(%s) = %d, %v; want 1", page, n, err)
	}
}
