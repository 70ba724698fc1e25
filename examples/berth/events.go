package main

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-run/berth"
)

// rfc3339NanoFixed is the time format of docker's event lines.
const rfc3339NanoFixed = "2006-01-02T15:04:05.000000000Z07:00"

func eventsCmd(g *globals) *cobra.Command {
	var since, until, format string
	var filters []string
	c := &cobra.Command{
		Use:   "events [OPTIONS]",
		Short: "Get real time events from the store (all processes that use it)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			now := time.Now()
			var opts []berth.EventsOption
			for _, t := range []struct {
				val  string
				flag string
				opt  func(time.Time) berth.EventsOption
			}{{since, "since", berth.EventsSince}, {until, "until", berth.EventsUntil}} {
				if t.val == "" {
					continue
				}
				ts, err := parseTimestamp(t.val, now)
				if err != nil {
					return fmt.Errorf("invalid value for --%s: %w", t.flag, err)
				}
				opts = append(opts, t.opt(ts))
			}
			err := eachFilter(filters, func(k, v string) { opts = append(opts, berth.EventsFilter(k, v)) })
			if err != nil {
				return err
			}
			var tmpl func(berth.Event) error
			w := cmd.OutOrStdout()
			switch format {
			case "":
				tmpl = func(ev berth.Event) error { _, err := fmt.Fprintln(w, eventLine(ev)); return err }
			case "json", "{{json .}}":
				enc := json.NewEncoder(w)
				tmpl = func(ev berth.Event) error { return enc.Encode(ev) }
			default:
				t, err := parseTemplate(format)
				if err != nil {
					return err
				}
				tmpl = func(ev berth.Event) error {
					if err := execTemplate(t, w, ev); err != nil {
						return fmt.Errorf("template: %w", err)
					}
					_, err := fmt.Fprintln(w)
					return err
				}
			}
			rt, err := g.open(ctx)
			if err != nil {
				return err
			}
			for ev, err := range rt.Events(ctx, opts...) {
				if err != nil {
					return err
				}
				if err := tmpl(ev); err != nil {
					return err
				}
			}
			return nil
		},
	}
	fl := c.Flags()
	fl.StringVar(&since, "since", "", "Show all events created since timestamp")
	fl.StringVar(&until, "until", "", "Stream events until this timestamp")
	fl.StringArrayVarP(&filters, "filter", "f", nil, "Filter output based on conditions provided (type, event, container, image, volume, network, label)")
	fl.StringVar(&format, "format", "", "Format the output using the given Go template")
	return c
}

// eventLine is docker's line for an event: time, type, action, actor and
// its attributes sorted by key.
func eventLine(ev berth.Event) string {
	line := fmt.Sprintf("%s %s %s %s", time.Unix(0, ev.TimeNano).Format(rfc3339NanoFixed), ev.Type, ev.Action, ev.Actor.ID)
	if len(ev.Actor.Attributes) == 0 {
		return line
	}
	keys := make([]string, 0, len(ev.Actor.Attributes))
	for k := range ev.Actor.Attributes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	attrs := make([]string, 0, len(keys))
	for _, k := range keys {
		attrs = append(attrs, k+"="+ev.Actor.Attributes[k])
	}
	return line + " (" + strings.Join(attrs, ", ") + ")"
}
