package users_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"

	_ "github.com/go-sql-driver/mysql"

	"github.com/berth-run/berth/berthtest"
	"github.com/berth-run/berth/examples/berthtest/users"
)

func open(t *testing.T, dsn string) *users.Store {
	t.Helper()
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s, err := users.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestUsersMySQL(t *testing.T) {
	s := open(t, berthtest.MySQL(t).DSN())
	ctx := context.Background()
	id, err := s.Add(ctx, "张三")
	if err != nil {
		t.Fatal(err)
	}
	if name, err := s.Name(ctx, id); err != nil || name != "张三" {
		t.Fatalf("Name(%d) = %q, %v", id, name, err)
	}
	if _, err := s.Add(ctx, "张三"); err == nil {
		t.Fatal("a second user with the same name was added")
	}
	if _, err := s.Name(ctx, id+100); !errors.Is(err, users.ErrNotFound) {
		t.Fatalf("Name of a missing user: %v", err)
	}
}

func TestUsersMariaDB(t *testing.T) {
	s := open(t, berthtest.MariaDB(t, berthtest.WithDatabase("app"), berthtest.WithUser("app")).DSN())
	if _, err := s.Add(context.Background(), "李四"); err != nil {
		t.Fatal(err)
	}
}
