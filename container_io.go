package berth

import (
	"io"
	"os"
	"time"
)

// RunOption configures Run and Start.
type RunOption func(*runOptions)

type runOptions struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	detach         bool
	tieToCreator   bool

	// Set by the monitor (monitor_linux.go) for the containers it runs:
	// hubReady sees the attach hub before the process starts (attaches
	// waiting for the start join it), onExit sees each exit's state.
	hubReady func(h *attachHub)
	onExit   func(st *containerState)
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
// writes it. The writer (with rotation) is in logs_writer.go.
type logEntry struct {
	Log    string            `json:"log"`
	Stream string            `json:"stream"`
	Time   time.Time         `json:"time"`
	Attrs  map[string]string `json:"attrs,omitempty"`
}

// maxLogLine bounds a log entry without a newline, as docker's 16 KiB.
const maxLogLine = 16 << 10

// pump copies r to the log (split into lines) and to w (if not nil)
// until r ends; done is called when it has. A pipe is read through Go's
// poller with a buffer borrowed only while data flows, so an idle
// container holds none (linePump, logs_writer.go).
func pump(r io.Reader, w io.Writer, log *logWriter, stream string, done func()) {
	defer done()
	lp := &linePump{w: w, log: log, stream: stream}
	defer lp.flush()
	if f, ok := r.(*os.File); ok && lp.pollFile(f) {
		return
	}
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		lp.chunk(buf[:n])
		if err != nil {
			return
		}
	}
}
