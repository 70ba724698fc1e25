package berth

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"os"
	"strings"
	"time"

	"github.com/berth-run/berth/internal/errdefs"
)

// Event is one entry of the store's event log in the shape of docker's
// events: what happened (Type, Action), to what (Actor), and when. Status,
// ID and From repeat Action, Actor.ID and the image for container and
// image events, as docker's older API fields do.
type Event struct {
	Status   string     `json:"status,omitempty"`
	ID       string     `json:"id,omitempty"`
	From     string     `json:"from,omitempty"`
	Type     string     // container, image, volume, network
	Action   string     // create, start, die, stop, kill, pause, unpause, rename, update, commit, destroy, pull, push, tag, untag, delete, import, load, save, ...
	Actor    EventActor //
	Scope    string     `json:"scope"`    // always "local"
	Time     int64      `json:"time"`     // seconds since the epoch
	TimeNano int64      `json:"timeNano"` // nanoseconds since the epoch
}

// EventActor is the object an event happened to: its ID and attributes
// (name, image, exitCode, signal, ...).
type EventActor struct {
	ID         string
	Attributes map[string]string
}

// eventLogName is the event log file below the store root; the file
// before the last rotation is eventLogName + ".1".
const eventLogName = "events.log"

// eventLogMax is the size at which the event log is rotated. Two files
// are kept, so the log never holds more than about twice this.
const eventLogMax = 1 << 20

// event appends an event to the store's log. Losing an event never fails
// the operation that caused it.
func (r *Runtime) event(_ context.Context, typ, action, id string, attrs map[string]string) {
	now := time.Now()
	ev := Event{Type: typ, Action: action, Actor: EventActor{ID: id, Attributes: attrs}, Scope: "local",
		Time: now.Unix(), TimeNano: now.UnixNano()}
	if typ == "container" || typ == "image" {
		ev.Status, ev.ID = action, id
		if typ == "container" {
			ev.From = attrs["image"]
		}
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return
	}
	path := r.store.Path(eventLogName)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return
	}
	// One write of a whole line: O_APPEND keeps concurrent writers' lines apart.
	_, _ = f.Write(append(b, '\n'))
	fi, err := f.Stat()
	_ = f.Close()
	if err == nil && fi.Size() > eventLogMax {
		r.rotateEvents(path)
	}
}

// rotateEvents moves a full event log aside (replacing the previous one),
// under a lock so that concurrent writers rotate it once. A writer that
// opened the old file just before still appends its line there, where
// readers of the history find it.
func (r *Runtime) rotateEvents(path string) {
	lk, err := r.store.LockName("events")
	if err != nil {
		return
	}
	defer lk.Unlock()
	if fi, err := os.Stat(path); err != nil || fi.Size() <= eventLogMax {
		return // another process rotated it
	}
	_ = os.Rename(path, path+".1")
}

// EventsOption configures Runtime.Events.
type EventsOption func(*eventsOptions)

type eventsOptions struct {
	since, until time.Time
	filters      map[string][]string
	poll         time.Duration
}

// EventsSince replays the logged events from t on before following new
// ones (docker events --since). Default: only events that happen after
// the call.
func EventsSince(t time.Time) EventsOption { return func(o *eventsOptions) { o.since = t } }

// EventsUntil ends the stream at t (docker events --until): logged events
// up to t are replayed and, if t is in the future, new ones followed until
// then. Default: follow until ctx ends.
func EventsUntil(t time.Time) EventsOption { return func(o *eventsOptions) { o.until = t } }

// EventsFilter keeps only the events that match, as docker's --filter:
// key is "type", "event" (the action), "container" (ID, ID prefix or
// name), "image" (ID or name, with or without tag), "volume", "network"
// or "label" ("key" or "key=value"). Several values of one key match any
// of them; different keys must all match. Default: every event.
func EventsFilter(key, value string) EventsOption {
	return func(o *eventsOptions) {
		if o.filters == nil {
			o.filters = map[string][]string{}
		}
		o.filters[key] = append(o.filters[key], value)
	}
}

var eventFilterKeys = map[string]bool{"type": true, "event": true, "container": true, "image": true, "volume": true, "network": true, "label": true}

