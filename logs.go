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
	"net/url"
	"os"
	"slices"
	"sort"
	"time"

	"github.com/berth-run/berth/internal/errdefs"
)

// LogEntry is one entry of a container's log: a line of its output (with
// its newline; output longer than 16 KiB without one is split into
// several entries).
type LogEntry struct {
	// Stream is "stdout" or "stderr" (a container with a terminal has
	// only stdout).
	Stream string
	// Time is when the line was read from the container.
	Time time.Time
	// Line is the output.
	Line []byte
	// Attrs are the labels and environment variables that the log
	// configuration's "labels" and "env" options name.
	Attrs map[string]string
}

// LogsOptions select what Logs and LogEntries read, as the flags of
// `docker logs`.
type LogsOptions struct {
	// Follow keeps reading new output as the container writes it, across
	// log rotation, until the container stops (or is removed) or ctx
	// ends.
	Follow bool
	// Tail, when not nil, starts with the last *Tail entries (0: none,
	// only new ones when following). nil: from the first (docker's
	// "--tail all").
	Tail *int
	// Since and Until, when not zero, skip entries before Since and from
	// Until on; with Follow, Until also ends the following.
	Since, Until time.Time
	// Timestamps prefixes each line with its time (docker logs -t), in
	// docker's fixed-width RFC 3339 format.
	Timestamps bool
	// Details prefixes each line with its attributes ("k=v,k2=v2 ", docker
	// logs --details).
	Details bool
	// Stdout and Stderr receive the lines of each stream; nil drops that
	// stream (LogEntries ignores them).
	Stdout, Stderr io.Writer
}

// rfc3339NanoFixed is docker's timestamp format for logs -t: RFC 3339
// with nanoseconds always nine digits wide.
const rfc3339NanoFixed = "2006-01-02T15:04:05.000000000Z07:00"

// Logs writes the container's log to opts.Stdout and opts.Stderr, as
// `docker logs`: each line to the writer of its stream. It returns when
// the log is read (or, with Follow, when the container has stopped and its
// last output is written). A container whose log driver is "none" has no
// log to read (ErrNotSupported).
func (c *Container) Logs(ctx context.Context, opts LogsOptions) error {
	var buf []byte
	return c.LogEntries(ctx, opts, func(e LogEntry) error {
		w := opts.Stdout
		if e.Stream == "stderr" {
			w = opts.Stderr
		}
		if w == nil {
			return nil
		}
		buf = formatLogLine(buf[:0], e, opts.Timestamps, opts.Details)
		_, err := w.Write(buf)
		return err
	})
}

// formatLogLine appends e as docker logs prints it to b.
func formatLogLine(b []byte, e LogEntry, timestamps, details bool) []byte {
	if timestamps {
		b = e.Time.UTC().AppendFormat(b, rfc3339NanoFixed)
		b = append(b, ' ')
	}
	if details {
		keys := make([]string, 0, len(e.Attrs))
		for k := range e.Attrs {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, url.QueryEscape(k)...)
			b = append(b, '=')
			b = append(b, url.QueryEscape(e.Attrs[k])...)
		}
		b = append(b, ' ')
	}
	return append(b, e.Line...)
}

// LogEntries calls fn with each entry of the container's log that opts
// select, in order. An error from fn stops the reading and is returned.
func (c *Container) LogEntries(ctx context.Context, opts LogsOptions, fn func(LogEntry) error) error {
	if opts.Tail != nil && *opts.Tail < 0 {
		return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("logs: invalid tail %d", *opts.Tail))
	}
	if !opts.Since.IsZero() && !opts.Until.IsZero() && opts.Until.Before(opts.Since) {
		return errdefs.New(errdefs.ErrInvalid, "logs: until is before since")
	}
	s, err := parseLogConfig(c.rec.Spec.LogConfig)
	if err != nil {
		return err
	}
	if s.driver == LogDriverNone {
		return errdefs.New(errdefs.ErrNotSupported, fmt.Sprintf("container %s: configured logging driver does not support reading", c.rec.Name))
	}
	lr := &logReader{c: c, opts: opts, fn: fn, path: c.rt.containerLogPath(c.rec.ID), maxFiles: s.maxFiles}
	if err := lr.run(ctx); !errors.Is(err, errUntil) {
		return err
	}
	return nil
}

