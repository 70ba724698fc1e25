package main

import (
	"testing"
	"time"
)

func TestParseTimestamp(t *testing.T) {
	now := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"42m":                           now.Add(-42 * time.Minute),
		"1h30m":                         now.Add(-90 * time.Minute),
		"1700000000":                    time.Unix(1700000000, 0),
		"1700000000.5":                  time.Unix(1700000000, 5e8),
		"2013-01-02T13:23:37Z":          time.Date(2013, 1, 2, 13, 23, 37, 0, time.UTC),
		"2013-01-02T13:23:37.123+02:00": time.Date(2013, 1, 2, 11, 23, 37, 123e6, time.UTC),
		"2013-01-02T13:23":              time.Date(2013, 1, 2, 13, 23, 0, 0, time.Local),
		"2013-01-02":                    time.Date(2013, 1, 2, 0, 0, 0, 0, time.Local),
	} {
		got, err := parseTimestamp(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("parseTimestamp(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "yesterday", "2013-13-01", "12.x", "-5"} {
		if _, err := parseTimestamp(bad, now); err == nil {
			t.Errorf("parseTimestamp(%q) accepted", bad)
		}
	}
}

func TestParseTail(t *testing.T) {
	for in, want := range map[string]int{"all": -1, "": -1, "-1": -1, "0": 0, "25": 25} {
		got, err := parseTail(in)
		if err != nil || (got == nil) != (want < 0) || got != nil && *got != want {
			t.Errorf("parseTail(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := parseTail("ten"); err == nil {
		t.Error("parseTail accepted ten")
	}
}
