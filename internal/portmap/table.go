package portmap

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/berth-run/berth/internal/errdefs"
)

// Table is berth's nftables table of one store (family inet): the NAT and
// forwarding rules of its bridges and the published ports of its
// containers. Every process that opens the store uses the same table name;
// Publish serialises them with an flock on lockPath.
//
// Layout (chains hooked at the standard priorities; "@x" are sets and maps
// of the table):
//
//	set bridges  { type ifname }      every bridge of the store
//	set masq     { type ifname }      bridges with outbound NAT (not internal)
//	map fwd      { type ifname : verdict }   bridge -> jump br-<bridge>
//	map snat     { type ifname : verdict }   bridge -> jump nat-<bridge>
//	map hp4      { type ipv4_addr . inet_proto . inet_service : verdict }
//	map hp6      { type ipv6_addr . inet_proto . inet_service : verdict }
//	map hpany    { type nf_proto . inet_proto . inet_service : verdict }
//	    published ports: (host address | any address of a family, protocol,
//	    port) -> goto ctr-<container>
//
//	chain prerouting  { nat, prerouting, dstnat:  fib daddr type local jump hostports }
//	chain output      { nat, output, -100:        fib daddr type local jump hostports }
//	chain hostports   { ip daddr . meta l4proto . th dport vmap @hp4
//	                    ip6 daddr . meta l4proto . th dport vmap @hp6
//	                    meta nfproto . meta l4proto . th dport vmap @hpany }
//	chain ctr-<id>    { one rule per published port, commented with its owner:
//	                    meta nfproto ipv4 meta l4proto tcp th dport 8080 [ip daddr H]
//	                    dnat ip to 10.88.0.2:80 }
//	chain postrouting { nat, postrouting, srcnat:
//	                    oifname vmap @snat
//	                    iifname @masq oifname != @bridges masquerade }    (outbound)
//	chain nat-<bridge> { ip saddr 127.0.0.0/8 masquerade               (127.0.0.1:port -> container)
//	                    ct status dnat ip saddr <subnet> masquerade }  (hairpin)
//	chain forward     { filter, forward, filter:
//	                    ct state established,related accept
//	                    iifname vmap @fwd
//	                    ct status dnat oifname @masq accept
//	                    oifname @bridges drop }
//	chain br-<bridge> { oifname <bridge> accept
//	                    ct status dnat accept; oifname @bridges drop; accept   (or just: drop, if internal) }
//
// So: containers on one bridge reach each other, different bridges are
// isolated, published ports are reachable from anywhere (and from other
// bridges through the host's address), nothing else reaches into a bridge
// from outside, and internal bridges reach nothing outside themselves.
// Removing a container deletes its map elements and its chain in one
// transaction, found by name: no scan of other containers' rules.
type Table struct {
	name     string
	lockPath string
}

// NewTable returns the table called name (letters, digits, '-' and '_';
// for example "berth", or "berth-<hash>" for a non-default store). lockPath
// is the flock file that serialises port allocation between processes.
// Nothing is created until EnsureBridge or Publish.
func NewTable(name, lockPath string) (*Table, error) {
	if !validName(name, 64) {
		return nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("nft table name %q: want 1-64 letters, digits, '-' or '_'", name))
	}
	if lockPath == "" {
		return nil, errdefs.New(errdefs.ErrInvalid, "nft table: empty lock path")
	}
	return &Table{name: name, lockPath: lockPath}, nil
}

// Name returns the nftables table name.
func (t *Table) Name() string { return t.name }

// Binding is a published port: a resolved mapping (HostPort chosen,
// HostPortEnd 0, HostIP as requested) and where it leads.
type Binding struct {
	PortMapping
	ContainerID string
	Bridge      string
	ContainerIP netip.Addr
}

// EnsureBridge adds the table's base chains if missing and the forwarding
// and NAT rules of bridge, whose subnet is subnet (see Table). It is
// idempotent and safe to run from several processes at once: each call
// replaces the base rules and the bridge's rules in one atomic transaction.
func (t *Table) EnsureBridge(ctx context.Context, bridge string, subnet netip.Prefix, internal bool) error {
	if err := checkBridge(bridge); err != nil {
		return err
	}
	if !subnet.IsValid() {
		return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("bridge %s: invalid subnet", bridge))
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return t.ensureBridge(bridge, subnet.Masked(), internal)
}

