package berth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-run/berth/internal/errdefs"
	"github.com/berth-run/berth/internal/opts"
)

// The log drivers: json-file and local both write docker's json-file
// format (one JSON object per line); none keeps no log.
const (
	LogDriverJSONFile = "json-file"
	LogDriverLocal    = "local"
	LogDriverNone     = "none"
)

// LogConfig is a container's logging configuration (docker --log-driver
// and --log-opt).
type LogConfig struct {
	// Type is LogDriverJSONFile (the default), LogDriverLocal (the same
	// format here) or LogDriverNone.
	Type string
	// Config are the driver's options: "max-size" (a size like "10m";
	// default "20m", "-1" for no limit), "max-file" (how many files to
	// keep, the current one included; default 5), and "labels" / "env"
	// (comma-separated label and variable names whose values every entry
	// carries, shown by `logs --details`). Other options are refused.
	Config map[string]string
}

// Default rotation: docker's "local" driver defaults.
const (
	defaultLogMaxSize  = 20 << 20
	defaultLogMaxFiles = 5
)

// logSettings is a LogConfig checked and with defaults.
type logSettings struct {
	driver   string
	maxSize  int64 // <= 0: no rotation
	maxFiles int
	labels   []string
	env      []string
}

// parseLogConfig checks cfg and fills in the defaults.
func parseLogConfig(cfg LogConfig) (logSettings, error) {
	s := logSettings{driver: cfg.Type, maxSize: defaultLogMaxSize, maxFiles: defaultLogMaxFiles}
	switch s.driver {
	case "":
		s.driver = LogDriverJSONFile
	case LogDriverJSONFile, LogDriverLocal, LogDriverNone:
	default:
		return s, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("logger: no log driver named '%s' is registered (berth has json-file, local and none)", cfg.Type))
	}
	for k, v := range cfg.Config {
		if s.driver == LogDriverNone {
			return s, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("unknown log opt '%s' for none log driver", k))
		}
		switch k {
		case "max-size":
			if v == "-1" {
				s.maxSize = -1
				continue
			}
			n, err := opts.ParseMemory(v)
			if err != nil || n <= 0 {
				return s, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid log opt max-size %q: a size like 10m or -1", v))
			}
			s.maxSize = n
		case "max-file":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return s, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid log opt max-file %q: max-file cannot be less than 1", v))
			}
			s.maxFiles = n
		case "labels":
			s.labels = splitList(v)
		case "env":
			s.env = splitList(v)
		case "compress", "mode", "max-buffer-size":
			// Accepted for compatibility: rotated files stay plain and
			// writes never block on a reader.
		default:
			return s, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("unknown log opt '%s' for %s log driver", k, s.driver))
		}
	}
	if s.maxSize < 0 && cfg.Config["max-file"] != "" && s.maxFiles > 1 {
		return s, errdefs.New(errdefs.ErrInvalid, "max-file cannot be set without max-size")
	}
	return s, nil
}

func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// logAttrs are the attributes each entry carries: the values of the
// labels and variables the configuration names.
func logAttrs(s logSettings, spec *Spec) map[string]string {
	attrs := map[string]string{}
	for _, l := range s.labels {
		if v, ok := spec.Labels[l]; ok {
			attrs[l] = v
		}
	}
	for _, e := range s.env {
		for _, kv := range spec.Env {
			if k, v, ok := strings.Cut(kv, "="); ok && k == e {
				attrs[k] = v
			}
		}
	}
	if len(attrs) == 0 {
		return nil
	}
	return attrs
}

// logWriter appends a container's output to its log file, one entry per
// line, from several streams at once, and rotates the file when it
// passes the size limit: container-json.log is renamed .1, .1 becomes .2,
// and so on; the oldest beyond max-file is dropped.
type logWriter struct {
	mu       sync.Mutex // guards the fields below
	path     string
	f        *os.File // nil: no log (driver none, or the file failed)
	size     int64
	maxSize  int64
	maxFiles int
	attrs    map[string]string
}

