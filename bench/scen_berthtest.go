package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"
	tcredis "github.com/testcontainers/testcontainers-go/modules/redis"

	"github.com/berth-run/berth"
	"github.com/berth-run/berth/berthtest"
	"github.com/berth-run/berth/internal/fixtures"
)

// berthtestRedis measures how long a test waits for a Redis server: from
// berthtest.Redis(t) to the first PING answered, against
// testcontainers-go's redis module on dockerd (Ryuk, its reaper, off: its
// image cannot be pulled here, and berthtest needs none). Both run berth's
// redis fixture (Debian's redis-server) from their local stores: dockerd
// gets it by a docker load of berth's save. The container's removal (a
// test's cleanup) is not timed.
var berthtestRedis = &scenario{name: "berthtest-redis", unit: "ms",
	title: "a Redis for a test, from the call to the first PING: berthtest.Redis vs testcontainers-go on dockerd",
	setup: func(h *harness, t *tb) []*contender {
		rt := h.library(t)
		if _, err := fixtures.Ensure(h.ctx, rt, fixtures.Redis, fixtures.Options{}); err != nil {
			t.Fatal(err)
		}
		ref, _ := fixtures.Ref(fixtures.Redis)
		cs := []*contender{{name: "berth", measure: func(t *tb) float64 {
			return h.scoped(t, func(s *tb) string { return berthtest.Redis(s, berthtest.WithImage(ref)).Addr() })
		}}}
		p := h.peer("docker")
		if p.skip != "" {
			return append(cs, &contender{name: "testcontainers", skip: "dockerd: " + p.skip})
		}
		archive := filepath.Join(t.TempDir(), "redis.tar")
		f, err := os.Create(archive)
		if err != nil {
			t.Fatal(err)
		}
		err = rt.Save(h.ctx, f, []string{ref})
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		p.cli.run(t, "load", "-q", "-i", archive)
		t.Setenv("DOCKER_HOST", "unix://"+p.socket)
		t.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
		tclog.SetDefault(tclog.NewNoopLogger()) // its per-container chatter
		return append(cs, &contender{name: "testcontainers", measure: func(t *tb) float64 {
			return h.scoped(t, func(s *tb) string {
				ctr, err := tcredis.Run(h.ctx, ref)
				if err != nil {
					s.Fatal(err)
				}
				s.Cleanup(func() {
					if err := testcontainers.TerminateContainer(ctr); err != nil {
						s.Error(err)
					}
				})
				addr, err := ctr.Endpoint(h.ctx, "")
				if err != nil {
					s.Fatal(err)
				}
				return addr
			})
		}})
	}}

// scoped times start, which starts a Redis in a scope of its own and
// returns its address, to the first PING answered; the scope's cleanups
// (the container's removal) run after, untimed.
func (h *harness) scoped(t *tb, start func(s *tb) string) float64 {
	s := newTB(h.ctx, t.name, h.work, os.Stdout)
	defer s.close()
	began := time.Now()
	var addr string
	if err := s.do(func() { addr = start(s) }); err != nil {
		t.Fatal(err)
	}
	client := redis.NewClient(&redis.Options{Addr: strings.TrimPrefix(addr, "redis://")})
	defer client.Close()
	for {
		err := client.Ping(context.Background()).Err()
		if err == nil {
			return ms(time.Since(began))
		}
		if time.Since(began) > time.Minute {
			t.Fatalf("PING %s: %v", addr, err)
		}
	}
}

// library is the harness's berth Runtime in this process, on the CLI's
// store: the one berth.Default opens (BERTH_ROOT and BERTH_RUNROOT point
// at that store), so that berthtest uses it too.
func (h *harness) library(t *tb) *berth.Runtime {
	rt, err := berth.Default(h.ctx)
	if err != nil {
		t.Fatal(err)
	}
	return rt
}
