// Package users keeps users in MySQL or MariaDB.
package users

import (
	"context"
	"database/sql"
	"errors"
)

// Store keeps users in a SQL database.
type Store struct{ db *sql.DB }

// ErrNotFound is returned for a user that does not exist.
var ErrNotFound = errors.New("user not found")

// Open prepares the store's table in db.
func Open(ctx context.Context, db *sql.DB) (*Store, error) {
	_, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS users (
		id INT AUTO_INCREMENT PRIMARY KEY,
		name VARCHAR(100) NOT NULL UNIQUE
	) DEFAULT CHARSET=utf8mb4`)
	if err != nil {
		return nil, err
	}
	return &Store{db: db}, nil
}

// Add adds a user and returns its ID.
func (s *Store) Add(ctx context.Context, name string) (int64, error) {
	res, err := s.db.ExecContext(ctx, "INSERT INTO users (name) VALUES (?)", name)
	if err != nil {
		return 0, err
	}
	return res.LastInsertId()
}

// Name returns the name of user id.
func (s *Store) Name(ctx context.Context, id int64) (string, error) {
	var name string
	err := s.db.QueryRowContext(ctx, "SELECT name FROM users WHERE id = ?", id).Scan(&name)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrNotFound
	}
	return name, err
}