// Events returns the store's events, from every process that uses it, in
// the order they were logged. Without options it follows the log and
// yields each new event until ctx ends, which ends the iteration without
// an error; EventsSince and EventsUntil replay logged events and bound
// the stream. An unknown filter is an ErrInvalid error, yielded first.
// The log keeps about the last 1 MiB of events (older ones are rotated
// away).
func (r *Runtime) Events(ctx context.Context, opts ...EventsOption) iter.Seq2[Event, error] {
	o := eventsOptions{poll: 100 * time.Millisecond}
	for _, opt := range opts {
		opt(&o)
	}
	return func(yield func(Event, error) bool) {
		for k := range o.filters {
			if !eventFilterKeys[k] {
				yield(Event{}, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid filter '%s'", k)))
				return
			}
		}
		if !o.since.IsZero() && !o.until.IsZero() && o.until.Before(o.since) {
			yield(Event{}, errdefs.New(errdefs.ErrInvalid, "--since must not be after --until"))
			return
		}
		(&eventReader{r: r, o: o, yield: yield}).run(ctx)
	}
}

// eventReader replays and follows the event log for Events.
type eventReader struct {
	r     *Runtime
	o     eventsOptions
	yield func(Event, error) bool
	done  bool
}

// emit passes ev on if it is in the time window and matches the filters;
// it reports false once the consumer stopped or the window ended.
func (e *eventReader) emit(ev Event) bool {
	t := time.Unix(0, ev.TimeNano)
	if !e.o.since.IsZero() && t.Before(e.o.since) {
		return true
	}
	if !e.o.until.IsZero() && t.After(e.o.until) {
		return true
	}
	if !matchEvent(ev, e.o.filters) {
		return true
	}
	if !e.yield(ev, nil) {
		e.done = true
	}
	return !e.done
}

func (e *eventReader) run(ctx context.Context) {
	path := e.r.store.Path(eventLogName)
	replay := !e.o.since.IsZero() || !e.o.until.IsZero()
	if replay {
		if !e.replayFile(path + ".1") {
			return
		}
	}
	f, err := os.Open(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		e.yield(Event{}, err)
		return
	}
	var lines lineReader
	if f != nil {
		defer func() { f.Close() }()
		if !replay {
			if _, err := f.Seek(0, io.SeekEnd); err != nil {
				e.yield(Event{}, err)
				return
			}
		}
	}
	follow := e.o.until.IsZero() || time.Now().Before(e.o.until)
	for {
		if f != nil {
			if !lines.drain(f, e.emit) {
				return
			}
		}
		if !follow || e.done {
			return
		}
		if !e.o.until.IsZero() && time.Now().After(e.o.until) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(e.o.poll):
		}
		// A rotation (or the first event of a new store) replaced the
		// file: finish the old one, then read the new one from its start.
		if nf, err := os.Open(path); err == nil {
			if f == nil || !sameFile(f, nf) {
				if f != nil {
					if !lines.drain(f, e.emit) {
						nf.Close()
						return
					}
					f.Close()
				}
				f, lines = nf, lineReader{}
			} else {
				nf.Close()
			}
		}
	}
}

// replayFile emits the events of a whole (rotated) log file.
func (e *eventReader) replayFile(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return true
	}
	defer f.Close()
	var lines lineReader
	return lines.drain(f, e.emit)
}

func sameFile(a, b *os.File) bool {
	ai, err1 := a.Stat()
	bi, err2 := b.Stat()
	return err1 == nil && err2 == nil && os.SameFile(ai, bi)
}

// lineReader reads whole JSON lines from a growing file, keeping a
// partly written last line for the next read.
type lineReader struct{ partial []byte }

// drain reads f to its current end and emits each complete event line;
// it reports false when emit did.
func (l *lineReader) drain(f *os.File, emit func(Event) bool) bool {
	br := bufio.NewReaderSize(f, 64<<10)
	for {
		b, err := br.ReadBytes('\n')
		if len(b) > 0 {
			if b[len(b)-1] != '\n' {
				l.partial = append(l.partial, b...)
			} else {
				line := b
				if len(l.partial) > 0 {
					line = append(l.partial, b...)
					l.partial = nil
				}
				var ev Event
				if json.Unmarshal(bytes.TrimSpace(line), &ev) == nil && ev.Type != "" {
					if !emit(ev) {
						return false
					}
				}
			}
		}
		if err != nil {
			return true
		}
	}
}

// matchEvent applies docker's event filters.
func matchEvent(ev Event, f map[string][]string) bool {
	if len(f) == 0 {
		return true
	}
	attrs := ev.Actor.Attributes
	exact := func(key string, vals ...string) bool {
		want, ok := f[key]
		if !ok {
			return true
		}
		for _, w := range want {
			for _, v := range vals {
				if v != "" && w == v {
					return true
				}
			}
		}
		return false
	}
	fuzzy := func(key string, vals ...string) bool {
		want, ok := f[key]
		if !ok {
			return true
		}
		if key != ev.Type {
			return false
		}
		for _, w := range want {
			for _, v := range vals {
				if v != "" && strings.HasPrefix(v, w) {
					return true
				}
			}
		}
		return false
	}
	imageName := attrs["image"]
	if ev.Type == "image" {
		imageName = attrs["name"]
	}
	return exact("type", ev.Type) &&
		exact("event", ev.Action) &&
		fuzzy("container", ev.Actor.ID, attrs["name"]) &&
		fuzzy("volume", ev.Actor.ID, attrs["name"]) &&
		fuzzy("network", ev.Actor.ID, attrs["name"]) &&
		exact("image", ev.Actor.ID, imageName, stripTag(ev.Actor.ID), stripTag(imageName)) &&
		matchLabels(f["label"], attrs)
}

// stripTag drops the tag of an image name ("busybox:1.36" -> "busybox").
func stripTag(name string) string {
	if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") && !strings.HasPrefix(name, "sha256:") {
		return name[:i]
	}
	return name
}

// matchLabels reports whether labels has every "key" or "key=value" of
// want.
func matchLabels(want []string, labels map[string]string) bool {
	for _, w := range want {
		k, v, hasV := strings.Cut(w, "=")
		got, ok := labels[k]
		if !ok || hasV && got != v {
			return false
		}
	}
	return true
}
