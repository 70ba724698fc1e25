package berthtest

import (
	"path/filepath"
	"testing"

	"github.com/berth-run/berth"
	"github.com/berth-run/berth/berthtest/wait"
)

// DefaultRedisImage is the image Redis runs unless WithImage or
// $BERTHTEST_REDIS_IMAGE name another.
const DefaultRedisImage = "redis:7"

// redisConfPath is where WithConfigFile's file is mounted, as the
// official image's documentation puts it.
const redisConfPath = "/usr/local/etc/redis/redis.conf"

// RedisContainer is a Redis server for a test.
type RedisContainer struct {
	*Container
	password string
}

// Addr is the server's address, "127.0.0.1:PORT" (go-redis's
// Options.Addr).
func (r *RedisContainer) Addr() string { return r.HostAddr("6379/tcp") }

// Password is the server's password ("" without one).
func (r *RedisContainer) Password() string { return r.password }

// Redis starts a Redis server for the test t and returns once it accepts
// connections. Options: WithImage, WithPassword, WithConfigFile,
// WithEnv, WithSpec, Shared.
func Redis(t testing.TB, opts ...Option) *RedisContainer {
	t.Helper()
	s := makeSettings(opts)
	if s.user != "" || s.database != "" || len(s.initScripts) > 0 {
		t.Fatalf("berthtest: Redis takes no WithUser, WithDatabase or WithInitScripts")
	}
	spec := berth.Spec{
		Image: s.imageOr("BERTHTEST_REDIS_IMAGE", DefaultRedisImage),
		Env:   s.env,
		Ports: []berth.PortBinding{{ContainerPort: 6379}},
	}
	r := &RedisContainer{}
	if s.configFile != "" || s.password != nil {
		spec.Cmd = []string{"redis-server"}
	}
	if s.configFile != "" {
		abs, err := filepath.Abs(s.configFile)
		if err != nil {
			t.Fatalf("berthtest: redis config file: %v", err)
		}
		spec.Mounts = append(spec.Mounts, berth.Mount{Type: berth.MountTypeBind, Source: abs, Target: redisConfPath, ReadOnly: true})
		spec.Cmd = append(spec.Cmd, redisConfPath)
	}
	if s.password != nil && *s.password != "" {
		r.password = *s.password
		spec.Cmd = append(spec.Cmd, "--requirepass", r.password)
	}
	c := start(t, "redis", s, spec, wait.ForLog("Ready to accept connections"), wait.ForPort("6379/tcp"))
	r.Container = c
	return r
}

// start runs spec with the module settings' edits, shared or not.
func start(t testing.TB, kind string, s settings, spec berth.Spec, waits ...wait.Strategy) *Container {
	t.Helper()
	for _, fn := range s.edits {
		fn(&spec)
	}
	var c *Container
	var err error
	if s.shared {
		c, err = runShared(t, kind, spec, waits)
	} else {
		c, err = run(t, spec, waits, false)
	}
	if err != nil {
		t.Fatalf("berthtest: %s: %v", kind, err)
	}
	return c
}
