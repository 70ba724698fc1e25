package berth

import (
	"context"
	"encoding/json"
	"os"
	"time"
)

// Event is one entry of the store's event log, as `berth events` shows
// it: docker's Type, Action, Actor (ID and attributes) and time.
type Event struct {
	Type       string            `json:"Type"`   // container, image, volume, network
	Action     string            `json:"Action"` // create, start, die, stop, kill, pause, unpause, destroy, pull, push, commit, tag, untag, delete, import, load, save, ...
	ID         string            `json:"id"`
	Attributes map[string]string `json:"Attributes,omitempty"`
	Time       int64             `json:"time"`     // seconds since the epoch
	TimeNano   int64             `json:"timeNano"` // nanoseconds since the epoch
}

// eventLogName is the event log file below the store root.
const eventLogName = "events.log"

// event appends an event to the store's log. Losing an event never fails
// the operation that caused it.
func (r *Runtime) event(_ context.Context, typ, action, id string, attrs map[string]string) {
	now := time.Now()
	b, err := json.Marshal(Event{Type: typ, Action: action, ID: id, Attributes: attrs, Time: now.Unix(), TimeNano: now.UnixNano()})
	if err != nil {
		return
	}
	f, err := os.OpenFile(r.store.Path(eventLogName), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return
	}
	// One write of a whole line: O_APPEND keeps concurrent writers' lines apart.
	_, _ = f.Write(append(b, '\n'))
	_ = f.Close()
}
