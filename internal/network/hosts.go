package network

import (
	"bytes"
	"net/netip"
	"slices"
)

// HostsEntry is one line of /etc/hosts: an address and its names.
type HostsEntry struct {
	Addr  netip.Addr
	Names []string
}

// The fixed head of a container's /etc/hosts, as docker writes it.
const hostsHead = `127.0.0.1	localhost
::1	localhost ip6-localhost ip6-loopback
fe00::0	ip6-localnet
ff00::0	ip6-mcastprefix
ff02::1	ip6-allnodes
ff02::2	ip6-allrouters
`

// HostsFile returns the content of a container's /etc/hosts: docker's
// localhost and IPv6 lines, then the container's own address with its
// hostname and aliases (self; left out if self.Addr is invalid, as in
// mode none), then peers (other containers of user-defined networks, and
// --add-host entries), in order. Empty and duplicate names on a line are
// dropped, and so are entries left without names.
func HostsFile(self HostsEntry, peers []HostsEntry) []byte {
	var b bytes.Buffer
	b.WriteString(hostsHead)
	for _, e := range append([]HostsEntry{self}, peers...) {
		if !e.Addr.IsValid() {
			continue
		}
		var names []string
		for _, n := range e.Names {
			if n != "" && !slices.Contains(names, n) && validHostName(n) {
				names = append(names, n)
			}
		}
		if len(names) == 0 {
			continue
		}
		b.WriteString(e.Addr.String())
		for _, n := range names {
			b.WriteByte('\t')
			b.WriteString(n)
		}
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// validHostName rejects names that would break the line format.
func validHostName(n string) bool {
	for _, c := range n {
		if c <= ' ' || c == '#' || c == 0x7f {
			return false
		}
	}
	return true
}
