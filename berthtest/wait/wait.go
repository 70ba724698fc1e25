// Package wait holds berthtest's readiness checks: strategies that wait
// until a started container serves what a test needs.
//
// Every check is made from the host — the container's log, the sockets
// listening in its network namespace (/proc/PID/net/tcp), a connection to
// its published port, an HTTP request, a SQL query — except ForExec,
// which runs a command in the container for images that need it. None of
// them needs a shell in the image.
//
// Each strategy has a timeout (default 60 seconds; WithTimeout changes
// it), stops early when the container exits, and fails with an *Error
// that shows the container's last log lines.
package wait

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/berth-run/berth"
	"github.com/berth-run/berth/internal/errdefs"
)

// Strategy waits until a container is ready.
type Strategy interface {
	// WaitUntilReady returns nil once c is ready, or an *Error saying
	// why it is not (timeout, exit, ctx ended).
	WaitUntilReady(ctx context.Context, c *berth.Container) error
}

// DefaultTimeout bounds each strategy that was not given a timeout.
const DefaultTimeout = 60 * time.Second

// LogLines is how many of the container's last log lines an Error shows.
const LogLines = 20

// Error is a strategy's failure: what it waited for, why it stopped, and
// the container's last log lines.
type Error struct {
	// Strategy describes the check ("log \"ready\" x2", "port 3306/tcp").
	Strategy string
	// Err is why it stopped waiting: ErrTimeout, ErrExited, ctx's error,
	// or the check's last error.
	Err error
	// Container is the container's name.
	Container string
	// Logs are its last log lines.
	Logs string
}

// ErrTimeout is the Err of an Error when the strategy's timeout passed.
var ErrTimeout = errors.New("timed out")

// ErrExited is the Err of an Error when the container exited first.
var ErrExited = errors.New("container exited")

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "wait for %s: %v", e.Strategy, e.Err)
	if e.Logs != "" {
		fmt.Fprintf(&b, "\nlast log lines of container %s:\n%s", e.Container, strings.TrimRight(e.Logs, "\n"))
	} else {
		fmt.Fprintf(&b, " (container %s logged nothing)", e.Container)
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// failure makes the Error of strategy what on c.
func failure(c *berth.Container, what string, err error) error {
	var we *Error
	if errors.As(err, &we) {
		return err
	}
	return &Error{Strategy: what, Err: err, Container: c.Name(), Logs: LastLogs(c, LogLines)}
}

// LastLogs returns the last n lines of c's log (both streams), or a note
// saying why they cannot be read.
func LastLogs(c *berth.Container, n int) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var b bytes.Buffer
	err := c.LogEntries(ctx, berth.LogsOptions{Tail: &n}, func(e berth.LogEntry) error {
		b.Write(e.Line)
		if len(e.Line) > 0 && e.Line[len(e.Line)-1] != '\n' {
			b.WriteByte('\n')
		}
		return nil
	})
	if err != nil {
		fmt.Fprintf(&b, "(reading the log: %v)\n", err)
	}
	return b.String()
}

// timeouts is the timeout knob every strategy has.
type timeouts struct{ timeout time.Duration }

func (t timeouts) get() time.Duration {
	if t.timeout > 0 {
		return t.timeout
	}
	return DefaultTimeout
}

// poll calls check until it reports done, the timeout passes, ctx ends or
// the container exits; it sleeps between calls, starting at 1ms and
// doubling up to max. check's last error is reported on timeout.
func poll(ctx context.Context, c *berth.Container, what string, timeout, max time.Duration, check func(ctx context.Context) (bool, error)) error {
	ctx, cancel := context.WithTimeoutCause(ctx, timeout, ErrTimeout)
	defer cancel()
	delay := time.Millisecond
	var last error
	for {
		ok, err := check(ctx)
		if ok {
			return nil
		}
		if err != nil {
			last = err
		}
		if exited, err := exitedState(ctx, c); exited {
			return failure(c, what, err)
		}
		select {
		case <-ctx.Done():
			cause := context.Cause(ctx)
			if errors.Is(cause, ErrTimeout) {
				if last != nil {
					cause = fmt.Errorf("%w after %s (last attempt: %v)", ErrTimeout, timeout, last)
				} else {
					cause = fmt.Errorf("%w after %s", ErrTimeout, timeout)
				}
			}
			return failure(c, what, cause)
		case <-time.After(delay):
		}
		if delay *= 2; delay > max {
			delay = max
		}
	}
}

