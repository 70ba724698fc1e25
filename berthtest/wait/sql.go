package wait

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/berth-run/berth"
)

// ForSQL waits until query succeeds on a connection made with driver (it
// must be registered: import _ "github.com/go-sql-driver/mysql") to the
// data source name dsn returns for the published address ("127.0.0.1:
// 49153") of the container's port (see WithPort).
func ForSQL(driver string, dsn func(hostAddr string) string, query string) *SQLStrategy {
	return &SQLStrategy{driver: driver, dsn: dsn, query: query}
}

// SQLStrategy is ForSQL's strategy.
type SQLStrategy struct {
	timeouts
	driver string
	dsn    func(string) string
	query  string
	port   Port
}

// WithPort names the container port to connect to. Default: the first
// published TCP port.
func (s *SQLStrategy) WithPort(p Port) *SQLStrategy { s.port = p; return s }

// WithTimeout bounds the wait. Default DefaultTimeout.
func (s *SQLStrategy) WithTimeout(d time.Duration) *SQLStrategy { s.timeout = d; return s }

func (s *SQLStrategy) String() string { return fmt.Sprintf("sql %q", s.query) }

// WaitUntilReady implements Strategy.
func (s *SQLStrategy) WaitUntilReady(ctx context.Context, c *berth.Container) error {
	return poll(ctx, c, s.String(), s.get(), 100*time.Millisecond, func(ctx context.Context) (bool, error) {
		addr, err := HostAddr(ctx, c, s.port)
		if err != nil {
			return false, err
		}
		db, err := sql.Open(s.driver, s.dsn(addr))
		if err != nil {
			return false, err
		}
		defer db.Close()
		qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		rows, err := db.QueryContext(qctx, s.query)
		if err != nil {
			return false, err
		}
		defer rows.Close()
		for rows.Next() {
		}
		return rows.Err() == nil, rows.Err()
	})
}
