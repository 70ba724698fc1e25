package ipam

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/berth-run/berth/internal/errdefs"
)

// Candidates returns the subnets berth picks new networks from, in order:
// 10.88.0.0/16 up to 10.255.0.0/16, then 172.16.0.0/16 up to 172.31.0.0/16.
func Candidates() []netip.Prefix {
	var out []netip.Prefix
	for b := 88; b <= 255; b++ {
		out = append(out, netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(b), 0, 0}), 16))
	}
	for b := 16; b <= 31; b++ {
		out = append(out, netip.PrefixFrom(netip.AddrFrom4([4]byte{172, byte(b), 0, 0}), 16))
	}
	return out
}

// FreeSubnet returns the first candidate subnet that overlaps neither a
// subnet in used (the store's other networks) nor a prefix in host (the
// host's routes and addresses). Default routes must not be in host: they
// overlap everything.
func FreeSubnet(used, host []netip.Prefix) (netip.Prefix, error) {
next:
	for _, c := range Candidates() {
		for _, u := range used {
			if u.Overlaps(c) {
				continue next
			}
		}
		for _, h := range host {
			if h.Overlaps(c) {
				continue next
			}
		}
		return c, nil
	}
	return netip.Prefix{}, errdefs.New(errdefs.ErrConflict, "ipam: no free private subnet for a new network")
}

// ChooseSubnet is FreeSubnet with the host's prefixes read from the network
// namespace of the calling thread. The caller must hold the store lock from
// choosing until the new network's record is written, or two processes may
// choose the same subnet.
func ChooseSubnet(ctx context.Context, used []netip.Prefix) (netip.Prefix, error) {
	host, err := HostPrefixes(ctx)
	if err != nil {
		return netip.Prefix{}, err
	}
	return FreeSubnet(used, host)
}

// Gateway returns the conventional gateway of subnet: its first host address.
func Gateway(subnet netip.Prefix) (netip.Addr, error) {
	if err := checkSubnet(subnet); err != nil {
		return netip.Addr{}, err
	}
	return subnet.Addr().Next(), nil
}

// HostPrefixes returns the IPv4 destinations of all routes (every routing
// table, default routes left out) and the prefixes of all IPv4 addresses in
// the network namespace of the calling thread.
func HostPrefixes(ctx context.Context) ([]netip.Prefix, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p, err := hostPrefixes()
	if err != nil {
		return nil, fmt.Errorf("ipam: read host routes: %w", err)
	}
	return p, nil
}