// logReader reads one container's log files.
type logReader struct {
	c    *Container
	opts LogsOptions
	fn   func(LogEntry) error
	path string
	// maxFiles is the log configuration's max-file: how many names a
	// rotation uses.
	maxFiles int

	cur     *os.File      // the file being read; with Follow, the one followed
	br      *bufio.Reader // reads cur
	partial []byte        // an incomplete last line, awaiting its end
}

func (lr *logReader) run(ctx context.Context) error {
	files, start, err := lr.open()
	if err != nil {
		return err
	}
	defer func() {
		for _, f := range files {
			f.Close()
		}
		if lr.cur != nil {
			lr.cur.Close() // a file reopened after rotation (or one of files again)
		}
	}()
	for i, f := range files {
		if i < start.file {
			continue
		}
		if i == start.file && start.off > 0 {
			if _, err := f.Seek(start.off, io.SeekStart); err != nil {
				return err
			}
		}
		lr.cur = f
		lr.partial = lr.partial[:0]
		if err := lr.drain(); err != nil {
			return err
		}
	}
	if !lr.opts.Follow {
		return nil
	}
	return lr.follow(ctx)
}

// position is where reading starts: a file index and an offset in it.
type position struct {
	file int
	off  int64
}

// open opens the log files, oldest first, and finds where Tail starts.
// A missing current file is an empty log.
func (lr *logReader) open() ([]*os.File, position, error) {
	var files []*os.File
	for _, p := range logFiles(lr.path) {
		f, err := os.Open(p)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			for _, f := range files {
				f.Close()
			}
			return nil, position{}, fmt.Errorf("logs %s: %w", lr.c.rec.Name, err)
		}
		files = append(files, f)
	}
	if lr.opts.Tail == nil || len(files) == 0 {
		return files, position{}, nil
	}
	want := *lr.opts.Tail
	for i := len(files) - 1; i >= 0; i-- {
		off, n, err := tailOffset(files[i], want)
		if err != nil {
			return files, position{}, err
		}
		if n >= want {
			return files, position{file: i, off: off}, nil
		}
		want -= n
	}
	return files, position{}, nil
}

// tailOffset finds the start of the last n lines of f: their offset, or
// 0 and the number of lines when f has fewer.
func tailOffset(f *os.File, n int) (int64, int, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, 0, err
	}
	end := fi.Size()
	if end == 0 {
		return 0, 0, nil
	}
	if n == 0 {
		return end, 0, nil
	}
	buf := make([]byte, 32<<10)
	count := 0
	pos := end
	// The file's last byte ends the last line; it starts no line.
	skipLast := true
	for pos > 0 {
		size := int64(len(buf))
		if pos < size {
			size = pos
		}
		pos -= size
		if _, err := f.ReadAt(buf[:size], pos); err != nil && !errors.Is(err, io.EOF) {
			return 0, 0, err
		}
		for i := size - 1; i >= 0; i-- {
			if buf[i] != '\n' {
				continue
			}
			if skipLast && pos+i == end-1 {
				skipLast = false
				continue
			}
			count++
			if count == n {
				return pos + i + 1, count, nil
			}
		}
	}
	return 0, count + 1, nil
}