// exitedState reports whether c has stopped running, with an ErrExited
// error that gives its exit code.
func exitedState(ctx context.Context, c *berth.Container) (bool, error) {
	st, err := c.State(ctx)
	if err != nil {
		if errors.Is(err, errdefs.ErrNotFound) {
			return true, fmt.Errorf("%w: it was removed", ErrExited)
		}
		return false, nil
	}
	if st.Running {
		return false, nil
	}
	if st.Status == berth.StatusCreated {
		return true, fmt.Errorf("%w: it is not started", ErrExited)
	}
	extra := ""
	if st.OOMKilled {
		extra += " (OOM killed)"
	}
	if st.Error != "" {
		extra += ": " + st.Error
	}
	return true, fmt.Errorf("%w with code %d%s", ErrExited, st.ExitCode, extra)
}

// Port is a container port as docker writes it: "3306/tcp", "53/udp",
// or "8080" (tcp).
type Port string

// parse splits p into number and protocol.
func (p Port) parse() (uint16, string, error) {
	num, proto, _ := strings.Cut(string(p), "/")
	if proto == "" {
		proto = "tcp"
	}
	n, err := strconv.ParseUint(num, 10, 16)
	if err != nil || n == 0 {
		return 0, "", errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid port %q: want PORT[/tcp|udp|sctp]", string(p)))
	}
	switch proto {
	case "tcp", "udp", "sctp":
	default:
		return 0, "", errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid port %q: unknown protocol %q", string(p), proto))
	}
	return uint16(n), proto, nil
}

// HostAddr returns the host address ("127.0.0.1:49153") that port of c
// is published on, ErrNotFound when it is not published. An empty port
// names c's first published TCP port.
func HostAddr(ctx context.Context, c *berth.Container, port Port) (string, error) {
	var num uint16
	proto := "tcp"
	if port != "" {
		var err error
		if num, proto, err = port.parse(); err != nil {
			return "", err
		}
	}
	ports, err := Ports(ctx, c)
	if err != nil {
		return "", err
	}
	for _, p := range ports {
		pp := p.Protocol
		if pp == "" {
			pp = "tcp"
		}
		if (num == 0 || p.ContainerPort == num) && pp == proto && p.HostPort != 0 {
			host := p.HostIP
			if host == "" || host == "0.0.0.0" || host == "::" {
				host = "127.0.0.1"
			}
			return net.JoinHostPort(host, strconv.Itoa(int(p.HostPort))), nil
		}
	}
	if port == "" {
		return "", errdefs.New(errdefs.ErrNotFound, fmt.Sprintf("container %s publishes no tcp port", c.Name()))
	}
	return "", errdefs.New(errdefs.ErrNotFound, fmt.Sprintf("container %s does not publish port %s", c.Name(), string(port)))
}

// Ports are c's published ports (berth.Container.Ports); for a container
// on the host's network, whose ports are the host's, the ports its image
// exposes and its spec names, each "published" on itself at 127.0.0.1.
func Ports(ctx context.Context, c *berth.Container) ([]berth.PortBinding, error) {
	spec := c.Spec()
	if spec.Network != "host" {
		return c.Ports(ctx)
	}
	var out []berth.PortBinding
	seen := map[string]bool{}
	add := func(num uint16, proto string) {
		if proto == "" {
			proto = "tcp"
		}
		k := fmt.Sprintf("%d/%s", num, proto)
		if num != 0 && !seen[k] {
			seen[k] = true
			out = append(out, berth.PortBinding{HostIP: "127.0.0.1", HostPort: num, ContainerPort: num, Protocol: proto})
		}
	}
	for _, p := range spec.Ports {
		add(p.ContainerPort, p.Protocol)
	}
	ins, err := c.Inspect(ctx)
	if err != nil {
		return nil, err
	}
	for _, e := range slices.Sorted(maps.Keys(ins.Config.ExposedPorts)) {
		if num, proto, err := Port(e).parse(); err == nil {
			add(num, proto)
		}
	}
	return out, nil
}

// ForAll waits for each strategy in turn; it fails with the first that
// fails. Its timeout (none by default) bounds them all together.
func ForAll(strategies ...Strategy) *MultiStrategy {
	return &MultiStrategy{strategies: strategies}
}

// MultiStrategy is ForAll's strategy.
type MultiStrategy struct {
	strategies []Strategy
	timeout    time.Duration
}

// WithTimeout bounds the whole wait. Default: only each strategy's own
// timeout.
func (m *MultiStrategy) WithTimeout(d time.Duration) *MultiStrategy { m.timeout = d; return m }

// WaitUntilReady implements Strategy.
func (m *MultiStrategy) WaitUntilReady(ctx context.Context, c *berth.Container) error {
	if m.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, m.timeout, ErrTimeout)
		defer cancel()
	}
	for _, s := range m.strategies {
		if s == nil {
			continue
		}
		if err := s.WaitUntilReady(ctx, c); err != nil {
			return err
		}
	}
	return nil
}

func (m *MultiStrategy) String() string {
	var parts []string
	for _, s := range m.strategies {
		parts = append(parts, fmt.Sprint(s))
	}
	return "all of [" + strings.Join(parts, ", ") + "]"
}
