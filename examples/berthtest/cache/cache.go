// Package cache counts page views in Redis.
package cache

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
)

// Views counts views per page in Redis.
type Views struct {
	rdb *redis.Client
	ttl time.Duration
}

// New returns a counter whose counts expire ttl after their last view.
func New(rdb *redis.Client, ttl time.Duration) *Views { return &Views{rdb: rdb, ttl: ttl} }

// Hit counts a view of page and returns its count.
func (v *Views) Hit(ctx context.Context, page string) (int64, error) {
	key := "views:" + page
	pipe := v.rdb.TxPipeline()
	n := pipe.Incr(ctx, key)
	pipe.Expire(ctx, key, v.ttl)
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, err
	}
	return n.Val(), nil
}

// Count returns the count of page.
func (v *Views) Count(ctx context.Context, page string) (int64, error) {
	n, err := v.rdb.Get(ctx, "views:"+page).Int64()
	if err == redis.Nil {
		return 0, nil
	}
	return n, err
}
