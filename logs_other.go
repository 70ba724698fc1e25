//go:build !linux

package berth

import (
	"context"
	"time"
)

// dirWatch polls: other systems only read logs of stores on Linux
// machines shared with them.
type dirWatch struct{}

func watchDir(string) (*dirWatch, error) { return &dirWatch{}, nil }

func (w *dirWatch) wait(ctx context.Context, max time.Duration) error {
	t := time.NewTimer(min(max, 200*time.Millisecond))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func (w *dirWatch) close() {}
