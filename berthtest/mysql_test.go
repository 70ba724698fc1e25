package berthtest_test

import (
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/go-sql-driver/mysql"

	"github.com/berth-run/berth/berthtest"
)

func openDB(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestMySQL(t *testing.T) {
	useFixtures(t)
	m := berthtest.MySQL(t)
	if m.User() != "test" || m.Password() != "test" || m.Database() != "test" {
		t.Errorf("defaults: user %q password %q database %q", m.User(), m.Password(), m.Database())
	}
	if !strings.HasPrefix(m.DSN(), "test:test@tcp(127.0.0.1:") || !strings.HasSuffix(m.DSN(), ")/test") {
		t.Errorf("DSN() = %q", m.DSN())
	}
	db := openDB(t, m.DSN())
	for _, q := range []string{
		"CREATE TABLE t (id INT PRIMARY KEY, name VARCHAR(20)) DEFAULT CHARSET=utf8mb4",
		"INSERT INTO t VALUES (1, '中文测试')",
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	var name string
	if err := db.QueryRow("SELECT name FROM t WHERE id = 1").Scan(&name); err != nil || name != "中文测试" {
		t.Fatalf("SELECT = %q, %v", name, err)
	}
	// The user has its database only; root has the same password.
	if _, err := db.Exec("CREATE DATABASE other"); err == nil {
		t.Error("the test user could create a database")
	}
	root := openDB(t, "root:test@tcp("+m.Addr()+")/")
	if err := root.Ping(); err != nil {
		t.Errorf("root with the password: %v", err)
	}
}

func TestMariaDBOptions(t *testing.T) {
	useFixtures(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "utf8.cnf")
	initSQL := filepath.Join(dir, "01-schema.sql")
	initSh := filepath.Join(dir, "02-data.sh")
	files := map[string]string{
		conf:    "[mysqld]\ncollation_server = utf8_general_ci\ncharacter_set_server = utf8\n",
		initSQL: "CREATE TABLE seeded (id INT PRIMARY KEY, note VARCHAR(40));\n",
		initSh:  "#!/bin/sh\nset -e\necho \"INSERT INTO seeded VALUES (1, 'from sh')\" | mariadb -uroot -p\"$MYSQL_ROOT_PASSWORD\" shop\n",
	}
	for p, body := range files {
		if err := os.WriteFile(p, []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	m := berthtest.MariaDB(t, berthtest.WithUser("root"), berthtest.WithPassword("p@ss/w:rd"),
		berthtest.WithDatabase("shop"), berthtest.WithConfigFile(conf), berthtest.WithInitScripts(initSQL, initSh))
	db := openDB(t, m.DSN())
	var cs string
	if err := db.QueryRow("SELECT @@character_set_server").Scan(&cs); err != nil || (cs != "utf8mb3" && cs != "utf8") {
		t.Errorf("character_set_server = %q, %v; want utf8", cs, err)
	}
	var note string
	if err := db.QueryRow("SELECT note FROM seeded WHERE id = 1").Scan(&note); err != nil || note != "from sh" {
		t.Errorf("seeded row: %q, %v", note, err)
	}
}

func TestMySQLRejectsEmptyUserPassword(t *testing.T) {
	ft := &fatalT{T: t}
	ft.run(func() { berthtest.MySQL(ft, berthtest.WithPassword("")) })
	if !strings.Contains(ft.msg, "empty password") {
		t.Fatalf("MySQL with an empty password: %q", ft.msg)
	}
}
