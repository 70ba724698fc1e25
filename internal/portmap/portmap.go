// Package portmap parses docker's port publishing flags (-p, -P) and
// publishes container ports on the host through kernel NAT: one nftables
// table per store (see Table) with DNAT rules owned per container.
package portmap

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/berth-run/berth/internal/errdefs"
)

// Protocols a port can be published for.
const (
	TCP  = "tcp"
	UDP  = "udp"
	SCTP = "sctp"
)

// PortMapping publishes one container port on the host.
type PortMapping struct {
	// HostIP restricts the mapping to one host address; the zero Addr
	// means all host addresses of the container address's family.
	// 0.0.0.0 and :: are kept as given and mean all IPv4, all IPv6
	// addresses.
	HostIP netip.Addr
	// HostPort is the host port; 0 asks for a free port from the
	// ephemeral range when the mapping is published.
	HostPort uint16
	// HostPortEnd, when non-zero, makes [HostPort, HostPortEnd] a range
	// to choose one free host port from (docker's "8000-8010:80").
	HostPortEnd   uint16
	ContainerPort uint16
	Protocol      string // TCP, UDP or SCTP
}

// String formats m the way docker ps does: "127.0.0.1:8080->80/tcp",
// "0.0.0.0:8080->80/tcp", "[::1]:8080->80/tcp"; an unresolved host port
// prints as 0 or as its range.
func (m PortMapping) String() string {
	ip := "0.0.0.0"
	if m.HostIP.IsValid() {
		ip = m.HostIP.String()
		if m.HostIP.Is6() {
			ip = "[" + ip + "]"
		}
	}
	return fmt.Sprintf("%s:%s->%d/%s", ip, m.hostPorts(), m.ContainerPort, m.Protocol)
}

// Spec formats m as a -p argument that Parse turns back into m.
func (m PortMapping) Spec() string {
	var b strings.Builder
	if m.HostIP.IsValid() {
		if m.HostIP.Is6() {
			b.WriteString("[" + m.HostIP.String() + "]")
		} else {
			b.WriteString(m.HostIP.String())
		}
		b.WriteByte(':')
	}
	if m.HostIP.IsValid() || m.HostPort != 0 {
		if m.HostPort != 0 {
			b.WriteString(m.hostPorts())
		}
		b.WriteByte(':')
	}
	fmt.Fprintf(&b, "%d/%s", m.ContainerPort, m.Protocol)
	return b.String()
}

func (m PortMapping) hostPorts() string {
	if m.HostPortEnd != 0 {
		return fmt.Sprintf("%d-%d", m.HostPort, m.HostPortEnd)
	}
	return strconv.Itoa(int(m.HostPort))
}

// Parse parses one -p argument in any of docker's forms:
//
//	80                       container port 80, a random host port
//	8080:80                  host port 8080 on all addresses
//	127.0.0.1:8080:80        host port 8080 on 127.0.0.1
//	127.0.0.1::80            a random host port on 127.0.0.1
//	[::1]:8080:80, ::1:8080:80   IPv6 host addresses
//	8000-8010:80-90          a range, one mapping per port (lengths must match)
//	8000-8010:80             one free host port out of 8000-8010 for port 80
//	80-90                    each container port to its own random host port
//	.../tcp, .../udp, .../sctp   protocol (default tcp)
//
// Malformed input is an ErrInvalid error quoting spec.
func Parse(spec string) ([]PortMapping, error) {
	bad := func(format string, args ...any) error {
		return errdefs.New(errdefs.ErrInvalid,
			fmt.Sprintf("invalid port spec %q: %s", spec, fmt.Sprintf(format, args...)))
	}
	if spec == "" {
		return nil, bad("empty")
	}
	rawIP, rawHost, rawCtr := splitParts(spec)
	rawCtr, proto, hasProto := strings.Cut(rawCtr, "/")
	proto = strings.ToLower(proto)
	switch {
	case !hasProto:
		proto = TCP
	case proto == TCP || proto == UDP || proto == SCTP:
	default:
		return nil, bad("unknown protocol %q (want tcp, udp or sctp)", proto)
	}
	if rawCtr == "" {
		return nil, bad("no container port")
	}

	var ip netip.Addr
	if rawIP != "" {
		s := rawIP
		if strings.HasPrefix(s, "[") {
			if !strings.HasSuffix(s, "]") {
				return nil, bad("unbalanced brackets in host address %q", rawIP)
			}
			s = s[1 : len(s)-1]
		}
		var err error
		ip, err = netip.ParseAddr(s)
		if err != nil || ip.Zone() != "" {
			return nil, bad("invalid host address %q", rawIP)
		}
		if strings.HasPrefix(rawIP, "[") && !ip.Is6() {
			return nil, bad("brackets around an IPv4 host address %q", rawIP)
		}
		ip = ip.Unmap()
	}

	cStart, cEnd, err := parseRange(rawCtr, false)
	if err != nil {
		return nil, bad("container port: %v", err)
	}
	var hStart, hEnd uint16
	if rawHost != "" {
		hStart, hEnd, err = parseRange(rawHost, true)
		if err != nil {
			return nil, bad("host port: %v", err)
		}
	}

	n := int(cEnd-cStart) + 1
	out := make([]PortMapping, 0, n)
	switch {
	case rawHost == "" || hStart == 0:
		// Random host port for each container port.
		for i := range n {
			out = append(out, PortMapping{HostIP: ip, ContainerPort: cStart + uint16(i), Protocol: proto})
		}
	case n == 1 && hEnd != hStart:
		// One container port, a host range to choose from.
		out = append(out, PortMapping{HostIP: ip, HostPort: hStart, HostPortEnd: hEnd, ContainerPort: cStart, Protocol: proto})
	case int(hEnd-hStart)+1 != n:
		return nil, bad("host range %d-%d and container range %d-%d differ in length", hStart, hEnd, cStart, cEnd)
	default:
		for i := range n {
			out = append(out, PortMapping{HostIP: ip, HostPort: hStart + uint16(i), ContainerPort: cStart + uint16(i), Protocol: proto})
		}
	}
	return out, nil
}

