package berthtest

import (
	"os"

	"github.com/berth-run/berth"
)

// Option configures Redis, MySQL and MariaDB.
type Option func(*settings)

type settings struct {
	image       string
	password    *string
	user        string
	database    string
	configFile  string
	initScripts []string
	env         []string
	shared      bool
	edits       []func(*berth.Spec)
}

func makeSettings(opts []Option) settings {
	var s settings
	for _, o := range opts {
		o(&s)
	}
	return s
}

// imageOr is the image to run: WithImage's, else $env's, else def.
func (s *settings) imageOr(env, def string) string {
	if s.image != "" {
		return s.image
	}
	if v := os.Getenv(env); v != "" {
		return v
	}
	return def
}

// WithImage runs ref instead of the module's default image. Default:
// $BERTHTEST_REDIS_IMAGE or redis:7 (Redis), $BERTHTEST_MYSQL_IMAGE or
// mysql:8 (MySQL), $BERTHTEST_MARIADB_IMAGE or mariadb:11 (MariaDB).
func WithImage(ref string) Option { return func(s *settings) { s.image = ref } }

// WithPassword sets the password: Redis's requirepass, or the password
// of the MySQL/MariaDB user (and of root). Default: none for Redis,
// "test" for MySQL and MariaDB.
func WithPassword(password string) Option { return func(s *settings) { s.password = &password } }

// WithUser sets the MySQL/MariaDB user the DSN connects as; "root" uses
// the root account alone. Default "test".
func WithUser(user string) Option { return func(s *settings) { s.user = user } }

// WithDatabase sets the MySQL/MariaDB database that is created and that
// the DSN names. Default "test".
func WithDatabase(name string) Option { return func(s *settings) { s.database = name } }

// WithConfigFile bind-mounts the host file path (read-only) as the
// server's configuration: Redis is started with it as its redis.conf;
// MySQL and MariaDB read it from /etc/mysql/conf.d. Default: the image's
// configuration.
func WithConfigFile(path string) Option { return func(s *settings) { s.configFile = path } }

// WithInitScripts bind-mounts the host files (read-only) into
// /docker-entrypoint-initdb.d, where the MySQL and MariaDB images run
// *.sql and *.sh files, in name order, when they create the database.
// Default: none.
func WithInitScripts(paths ...string) Option {
	return func(s *settings) { s.initScripts = append(s.initScripts, paths...) }
}

// WithEnv adds environment variables ("KEY=VALUE") to the container's.
// Default: none.
func WithEnv(env ...string) Option { return func(s *settings) { s.env = append(s.env, env...) } }

// WithSpec lets fn change the container's Spec before it starts (mounts,
// resources, a name...). Default: none.
func WithSpec(fn func(*berth.Spec)) Option {
	return func(s *settings) { s.edits = append(s.edits, fn) }
}

// Shared makes the tests of this test binary that ask for the same
// container (same options) share one, started by the first and removed
// when the binary exits (see RunShared). Default: one container per
// call, removed when its test ends.
func Shared() Option { return func(s *settings) { s.shared = true } }
