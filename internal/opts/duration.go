package opts

import (
	"strconv"
	"time"
)

// ParseDuration parses a duration as docker's --health-interval and
// friends take it ("1m30s", "500ms"), also accepting a plain number of
// seconds ("10"). Negative durations are ErrInvalid.
func ParseDuration(s string) (time.Duration, error) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n < 0 || n > int64(time.Duration(1<<63-1)/time.Second) {
			return 0, invalidf("invalid duration %q", s)
		}
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, invalidf("invalid duration %q (for example 10s, 1m30s)", s)
	}
	return d, nil
}

// ParseStopTimeout parses docker's --stop-timeout and stop -t: whole
// seconds, or -1 to wait without limit.
func ParseStopTimeout(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < -1 {
		return 0, invalidf("invalid stop timeout %q: seconds, or -1 for no limit", s)
	}
	return n, nil
}