// ParseAll parses several -p arguments.
func ParseAll(specs []string) ([]PortMapping, error) {
	var out []PortMapping
	for _, s := range specs {
		m, err := Parse(s)
		if err != nil {
			return nil, err
		}
		out = append(out, m...)
	}
	return out, nil
}

// PublishAll implements -P: every exposed port ("80", "80/tcp",
// "53/udp", "8000-8010/tcp", as in an image's ExposedPorts) is mapped to a
// random host port on all addresses.
func PublishAll(exposed []string) ([]PortMapping, error) {
	var out []PortMapping
	for _, e := range exposed {
		port, proto, hasProto := strings.Cut(e, "/")
		proto = strings.ToLower(proto)
		if !hasProto {
			proto = TCP
		}
		if proto != TCP && proto != UDP && proto != SCTP {
			return nil, errdefs.New(errdefs.ErrInvalid,
				fmt.Sprintf("invalid exposed port %q: unknown protocol %q", e, proto))
		}
		start, end, err := parseRange(port, false)
		if err != nil {
			return nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid exposed port %q: %v", e, err))
		}
		for p := int(start); p <= int(end); p++ {
			out = append(out, PortMapping{ContainerPort: uint16(p), Protocol: proto})
		}
	}
	return out, nil
}

// splitParts splits "ip:host:container" at its last two colons, so that an
// unbracketed IPv6 host address keeps its own colons.
func splitParts(s string) (ip, host, ctr string) {
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return "", "", s
	}
	ctr = s[i+1:]
	s = s[:i]
	j := strings.LastIndexByte(s, ':')
	if j < 0 {
		return "", s, ctr
	}
	return s[:j], s[j+1:], ctr
}

// parseRange parses "N" or "N-M". Port 0 is allowed only as a single host
// port (meaning "random").
func parseRange(s string, host bool) (uint16, uint16, error) {
	a, b, isRange := strings.Cut(s, "-")
	start, err := parsePort(a)
	if err != nil {
		return 0, 0, err
	}
	if !isRange {
		if start == 0 && !host {
			return 0, 0, fmt.Errorf("port 0")
		}
		return start, start, nil
	}
	end, err := parsePort(b)
	if err != nil {
		return 0, 0, err
	}
	if start == 0 {
		return 0, 0, fmt.Errorf("range %q starts at port 0", s)
	}
	if end < start {
		return 0, 0, fmt.Errorf("range %q ends before it starts", s)
	}
	return start, end, nil
}

func parsePort(s string) (uint16, error) {
	if s == "" {
		return 0, fmt.Errorf("empty port")
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%q is not a port number", s)
		}
	}
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil {
		return 0, fmt.Errorf("%q is not a port number (0-65535)", s)
	}
	return uint16(n), nil
}
