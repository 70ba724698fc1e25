package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"text/template"
	"time"
)

// Output helpers shared by every command: docker's human sizes and
// durations, tables, and --format Go templates with docker's functions.

// humanSize formats bytes as docker does: decimal units, three significant
// digits ("4.26MB", "1.23kB", "0B").
func humanSize(n int64) string {
	units := []string{"B", "kB", "MB", "GB", "TB", "PB", "EB"}
	f := float64(n)
	i := 0
	for f >= 1000 && i < len(units)-1 {
		f /= 1000
		i++
	}
	return fmt.Sprintf("%.3g%s", f, units[i])
}

// humanDuration is docker's rendering of an elapsed time ("About a
// minute", "3 hours", "2 weeks").
func humanDuration(d time.Duration) string {
	seconds := int(d.Seconds())
	minutes := int(d.Minutes())
	hours := int(d.Hours() + 0.5)
	switch {
	case seconds < 1:
		return "Less than a second"
	case seconds == 1:
		return "1 second"
	case seconds < 60:
		return fmt.Sprintf("%d seconds", seconds)
	case minutes == 1:
		return "About a minute"
	case minutes < 60:
		return fmt.Sprintf("%d minutes", minutes)
	case hours == 1:
		return "About an hour"
	case hours < 48:
		return fmt.Sprintf("%d hours", hours)
	case hours < 24*7*2:
		return fmt.Sprintf("%d days", hours/24)
	case hours < 24*30*2:
		return fmt.Sprintf("%d weeks", hours/24/7)
	case hours < 24*365*2:
		return fmt.Sprintf("%d months", hours/24/30)
	}
	return fmt.Sprintf("%d years", int(d.Hours())/24/365)
}

// since is "<duration> ago" for t, as in docker's CREATED columns.
func since(t time.Time) string {
	if t.IsZero() {
		return "N/A"
	}
	return humanDuration(time.Since(t)) + " ago"
}

// shortID is the 12-character form of an ID, without "sha256:".
func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// templateFuncs are docker's --format template functions.
var templateFuncs = template.FuncMap{
	"json": func(v any) (string, error) {
		b, err := json.Marshal(v)
		return string(b), err
	},
	"join":  strings.Join,
	"lower": strings.ToLower,
	"upper": strings.ToUpper,
	"title": func(s string) string {
		if s == "" {
			return s
		}
		return strings.ToUpper(s[:1]) + s[1:]
	},
	"split": strings.Split,
	"truncate": func(s string, n int) string {
		if len(s) > n {
			return s[:n]
		}
		return s
	},
	"pad": func(s string, before, after int) string {
		return strings.Repeat(" ", before) + s + strings.Repeat(" ", after)
	},
	"println": fmt.Sprintln,
}

// parseTemplate parses a --format value with docker's functions. A
// malformed template is a usage error naming the template.
func parseTemplate(format string) (*template.Template, error) {
	funcs := guardedFuncs() // template_guard.go: loops and memory are bounded
	t, err := template.New("format").Funcs(funcs).Parse(format)
	if err != nil {
		return nil, fmt.Errorf("template parsing error: %w", err)
	}
	return guardTemplate(t, funcs)
}

// table renders rows with a --format value the way docker does:
//   - "" uses def, a "table ..." template;
//   - "table TEMPLATE" prints a header row (each {{.Field}} replaced by
//     headers[Field]) and the rows, aligned in columns;
//   - "json" prints each row as one JSON object per line;
//   - any other template prints each row with no header.
type table struct {
	def     string
	headers map[string]string
}

func (tb table) print(w io.Writer, format string, rows []any) error {
	if format == "" || strings.TrimSpace(format) == "table" {
		format = tb.def
	}
	if format == "json" {
		enc := json.NewEncoder(w)
		for _, r := range rows {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		return nil
	}
	isTable := strings.HasPrefix(format, "table")
	if isTable {
		format = strings.TrimSpace(strings.TrimPrefix(format, "table"))
	}
	format = strings.NewReplacer(`\t`, "\t", `\n`, "\n").Replace(format)
	t, err := parseTemplate(format)
	if err != nil {
		return err
	}
	out := w
	var tw *tabwriter.Writer
	if isTable {
		tw = tabwriter.NewWriter(w, 10, 1, 3, ' ', 0)
		out = tw
		var hb bytes.Buffer
		if err := execTemplate(t, &hb, tb.headers); err != nil {
			return fmt.Errorf("template: %w", err)
		}
		fmt.Fprintln(out, strings.TrimRight(hb.String(), "\n"))
	}
	for _, r := range rows {
		var b bytes.Buffer
		if err := execTemplate(t, &b, r); err != nil {
			return fmt.Errorf("template: %w", err)
		}
		fmt.Fprintln(out, strings.TrimRight(b.String(), "\n"))
	}
	if tw != nil {
		return tw.Flush()
	}
	return nil
}

// printTemplate executes format on v and prints it with a newline, for
// `inspect -f`.
func printTemplate(w io.Writer, format string, v any) error {
	t, err := parseTemplate(format)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	if err := execTemplate(t, &b, v); err != nil {
		return fmt.Errorf("template: %w", err)
	}
	fmt.Fprintln(w, b.String())
	return nil
}

// jsonValue converts v to the generic value of its JSON document (maps,
// slices, json.Number for numbers, so that large integers print whole).
func jsonValue(v any) (any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var out any
	if err := dec.Decode(&out); err != nil {
		return nil, err
	}
	return out, nil
}

// writeJSON prints v as indented JSON, as docker's inspect does.
func writeJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "    ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, string(b))
	return err
}
