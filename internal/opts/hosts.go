package opts

import (
	"net/netip"
	"strings"
)

// HostGateway is the --add-host address that stands for the host's
// address as seen from the container.
const HostGateway = "host-gateway"

// ExtraHost is an /etc/hosts entry (docker --add-host).
type ExtraHost struct {
	Host string
	IP   string // an IPv4 or IPv6 address as given, or HostGateway
}

// ParseExtraHost parses docker's --add-host: host:ip or host=ip, where the
// address may be IPv6 (split at the first separator, optionally in
// brackets) or "host-gateway".
func ParseExtraHost(s string) (ExtraHost, error) {
	host, ip, ok := strings.Cut(s, "=")
	if !ok {
		host, ip, ok = strings.Cut(s, ":")
	}
	if !ok || host == "" || strings.ContainsAny(host, ": \t\n") {
		return ExtraHost{}, invalidf("bad format for add-host: %q (host:ip)", s)
	}
	if ip != HostGateway {
		if len(ip) > 2 && ip[0] == '[' && ip[len(ip)-1] == ']' {
			ip = ip[1 : len(ip)-1]
		}
		if _, err := netip.ParseAddr(ip); err != nil {
			return ExtraHost{}, invalidf("invalid IP address in add-host: %q", ip)
		}
	}
	return ExtraHost{Host: host, IP: ip}, nil
}
