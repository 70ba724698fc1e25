package berthtest

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/berth-run/berth"
	"github.com/berth-run/berth/berthtest/wait"
)

// Default images of MySQL and MariaDB, unless WithImage or
// $BERTHTEST_MYSQL_IMAGE / $BERTHTEST_MARIADB_IMAGE name others.
const (
	DefaultMySQLImage   = "mysql:8"
	DefaultMariaDBImage = "mariadb:11"
)

// MySQLContainer is a MySQL or MariaDB server for a test.
type MySQLContainer struct {
	*Container
	user, password, database string
}

// Addr is the server's address, "127.0.0.1:PORT".
func (m *MySQLContainer) Addr() string { return m.HostAddr("3306/tcp") }

// User, Password and Database are what DSN connects with.
func (m *MySQLContainer) User() string     { return m.user }
func (m *MySQLContainer) Password() string { return m.password }
func (m *MySQLContainer) Database() string { return m.database }

// DSN is the data source name of the database for
// github.com/go-sql-driver/mysql: "test:test@tcp(127.0.0.1:PORT)/test".
func (m *MySQLContainer) DSN() string { return m.dsn(m.Addr()) }

func (m *MySQLContainer) dsn(addr string) string {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr, cfg.DBName = m.user, m.password, "tcp", addr, m.database
	return cfg.FormatDSN()
}

// MySQL starts a MySQL server for the test t and returns once it answers
// queries. Options: WithImage, WithUser, WithPassword, WithDatabase,
// WithConfigFile, WithInitScripts, WithEnv, WithSpec, Shared.
func MySQL(t testing.TB, opts ...Option) *MySQLContainer {
	t.Helper()
	return startMySQL(t, "mysql", "BERTHTEST_MYSQL_IMAGE", DefaultMySQLImage, opts)
}

// MariaDB is MySQL with the MariaDB image.
func MariaDB(t testing.TB, opts ...Option) *MySQLContainer {
	t.Helper()
	return startMySQL(t, "mariadb", "BERTHTEST_MARIADB_IMAGE", DefaultMariaDBImage, opts)
}

// sqlTimeout bounds a MySQL server's first start (it creates its
// database first).
const sqlTimeout = 3 * time.Minute

func startMySQL(t testing.TB, kind, env, def string, opts []Option) *MySQLContainer {
	t.Helper()
	s := makeSettings(opts)
	m := &MySQLContainer{user: s.user, password: "test", database: s.database}
	if m.user == "" {
		m.user = "test"
	}
	if m.database == "" {
		m.database = "test"
	}
	if s.password != nil {
		m.password = *s.password
	}
	if m.password == "" && m.user != "root" {
		t.Fatalf("berthtest: %s: an empty password needs WithUser(\"root\") (the images refuse a user without a password)", kind)
	}
	spec := berth.Spec{
		Image: s.imageOr(env, def),
		Ports: []berth.PortBinding{{ContainerPort: 3306}},
		Env:   []string{"MYSQL_DATABASE=" + m.database},
	}
	switch {
	case m.user == "root" && m.password == "":
		spec.Env = append(spec.Env, "MYSQL_ALLOW_EMPTY_PASSWORD=yes")
	case m.user == "root":
		spec.Env = append(spec.Env, "MYSQL_ROOT_PASSWORD="+m.password)
	default:
		spec.Env = append(spec.Env, "MYSQL_ROOT_PASSWORD="+m.password, "MYSQL_USER="+m.user, "MYSQL_PASSWORD="+m.password)
	}
	spec.Env = append(spec.Env, s.env...)
	bind := func(host, target string) {
		abs, err := filepath.Abs(host)
		if err != nil {
			t.Fatalf("berthtest: %s: %v", kind, err)
		}
		spec.Mounts = append(spec.Mounts, berth.Mount{Type: berth.MountTypeBind, Source: abs, Target: target, ReadOnly: true})
	}
	if s.configFile != "" {
		bind(s.configFile, "/etc/mysql/conf.d/berthtest.cnf")
	}
	for _, p := range s.initScripts {
		bind(p, "/docker-entrypoint-initdb.d/"+filepath.Base(p))
	}
	m.Container = start(t, kind, s, spec,
		wait.ForPort("3306/tcp").WithTimeout(sqlTimeout),
		wait.ForSQL("mysql", m.dsn, "SELECT 1").WithPort("3306/tcp").WithTimeout(sqlTimeout))
	return m
}
