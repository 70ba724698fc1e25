package berth_test

import (
	"slices"
	"testing"
	"time"

	"github.com/berth-run/berth"
)

func TestRestartPolicyDecisions(t *testing.T) {
	onFailure2 := berth.RestartPolicy{Name: berth.RestartOnFailure, MaximumRetryCount: 2}
	for _, c := range []struct {
		p             berth.RestartPolicy
		code, count   int
		stopped, want bool
	}{
		{berth.RestartPolicy{}, 1, 0, false, false},
		{berth.RestartPolicy{Name: berth.RestartNo}, 1, 0, false, false},
		{berth.RestartPolicy{Name: berth.RestartAlways}, 0, 100, false, true},
		{berth.RestartPolicy{Name: berth.RestartAlways}, 0, 0, true, false},
		{berth.RestartPolicy{Name: berth.RestartUnlessStopped}, 0, 5, false, true},
		{berth.RestartPolicy{Name: berth.RestartUnlessStopped}, 1, 0, true, false},
		{berth.RestartPolicy{Name: berth.RestartOnFailure}, 0, 0, false, false},
		{berth.RestartPolicy{Name: berth.RestartOnFailure}, 1, 1000, false, true},
		{onFailure2, 3, 0, false, true},
		{onFailure2, 3, 1, false, true},
		{onFailure2, 3, 2, false, false},
		{onFailure2, 3, 0, true, false},
	} {
		if got := berth.ShouldRestart(c.p, c.code, c.count, c.stopped); got != c.want {
			t.Errorf("%+v exit %d after %d restarts, stopped %v: restart %v, want %v", c.p, c.code, c.count, c.stopped, got, c.want)
		}
	}
}

func TestRestartBackoffIsDockers(t *testing.T) {
	ms := time.Millisecond
	short := 10 * ms
	got := berth.RestartDelays(short, short, short, short, 10*time.Second, short)
	want := []time.Duration{100 * ms, 200 * ms, 400 * ms, 800 * ms, 100 * ms, 200 * ms}
	if !slices.Equal(got, want) {
		t.Fatalf("delays %v, want %v", got, want)
	}
	many := make([]time.Duration, 20)
	got = berth.RestartDelays(many...)
	if got[len(got)-1] != time.Minute || got[len(got)-2] != time.Minute {
		t.Fatalf("delays do not stop at a minute: %v", got)
	}
}