// openLog opens (appending) the log of a container with spec, whose
// log file is path.
func openLog(path string, spec *Spec) (*logWriter, error) {
	s, err := parseLogConfig(spec.LogConfig)
	if err != nil {
		return nil, err
	}
	l := &logWriter{path: path, maxSize: s.maxSize, maxFiles: s.maxFiles, attrs: logAttrs(s, spec)}
	if s.driver == LogDriverNone {
		return l, nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if fi, err := f.Stat(); err == nil {
		l.size = fi.Size()
	}
	l.f = f
	return l, nil
}

func (l *logWriter) write(stream string, line []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return
	}
	// Timed under the lock: the file's entries are in time order.
	b, err := json.Marshal(logEntry{Log: string(line), Stream: stream, Time: time.Now().UTC(), Attrs: l.attrs})
	if err != nil {
		return
	}
	b = append(b, '\n')
	if l.maxSize > 0 && l.size > 0 && l.size+int64(len(b)) > l.maxSize {
		if err := l.rotate(); err != nil {
			return
		}
	}
	n, _ := l.f.Write(b)
	l.size += int64(n)
}

// rotate moves the current file to .1 (shifting the older ones) and
// starts a new one. A reader that follows the log finishes the file it
// has open and then opens the new one. The caller holds mu.
func (l *logWriter) rotate() error {
	l.f.Close()
	l.f = nil
	if l.maxFiles <= 1 {
		if err := os.Remove(l.path); err != nil && !os.IsNotExist(err) {
			return err
		}
	} else {
		_ = os.Remove(rotatedLog(l.path, l.maxFiles-1))
		for i := l.maxFiles - 2; i >= 1; i-- {
			_ = os.Rename(rotatedLog(l.path, i), rotatedLog(l.path, i+1))
		}
		if err := os.Rename(l.path, rotatedLog(l.path, 1)); err != nil {
			return err
		}
	}
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	l.f, l.size = f, 0
	return nil
}

// rotatedLog is the name of the i-th older log file.
func rotatedLog(path string, i int) string { return path + "." + strconv.Itoa(i) }

// logFiles lists a container's log files that exist, oldest first.
func logFiles(path string) []string {
	var older []string
	for i := 1; ; i++ {
		p := rotatedLog(path, i)
		if _, err := os.Stat(p); err != nil {
			break
		}
		older = append(older, p)
	}
	out := make([]string, 0, len(older)+1)
	for i := len(older) - 1; i >= 0; i-- {
		out = append(out, older[i])
	}
	return append(out, path)
}

func (l *logWriter) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}

// containerLogPath is the path of container id's current log file.
func (r *Runtime) containerLogPath(id string) string {
	return filepath.Join(r.containerDir(id), logFileName)
}

// linePump passes a container's output stream on: every chunk to w, and
// to the log split into lines (at most maxLogLine each).
type linePump struct {
	w      io.Writer // nil: the log only
	log    *logWriter
	stream string
	line   []byte // an incomplete line
}

func (lp *linePump) chunk(p []byte) {
	if len(p) == 0 {
		return
	}
	if lp.w != nil {
		_, _ = lp.w.Write(p)
	}
	if lp.log == nil {
		return
	}
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			lp.line = append(lp.line, p...)
			if len(lp.line) >= maxLogLine {
				lp.log.write(lp.stream, lp.line)
				lp.line = lp.line[:0]
			}
			return
		}
		lp.line = append(lp.line, p[:i+1]...)
		lp.log.write(lp.stream, lp.line)
		lp.line = lp.line[:0]
		p = p[i+1:]
	}
}

// flush logs an incomplete last line.
func (lp *linePump) flush() {
	if len(lp.line) > 0 && lp.log != nil {
		lp.log.write(lp.stream, lp.line)
		lp.line = nil
	}
}

// pumpBufs are read buffers lent to pumps while data flows. A cache of
// scratch space, not state: any buffer serves any pump.
var pumpBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// pollFile pumps f until it ends, waiting for data in Go's poller and
// borrowing a buffer only to read what is there. It reports false, having
// read nothing, when f offers no raw access.
func (lp *linePump) pollFile(f *os.File) bool {
	rc, err := f.SyscallConn()
	if err != nil {
		return false
	}
	_ = rc.Read(func(fd uintptr) bool {
		bp := pumpBufs.Get().(*[]byte)
		defer pumpBufs.Put(bp)
		for {
			n, err := unix.Read(int(fd), *bp)
			switch {
			case errors.Is(err, unix.EINTR):
				continue
			case errors.Is(err, unix.EAGAIN):
				return false // drained: wait for more
			case err != nil || n <= 0:
				return true // the end (EIO: a terminal whose other side closed)
			}
			lp.chunk((*bp)[:n])
		}
	})
	return true
}