// RemoveBridge deletes bridge's rules and set elements. Removing a bridge
// the table does not know is not an error.
func (t *Table) RemoveBridge(ctx context.Context, bridge string) error {
	if err := checkBridge(bridge); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return t.removeBridge(bridge)
}

// Publish publishes ports of the container containerID, reachable at
// containerIP on bridge, and returns the mappings with their host ports
// resolved. Host port 0 takes a free port of the ephemeral range
// (/proc/sys/net/ipv4/ip_local_port_range, reserved ports skipped); a host
// range takes its first free port. A port is free if no other berth
// mapping of this table overlaps it and a trial bind on the host address
// succeeds. A requested port that is taken is an ErrConflict error naming
// the holder; a host address that is not local is ErrInvalid. All ports
// are added in one transaction, or none.
//
// Publish runs in the network namespace of the calling thread (the trial
// binds and the nftables socket both use it).
func (t *Table) Publish(ctx context.Context, containerID, bridge string, containerIP netip.Addr, ports []PortMapping) ([]PortMapping, error) {
	if err := checkID(containerID); err != nil {
		return nil, err
	}
	if err := checkBridge(bridge); err != nil {
		return nil, err
	}
	containerIP = containerIP.Unmap()
	if !containerIP.IsValid() || containerIP.Zone() != "" {
		return nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("publish ports of %s: invalid container address", containerID))
	}
	for _, m := range ports {
		if err := checkMapping(m, containerIP); err != nil {
			return nil, err
		}
	}
	if len(ports) == 0 {
		return nil, nil
	}
	return t.publish(ctx, containerID, bridge, containerIP, ports)
}

// Unpublish removes the ports containerID published through bridge, or all
// its ports if bridge is "". It is idempotent.
func (t *Table) Unpublish(ctx context.Context, containerID, bridge string) error {
	if err := checkID(containerID); err != nil {
		return err
	}
	if bridge != "" {
		if err := checkBridge(bridge); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return t.unpublish(containerID, bridge)
}

// Ports returns the bindings containerID has published.
func (t *Table) Ports(ctx context.Context, containerID string) ([]Binding, error) {
	if err := checkID(containerID); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return t.ports(containerID)
}

// InUse returns every published port of the table as (host address,
// protocol, port, owner), read from the dispatch maps. HostIP is 0.0.0.0 or
// :: for mappings on all addresses.
func (t *Table) InUse(ctx context.Context) ([]Binding, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	keys, err := t.inUse()
	if err != nil {
		return nil, err
	}
	out := make([]Binding, 0, len(keys))
	for _, k := range keys {
		out = append(out, Binding{
			PortMapping: PortMapping{HostIP: k.addr(), HostPort: k.port, Protocol: k.proto},
			ContainerID: k.owner,
		})
	}
	return out, nil
}

// Delete removes the whole table, with every rule of every container.
// Deleting a missing table is not an error.
func (t *Table) Delete(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return t.delete()
}

// ContainerChain is the name of the chain holding containerID's DNAT rules.
func ContainerChain(containerID string) string { return "ctr-" + containerID }

// BridgeChain is the name of the forward chain of bridge.
func BridgeChain(bridge string) string { return "br-" + bridge }

func validName(s string, max int) bool {
	if s == "" || len(s) > max {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

func checkID(id string) error {
	if !validName(id, 128) {
		return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("container id %q: want 1-128 letters, digits, '-', '_' or '.'", id))
	}
	return nil
}

// checkBridge accepts Linux interface names (at most 15 bytes) made of
// letters, digits, '-', '_' and '.'.
func checkBridge(name string) error {
	if !validName(name, 15) {
		return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("bridge name %q: want 1-15 letters, digits, '-', '_' or '.'", name))
	}
	return nil
}

func checkMapping(m PortMapping, containerIP netip.Addr) error {
	switch {
	case m.ContainerPort == 0:
		return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("port mapping %s: container port 0", m))
	case m.Protocol != TCP && m.Protocol != UDP && m.Protocol != SCTP:
		return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("port mapping %s: unknown protocol %q", m, m.Protocol))
	case m.HostPortEnd != 0 && (m.HostPort == 0 || m.HostPortEnd < m.HostPort):
		return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("port mapping %s: bad host port range", m))
	case m.HostIP.IsValid() && m.HostIP.Zone() != "":
		return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("port mapping %s: host address with a zone", m))
	case m.HostIP.IsValid() && m.HostIP.Unmap().Is4() != containerIP.Is4():
		// NAT cannot translate between families; docker covers this
		// case with its userland proxy, which berth does not have.
		return errdefs.New(errdefs.ErrNotSupported, fmt.Sprintf(
			"port mapping %s: host address and container address %s are of different IP families", m, containerIP))
	}
	return nil
}

