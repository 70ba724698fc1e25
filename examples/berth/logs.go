package main

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-run/berth"
)

func logsCmd(g *globals) *cobra.Command {
	var follow, timestamps, details bool
	var tail, since, until string
	c := &cobra.Command{
		Use:   "logs [OPTIONS] CONTAINER",
		Short: "Fetch the logs of a container",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			now := time.Now()
			opts := berth.LogsOptions{Follow: follow, Timestamps: timestamps, Details: details,
				Stdout: cmd.OutOrStdout(), Stderr: cmd.ErrOrStderr()}
			var err error
			if opts.Tail, err = parseTail(tail); err != nil {
				return err
			}
			if since != "" {
				if opts.Since, err = parseTimestamp(since, now); err != nil {
					return fmt.Errorf("invalid value for \"since\": %w", err)
				}
			}
			if until != "" {
				if opts.Until, err = parseTimestamp(until, now); err != nil {
					return fmt.Errorf("invalid value for \"until\": %w", err)
				}
			}
			rt, err := g.open(ctx)
			if err != nil {
				return err
			}
			c, err := rt.Container(ctx, args[0])
			if err != nil {
				return err
			}
			return c.Logs(ctx, opts)
		},
	}
	fl := c.Flags()
	fl.BoolVarP(&follow, "follow", "f", false, "Follow log output")
	fl.BoolVarP(&timestamps, "timestamps", "t", false, "Show timestamps")
	fl.BoolVar(&details, "details", false, "Show extra details provided to logs")
	fl.StringVarP(&tail, "tail", "n", "all", "Number of lines to show from the end of the logs")
	fl.StringVar(&since, "since", "", "Show logs since timestamp (e.g. \"2013-01-02T13:23:37Z\") or relative (e.g. \"42m\" for 42 minutes)")
	fl.StringVar(&until, "until", "", "Show logs before a timestamp (e.g. \"2013-01-02T13:23:37Z\") or relative (e.g. \"42m\" for 42 minutes)")
	return c
}

// parseTail is docker's --tail: "all" (or a negative number) for every
// line, or a count.
func parseTail(s string) (*int, error) {
	if s == "" || s == "all" {
		return nil, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return nil, fmt.Errorf("invalid value for \"tail\": %q is not a number or \"all\"", s)
	}
	if n < 0 {
		return nil, nil
	}
	return &n, nil
}

// parseTimestamp reads docker's --since/--until values: a duration before
// now ("42m", "1h30m"), Unix seconds with an optional fraction
// ("1700000000.5"), or an RFC 3339 date and time, whole or in part
// ("2013-01-02T13:23:37Z", "2013-01-02T13:23", "2013-01-02"; local time
// without a zone).
func parseTimestamp(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		return now.Add(-d), nil
	}
	if !strings.ContainsAny(s, "-:TZ") {
		secs, frac, _ := strings.Cut(s, ".")
		sec, err := strconv.ParseInt(secs, 10, 64)
		if err == nil && (frac == "" || isDigits(frac)) {
			nsec := int64(0)
			if frac != "" {
				f, _ := strconv.ParseFloat("0."+frac, 64)
				nsec = int64(math.Round(f * 1e9))
			}
			return time.Unix(sec, nsec), nil
		}
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05Z07:00"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	for _, layout := range []string{"2006-01-02T15:04:05.999999999", "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02T15", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a duration, a Unix time or an RFC 3339 date", s)
}

func isDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}
