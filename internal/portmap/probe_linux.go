package portmap

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/berth-run/berth/internal/errdefs"
)

// ephemeralRange reads the host's ephemeral port range, the range docker
// also draws random host ports from.
func ephemeralRange() (lo, hi uint16, err error) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0, 0, err
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0, 0, fmt.Errorf("ip_local_port_range: unexpected %q", b)
	}
	l, err1 := strconv.ParseUint(f[0], 10, 16)
	h, err2 := strconv.ParseUint(f[1], 10, 16)
	if err1 != nil || err2 != nil || l == 0 || h < l {
		return 0, 0, fmt.Errorf("ip_local_port_range: unexpected %q", b)
	}
	return uint16(l), uint16(h), nil
}

// reservedPorts reads ip_local_reserved_ports ("8080,9000-9010"): ports
// the administrator keeps out of automatic assignment.
func reservedPorts() map[uint16]bool {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_reserved_ports")
	if err != nil {
		return nil
	}
	out := map[uint16]bool{}
	for _, part := range strings.Split(strings.TrimSpace(string(b)), ",") {
		a, z, _ := strings.Cut(part, "-")
		lo, err := strconv.ParseUint(a, 10, 16)
		if err != nil {
			continue
		}
		hi := lo
		if z != "" {
			if hi, err = strconv.ParseUint(z, 10, 16); err != nil {
				continue
			}
		}
		for p := lo; p <= hi && p <= 65535; p++ {
			out[uint16(p)] = true
		}
	}
	return out
}

// errPortBusy is what probe reports for a port a host socket holds.
var errPortBusy = errors.New("port in use")

// probe checks that proto port on ip (or on all addresses of its family
// when ip is unspecified) is free on the host by binding a socket to it
// and closing it again. TCP uses SO_REUSEADDR, so that only listeners —
// not connections lingering in TIME_WAIT — count as taken, as for any
// server about to listen.
func probe(proto string, ip netip.Addr, port uint16) error {
	domain := unix.AF_INET
	if ip.Is6() {
		domain = unix.AF_INET6
	}
	typ, p := unix.SOCK_STREAM, 0
	switch proto {
	case UDP:
		typ = unix.SOCK_DGRAM
	case SCTP:
		p = unix.IPPROTO_SCTP
	}
	fd, err := unix.Socket(domain, typ|unix.SOCK_CLOEXEC, p)
	if err != nil {
		if proto == SCTP && (errors.Is(err, unix.EPROTONOSUPPORT) || errors.Is(err, unix.ESOCKTNOSUPPORT)) {
			return nil // no SCTP in this kernel: nothing can hold the port
		}
		return fmt.Errorf("probe %s port %d: %w", proto, port, err)
	}
	defer unix.Close(fd)
	if typ == unix.SOCK_STREAM {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
			return fmt.Errorf("probe %s port %d: %w", proto, port, err)
		}
	}
	var sa unix.Sockaddr
	if ip.Is6() {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1); err != nil {
			return fmt.Errorf("probe %s port %d: %w", proto, port, err)
		}
		sa = &unix.SockaddrInet6{Port: int(port), Addr: ip.As16()}
	} else {
		sa = &unix.SockaddrInet4{Port: int(port), Addr: ip.As4()}
	}
	err = unix.Bind(fd, sa)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.EADDRINUSE):
		return errPortBusy
	case errors.Is(err, unix.EADDRNOTAVAIL):
		return errdefs.Wrap(errdefs.ErrInvalid, fmt.Sprintf("host address %s is not an address of this host", ip), err)
	default:
		return fmt.Errorf("probe %s port %s: %w", proto, netip.AddrPortFrom(ip, port), err)
	}
}
