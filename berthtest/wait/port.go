package wait

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/berth-run/berth"
)

// ForPort waits until the container listens on port ("3306/tcp",
// "53/udp", "8080"). A published TCP port is checked from the host: a
// connection to its published address succeeds (through the NAT, so
// only once the server accepts). A port that is not published, or UDP,
// is checked in the container's network namespace: a socket bound to it
// in /proc/PID/net, read from the host. No process is run in the
// container.
func ForPort(port Port) *PortStrategy { return &PortStrategy{port: port} }

// PortStrategy is ForPort's strategy.
type PortStrategy struct {
	timeouts
	port Port
}

// WithTimeout bounds the wait. Default DefaultTimeout.
func (s *PortStrategy) WithTimeout(d time.Duration) *PortStrategy { s.timeout = d; return s }

func (s *PortStrategy) String() string { return "port " + string(s.port) }

// WaitUntilReady implements Strategy.
func (s *PortStrategy) WaitUntilReady(ctx context.Context, c *berth.Container) error {
	num, proto, err := s.port.parse()
	if err != nil {
		return failure(c, s.String(), err)
	}
	addr := ""
	if proto == "tcp" {
		addr, _ = HostAddr(ctx, c, s.port) // "" when it is not published
	}
	pid := 0
	return poll(ctx, c, s.String(), s.get(), 20*time.Millisecond, func(ctx context.Context) (bool, error) {
		if addr != "" {
			dctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			var d net.Dialer
			conn, err := d.DialContext(dctx, "tcp", addr)
			if err != nil {
				return false, fmt.Errorf("published at %s: %w", addr, err)
			}
			conn.Close()
			return true, nil
		}
		if pid == 0 {
			st, err := c.State(ctx)
			if err != nil || !st.Running {
				return false, err
			}
			pid = st.Pid
		}
		return listening(pid, proto, num)
	})
}

// socket states of /proc/net/tcp: LISTEN; for udp, a bound socket is
// "unconnected" (TCP_CLOSE).
const (
	stateListen      = "0A"
	stateUnconnected = "07"
)

// listening reports whether a socket listens on port in the network
// namespace of process pid, from /proc/PID/net/{tcp,tcp6,udp,udp6}.
func listening(pid int, proto string, port uint16) (bool, error) {
	want := stateListen
	if proto != "tcp" {
		want = stateUnconnected
	}
	var lastErr error
	found := false
	for _, suffix := range []string{"", "6"} {
		f, err := os.Open(fmt.Sprintf("/proc/%d/net/%s%s", pid, proto, suffix))
		if err != nil {
			lastErr = err
			continue
		}
		found = true
		ok := scanSockets(f, want, port)
		f.Close()
		if ok {
			return true, nil
		}
	}
	if !found {
		return false, lastErr
	}
	return false, nil
}

// scanSockets reports whether the /proc/net table in f has a socket in
// state on local port port.
func scanSockets(f *os.File, state string, port uint16) bool {
	sc := bufio.NewScanner(f)
	sc.Scan() // the header
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 4 || fields[3] != state {
			continue
		}
		_, hexPort, ok := strings.Cut(fields[1], ":")
		if !ok {
			continue
		}
		if p, err := strconv.ParseUint(hexPort, 16, 16); err == nil && uint16(p) == port {
			return true
		}
	}
	return false
}
