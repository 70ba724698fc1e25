package wait

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/berth-run/berth"
)

// ForLog waits until a line of the container's log (either stream)
// contains substr, or, WithOccurrence(n), until n lines have. The log is
// followed as it is written (inotify), not polled.
func ForLog(substr string) *LogStrategy { return &LogStrategy{substr: substr, occurrence: 1} }

// ForLogRegexp is ForLog with a regular expression that a line must
// match.
func ForLogRegexp(re *regexp.Regexp) *LogStrategy { return &LogStrategy{re: re, occurrence: 1} }

// LogStrategy is ForLog's strategy.
type LogStrategy struct {
	timeouts
	substr     string
	re         *regexp.Regexp
	occurrence int
}

// WithOccurrence waits for n matching lines (a server that starts twice,
// as the official mysql image's entrypoint does, logs its "ready" line
// twice). Default 1.
func (s *LogStrategy) WithOccurrence(n int) *LogStrategy { s.occurrence = max(n, 1); return s }

// WithTimeout bounds the wait. Default DefaultTimeout.
func (s *LogStrategy) WithTimeout(d time.Duration) *LogStrategy { s.timeout = d; return s }

func (s *LogStrategy) String() string {
	what := fmt.Sprintf("log %q", s.substr)
	if s.re != nil {
		what = fmt.Sprintf("log matching %q", s.re.String())
	}
	if s.occurrence > 1 {
		what += fmt.Sprintf(" x%d", s.occurrence)
	}
	return what
}

var errFound = errors.New("found")

// WaitUntilReady implements Strategy.
func (s *LogStrategy) WaitUntilReady(ctx context.Context, c *berth.Container) error {
	timeout := s.get()
	ctx, cancel := context.WithTimeoutCause(ctx, timeout, ErrTimeout)
	defer cancel()
	seen := 0
	sub := []byte(s.substr)
	err := c.LogEntries(ctx, berth.LogsOptions{Follow: true}, func(e berth.LogEntry) error {
		if s.re != nil && s.re.Match(e.Line) || s.re == nil && bytes.Contains(e.Line, sub) {
			if seen++; seen >= s.occurrence {
				return errFound
			}
		}
		return nil
	})
	switch {
	case errors.Is(err, errFound):
		return nil
	case err == nil: // the container stopped
		_, why := exitedState(context.WithoutCancel(ctx), c)
		if why == nil {
			why = ErrExited
		}
		return failure(c, s.String(), fmt.Errorf("%w (%d of %d lines seen)", why, seen, s.occurrence))
	case ctx.Err() != nil:
		cause := context.Cause(ctx)
		if errors.Is(cause, ErrTimeout) {
			cause = fmt.Errorf("%w after %s (%d of %d lines seen)", ErrTimeout, timeout, seen, s.occurrence)
		}
		return failure(c, s.String(), cause)
	default:
		return failure(c, s.String(), err)
	}
}
