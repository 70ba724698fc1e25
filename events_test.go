package berth_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth-run/berth"
	"github.com/berth-run/berth/internal/testutil"
)

// collect reads events until the iteration ends or n arrived.
func collect(t *testing.T, seq func(func(berth.Event, error) bool), n int) []berth.Event {
	t.Helper()
	var out []berth.Event
	for ev, err := range seq {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ev)
		if len(out) == n {
			break
		}
	}
	return out
}

func actions(evs []berth.Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Type+" "+e.Action)
	}
	return out
}

// TestEvents: the log records what containers and images do; since and
// until replay it; filters select; the default follows new events.
func TestEvents(t *testing.T) {
	testutil.RequiresRoot(t)
	ctx := context.Background()
	rt := newRuntime(t)
	start := time.Now()
	importBusybox(t, rt, "busybox")
	c := sleeper(t, rt, berth.Spec{Name: "ev1"})
	if err := c.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Unpause(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Rename(ctx, "ev2"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Commit(ctx, "evimage"); err != nil {
		t.Fatal(err)
	}
	end := time.Now()

	all := collect(t, rt.Events(ctx, berth.EventsSince(start), berth.EventsUntil(end)), -1)
	want := []string{"image import", "container create", "container start", "container pause", "container unpause",
		"container rename", "container pause", "container unpause", "container commit"}
	if got := actions(all); !slices.Equal(got, want) {
		t.Fatalf("events %q, want %q", got, want)
	}
	ren := all[5]
	if ren.Actor.ID != c.ID() || ren.Actor.Attributes["name"] != "ev2" || ren.Actor.Attributes["oldName"] != "/ev1" || ren.Status != "rename" || ren.Scope != "local" {
		t.Errorf("rename event %+v", ren)
	}
	for _, f := range []struct {
		key, value string
		want       int
	}{
		{"type", "image", 1}, {"event", "pause", 2}, {"container", "ev2", 4}, {"container", c.ID()[:8], 8},
		{"image", "busybox", 9}, {"image", "busybox:latest", 1},
	} {
		got := collect(t, rt.Events(ctx, berth.EventsSince(start), berth.EventsUntil(end), berth.EventsFilter(f.key, f.value)), -1)
		if len(got) != f.want {
			t.Errorf("filter %s=%s: %q", f.key, f.value, actions(got))
		}
	}
	for _, err := range rt.Events(ctx, berth.EventsFilter("colour", "red")) {
		if !errors.Is(err, berth.ErrInvalid) {
			t.Errorf("bad filter: %v", err)
		}
		break
	}

	// Following: only new events, until ctx ends.
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	got := make(chan []berth.Event)
	go func() {
		got <- collect(t, rt.Events(fctx, berth.EventsFilter("event", "pause"), berth.EventsFilter("event", "unpause")), 2)
	}()
	// Keep pausing until the follower has seen two events: it may start
	// reading after the first ones.
	var evs []berth.Event
	for evs == nil {
		c.Pause(ctx)
		c.Unpause(ctx)
		select {
		case evs = <-got:
		default:
		}
	}
	if a := actions(evs); a[0] != "container pause" && a[0] != "container unpause" {
		t.Errorf("followed %q", a)
	}
	cancel()
	// A cancelled follow ends without error.
	for _, err := range rt.Events(fctx) {
		t.Errorf("cancelled follow yielded %v", err)
	}
}

// TestEventsRotation: the log is rotated so that it stays bounded, and
// the history spans both files.
func TestEventsRotation(t *testing.T) {
	testutil.RequiresRoot(t)
	ctx := context.Background()
	rt := newRuntime(t)
	start := time.Now()
	importBusybox(t, rt, "busybox")
	// A tag and an untag are two events of about 400 bytes.
	name := "x:" + strings.Repeat("t", 120)
	for i := 0; i < 3000; i++ {
		if err := rt.Tag(ctx, "busybox", name); err != nil {
			t.Fatal(err)
		}
		if _, err := rt.RemoveImage(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	log := filepath.Join(rt.Root(), "events.log")
	fi, err := os.Stat(log)
	if err != nil {
		t.Fatal(err)
	}
	old, err := os.Stat(log + ".1")
	if err != nil {
		t.Fatalf("no rotated log: %v", err)
	}
	if fi.Size() > 1<<20+4096 || old.Size() > 1<<20+4096 {
		t.Errorf("log sizes %d and %d", fi.Size(), old.Size())
	}
	evs := collect(t, rt.Events(ctx, berth.EventsSince(start), berth.EventsUntil(time.Now())), -1)
	if len(evs) < 3000 {
		t.Errorf("history has %d events", len(evs))
	}
	for i := 1; i < len(evs); i++ {
		if evs[i].TimeNano < evs[i-1].TimeNano {
			t.Fatalf("events out of order at %d", i)
		}
	}
}