// portKey identifies a published port in the dispatch maps: the host
// address (or all addresses of a family), protocol and port.
type portKey struct {
	v6    bool
	any   bool       // all addresses of the family
	ip    netip.Addr // when !any
	proto string
	port  uint16
	owner string // container ID (from the element's comment), when read back
}

func keyFor(hostIP, containerIP netip.Addr, proto string, port uint16) portKey {
	hostIP = hostIP.Unmap()
	k := portKey{v6: containerIP.Is6(), proto: proto, port: port}
	if !hostIP.IsValid() || hostIP.IsUnspecified() {
		k.any = true
	} else {
		k.ip = hostIP
	}
	return k
}

// addr is the key's host address, 0.0.0.0 or :: for all addresses.
func (k portKey) addr() netip.Addr {
	switch {
	case !k.any:
		return k.ip
	case k.v6:
		return netip.IPv6Unspecified()
	default:
		return netip.IPv4Unspecified()
	}
}

// overlaps reports whether two keys would catch the same packets.
func (k portKey) overlaps(o portKey) bool {
	return k.proto == o.proto && k.port == o.port && k.v6 == o.v6 && (k.any || o.any || k.ip == o.ip)
}

func (k portKey) String() string {
	ip := k.addr().String()
	if k.v6 {
		ip = "[" + ip + "]"
	}
	return fmt.Sprintf("%s:%d/%s", ip, k.port, k.proto)
}

// ruleComment is the comment of a container's DNAT rule. It carries all a
// removal needs to delete the rule's map element, so removal reads only the
// container's own chain.
func ruleComment(b Binding) string {
	hip := "any"
	if b.HostIP.IsValid() {
		hip = b.HostIP.String()
	}
	return fmt.Sprintf("berth id=%s net=%s proto=%s hip=%s hport=%d cip=%s cport=%d",
		b.ContainerID, b.Bridge, b.Protocol, hip, b.HostPort, b.ContainerIP, b.ContainerPort)
}

func parseRuleComment(s string) (Binding, error) {
	f := strings.Fields(s)
	if len(f) == 0 || f[0] != "berth" {
		return Binding{}, fmt.Errorf("not a berth rule comment: %q", s)
	}
	kv := map[string]string{}
	for _, x := range f[1:] {
		k, v, ok := strings.Cut(x, "=")
		if !ok {
			return Binding{}, fmt.Errorf("bad rule comment %q", s)
		}
		kv[k] = v
	}
	var b Binding
	var err error
	b.ContainerID, b.Bridge, b.Protocol = kv["id"], kv["net"], kv["proto"]
	if h := kv["hip"]; h != "any" {
		if b.HostIP, err = netip.ParseAddr(h); err != nil {
			return Binding{}, fmt.Errorf("bad rule comment %q: %w", s, err)
		}
	}
	if b.ContainerIP, err = netip.ParseAddr(kv["cip"]); err != nil {
		return Binding{}, fmt.Errorf("bad rule comment %q: %w", s, err)
	}
	hp, err1 := strconv.ParseUint(kv["hport"], 10, 16)
	cp, err2 := strconv.ParseUint(kv["cport"], 10, 16)
	if err1 != nil || err2 != nil || b.ContainerID == "" || b.Protocol == "" {
		return Binding{}, fmt.Errorf("bad rule comment %q", s)
	}
	b.HostPort, b.ContainerPort = uint16(hp), uint16(cp)
	return b, nil
}
