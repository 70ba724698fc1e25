package berth

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"sync"
	"time"
)

// RunOption configures Run and Start.
type RunOption func(*runOptions)

type runOptions struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	detach         bool
	tieToCreator   bool
}

// WithStdin streams r to the container's standard input (docker -i). The
// container's stdin is closed when r reaches EOF. Default: no input.
func WithStdin(r io.Reader) RunOption { return func(o *runOptions) { o.stdin = r } }

// WithStdout copies the container's standard output (or its terminal's
// output) to w as well as to its log. Default: the log only.
func WithStdout(w io.Writer) RunOption { return func(o *runOptions) { o.stdout = w } }

// WithStderr copies the container's standard error to w as well as to
// its log. Default: the log only.
func WithStderr(w io.Writer) RunOption { return func(o *runOptions) { o.stderr = w } }

func makeRunOptions(opts []RunOption) runOptions {
	var o runOptions
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// logFileName is the container's log in docker's json-file format.
const logFileName = "container-json.log"

// logEntry is one line of a container log, as docker's json-file driver
// writes it.
type logEntry struct {
	Log    string    `json:"log"`
	Stream string    `json:"stream"`
	Time   time.Time `json:"time"`
}

// logWriter appends a container's output to its log file, one entry per
// line, from several streams at once.
type logWriter struct {
	mu sync.Mutex // guards f
	f  *os.File
}

func openLog(path string) (*logWriter, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	return &logWriter{f: f}, nil
}

func (l *logWriter) write(stream string, line []byte) {
	b, err := json.Marshal(logEntry{Log: string(line), Stream: stream, Time: time.Now().UTC()})
	if err != nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	_, _ = l.f.Write(append(b, '\n'))
}

func (l *logWriter) Close() error { return l.f.Close() }

// maxLogLine bounds a log entry without a newline, as docker's 16 KiB.
const maxLogLine = 16 << 10

// pump copies r to the log (split into lines) and to w (if not nil)
// until r ends; done is called when it has.
func pump(r io.Reader, w io.Writer, log *logWriter, stream string, done func()) {
	defer done()
	buf := make([]byte, 32<<10)
	var line []byte
	for {
		n, err := r.Read(buf)
		if n > 0 {
			chunk := buf[:n]
			if w != nil {
				_, _ = w.Write(chunk)
			}
			if log != nil {
				for len(chunk) > 0 {
					i := bytes.IndexByte(chunk, '\n')
					if i < 0 {
						line = append(line, chunk...)
						if len(line) >= maxLogLine {
							log.write(stream, line)
							line = line[:0]
						}
						break
					}
					line = append(line, chunk[:i+1]...)
					log.write(stream, line)
					line = line[:0]
					chunk = chunk[i+1:]
				}
			}
		}
		if err != nil {
			if len(line) > 0 && log != nil {
				log.write(stream, line)
			}
			return
		}
	}
}