// drain reads lr.cur to its end, passing complete lines on.
func (lr *logReader) drain() error {
	if lr.br == nil {
		lr.br = bufio.NewReaderSize(lr.cur, 64<<10)
	} else {
		lr.br.Reset(lr.cur)
	}
	br := lr.br
	for {
		chunk, err := br.ReadSlice('\n')
		if len(chunk) > 0 {
			if chunk[len(chunk)-1] != '\n' || len(lr.partial) > 0 {
				lr.partial = append(lr.partial, chunk...)
				if lr.partial[len(lr.partial)-1] == '\n' {
					line := lr.partial
					lr.partial = lr.partial[:0]
					if err := lr.entry(line); err != nil {
						return err
					}
				}
			} else if err := lr.entry(chunk); err != nil {
				return err
			}
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// errUntil stops the reading at the first entry from Until on.
var errUntil = errors.New("until reached")

// entry decodes one line of the file and hands it on if selected.
func (lr *logReader) entry(line []byte) error {
	var le logEntry
	if err := json.Unmarshal(bytes.TrimSpace(line), &le); err != nil {
		return nil // a torn line from a crash: skip it, as docker does
	}
	if !lr.opts.Since.IsZero() && le.Time.Before(lr.opts.Since) {
		return nil
	}
	if !lr.opts.Until.IsZero() && !le.Time.Before(lr.opts.Until) {
		return errUntil
	}
	return lr.fn(LogEntry{Stream: le.Stream, Time: le.Time, Line: []byte(le.Log), Attrs: le.Attrs})
}

// follow reads what the container writes from now on, reopening the log
// after a rotation, until the container stops or ctx ends.
func (lr *logReader) follow(ctx context.Context) error {
	w, err := watchDir(lr.c.rt.containerDir(lr.c.rec.ID))
	if err != nil {
		return err
	}
	defer w.close()
	for {
		// Read the status before the file: output written before the
		// stop is in the file by the time the status says stopped.
		running := lr.c.rt.containerLive(lr.c.rec.ID)
		if lr.cur != nil {
			if err := lr.drain(); err != nil {
				return err
			}
		}
		newer, err := lr.newerFiles()
		if err != nil {
			return err
		}
		if len(newer) > 0 {
			// Rotated: finish ours (written to between the drain above
			// and the rotation), read the files that followed it, and
			// follow the current one.
			if lr.cur != nil {
				err := lr.drain()
				lr.cur.Close()
				if err != nil {
					lr.cur = nil
					for _, f := range newer {
						f.Close()
					}
					return err
				}
			}
			for i, f := range newer {
				lr.cur = f
				lr.partial = lr.partial[:0]
				if i == len(newer)-1 {
					break
				}
				err := lr.drain()
				f.Close()
				if err != nil {
					lr.cur = nil
					for _, g := range newer[i+1:] {
						g.Close()
					}
					return err
				}
			}
			continue
		}
		if !running {
			return nil
		}
		if !lr.opts.Until.IsZero() && !time.Now().Before(lr.opts.Until) {
			return nil
		}
		if err := w.wait(ctx, time.Second); err != nil {
			return err
		}
	}
}

// newerFiles opens the log files written after the one being read, oldest
// first, the current one last; none when it is still the current one.
// A file that was rotated away entirely (past max-file) makes every file
// newer.
//
// The names are tried from the newest (the current file) to the oldest
// while the writer may rotate: a rotation only ever moves a file to an
// older name, one step at a time, so no file newer than ours can slip
// past the probes, and each file is first met in order, newest first.
// (Tried oldest first, a rotation between two probes hid a whole file.)
func (lr *logReader) newerFiles() ([]*os.File, error) {
	var cur os.FileInfo
	if lr.cur != nil {
		var err error
		if cur, err = lr.cur.Stat(); err != nil {
			return nil, err
		}
	}
	var files []*os.File // newest first
	var infos []os.FileInfo
probe:
	for i := 0; i < max(lr.maxFiles, 1); i++ {
		p := lr.path
		if i > 0 {
			p = rotatedLog(lr.path, i)
		}
		f, err := os.Open(p)
		if err != nil {
			continue // rotated meanwhile, or not there yet
		}
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			continue
		}
		if cur != nil && os.SameFile(cur, fi) {
			f.Close()
			break // ours: the rest is older
		}
		for _, seen := range infos {
			if os.SameFile(seen, fi) {
				f.Close()
				continue probe // met again under an older name
			}
		}
		files, infos = append(files, f), append(infos, fi)
	}
	slices.Reverse(files)
	return files, nil
}

// containerLive reports whether container id runs or will run again
// (restarting) under a live owner, from its state file (no lock: log
// readers poll it).
func (r *Runtime) containerLive(id string) bool {
	st, err := r.readState(id)
	if err != nil {
		return false
	}
	switch st.Status {
	case StatusRunning, StatusPaused, StatusRestarting:
		return st.Owner.Alive()
	}
	return false
}
