package berth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/berth-run/berth/internal/errdefs"
	"github.com/berth-run/berth/internal/store"
)

// Network drivers and the predefined networks, as docker names them.
const (
	NetworkDriverBridge = "bridge"
	NetworkDriverHost   = "host"
	NetworkDriverNull   = "null"

	// DefaultNetwork is the network containers join when their Spec
	// names none: a bridge with outbound NAT, created on first use.
	DefaultNetwork = "bridge"
)

// Network is a network of the store: the default "bridge", a user-defined
// bridge network, or one of the predefined "host" and "none". A Network is
// a handle on the record as it was read.
type Network struct {
	rt  *Runtime
	rec networkRecord
}

// networkRecord is what the store keeps about a network
// (<root>/networks/<name>.json). Records change under the store lock;
// the IPAM state of the network is in <root>/networks/<name>.ipam/.
type networkRecord struct {
	ID       string            `json:"id"`
	Name     string            `json:"name"`
	Driver   string            `json:"driver"`
	Subnet   netip.Prefix      `json:"subnet,omitzero"`
	Gateway  netip.Addr        `json:"gateway,omitzero"`
	Bridge   string            `json:"bridge,omitempty"` // the bridge link
	Internal bool              `json:"internal,omitempty"`
	Labels   map[string]string `json:"labels,omitempty"`
	Created  time.Time         `json:"created"`
}

// ID is the network's 64-hex-digit ID.
func (n *Network) ID() string { return n.rec.ID }

// Name is the network's name.
func (n *Network) Name() string { return n.rec.Name }

// Driver is "bridge", or "host" and "null" for the predefined networks.
func (n *Network) Driver() string { return n.rec.Driver }

// Subnet is the network's IPv4 subnet ("10.88.0.0/16"); "" for host and
// none.
func (n *Network) Subnet() string { return prefixString(n.rec.Subnet) }

// Gateway is the address of the host on the network ("10.88.0.1").
func (n *Network) Gateway() string { return addrString(n.rec.Gateway) }

// Internal reports whether the network is cut off from the outside.
func (n *Network) Internal() bool { return n.rec.Internal }

// Labels are the network's labels.
func (n *Network) Labels() map[string]string { return maps.Clone(n.rec.Labels) }

// Created is when the network was created.
func (n *Network) Created() time.Time { return n.rec.Created }

// BridgeName is the name of the network's bridge interface on the host
// ("berth0" for the default network of the default store); "" for host
// and none.
func (n *Network) BridgeName() string { return n.rec.Bridge }

// Predefined reports whether the network is one of "bridge", "host" and
// "none", which always exist and cannot be removed.
func (n *Network) Predefined() bool { return isPredefinedNetwork(n.rec.Name) }

func isPredefinedNetwork(name string) bool {
	return name == DefaultNetwork || name == "host" || name == "none"
}

// NetworkOption configures CreateNetwork.
type NetworkOption func(*networkOptions)

type networkOptions struct {
	driver, subnet, gateway string
	internal                bool
	labels                  map[string]string
}

// WithNetworkDriver sets the network's driver (docker network create -d).
// Only "bridge" is supported. Default: "bridge".
func WithNetworkDriver(name string) NetworkOption {
	return func(o *networkOptions) { o.driver = name }
}

// WithSubnet sets the network's subnet in CIDR form ("10.90.0.0/24").
// It may not overlap another network of the store or a route of the host.
// Default: the first free /16 from 10.88.0.0/16 up (then 172.16-31).
func WithSubnet(cidr string) NetworkOption { return func(o *networkOptions) { o.subnet = cidr } }

// WithGateway sets the host's address on the network; it must be in the
// subnet given with WithSubnet. Default: the subnet's first address.
func WithGateway(ip string) NetworkOption { return func(o *networkOptions) { o.gateway = ip } }

// WithInternal cuts the network off from the outside: no outbound NAT,
// no default route in its containers, no published ports reachable
// (docker network create --internal). Default: not internal.
func WithInternal() NetworkOption { return func(o *networkOptions) { o.internal = true } }

// WithNetworkLabels sets the network's labels. Default: none.
func WithNetworkLabels(labels map[string]string) NetworkOption {
	return func(o *networkOptions) { o.labels = maps.Clone(labels) }
}

// networkConfig is CreateNetwork's validated input.
type networkConfig struct {
	name     string
	subnet   netip.Prefix // invalid: choose one
	gateway  netip.Addr   // invalid: the subnet's first address
	internal bool
	labels   map[string]string
}

var validNetworkName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

func checkNetworkName(name string) error {
	if name == "" {
		return errdefs.New(errdefs.ErrInvalid, "network name is empty")
	}
	if len(name) > 128 || !validNetworkName.MatchString(name) {
		return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid network name %q, only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", name))
	}
	return nil
}

func makeNetworkConfig(name string, opts []NetworkOption) (networkConfig, error) {
	var o networkOptions
	for _, opt := range opts {
		opt(&o)
	}
	cfg := networkConfig{name: name, internal: o.internal, labels: o.labels}
	if err := checkNetworkName(name); err != nil {
		return cfg, err
	}
	switch o.driver {
	case "", NetworkDriverBridge:
	default:
		return cfg, errdefs.New(errdefs.ErrNotSupported, fmt.Sprintf("network %s: driver %q is not supported (only bridge)", name, o.driver))
	}
	if o.subnet != "" {
		p, err := netip.ParsePrefix(o.subnet)
		if err != nil {
			return cfg, errdefs.Wrap(errdefs.ErrInvalid, fmt.Sprintf("network %s: invalid subnet %q", name, o.subnet), err)
		}
		if p != p.Masked() {
			return cfg, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("network %s: subnet %s has host bits set (did you mean %s?)", name, p, p.Masked()))
		}
		if !p.Addr().Is4() {
			return cfg, errdefs.New(errdefs.ErrNotSupported, fmt.Sprintf("network %s: subnet %s: only IPv4 subnets are supported", name, p))
		}
		if p.Bits() > 30 {
			return cfg, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("network %s: subnet %s is too small", name, p))
		}
		cfg.subnet = p
	}
	if o.gateway != "" {
		if !cfg.subnet.IsValid() {
			return cfg, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("network %s: a gateway needs a subnet (--subnet)", name))
		}
		gw, err := netip.ParseAddr(o.gateway)
		if err != nil {
			return cfg, errdefs.Wrap(errdefs.ErrInvalid, fmt.Sprintf("network %s: invalid gateway %q", name, o.gateway), err)
		}
		gw = gw.Unmap()
		if !cfg.subnet.Contains(gw) || gw == cfg.subnet.Addr() || gw == lastAddrOf(cfg.subnet) {
			return cfg, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("network %s: gateway %s is not a host address of subnet %s", name, gw, cfg.subnet))
		}
		cfg.gateway = gw
	}
	return cfg, nil
}

// lastAddrOf is the broadcast address of an IPv4 prefix.
func lastAddrOf(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	for i := p.Bits(); i < 32; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	return netip.AddrFrom4(b)
}

// CreateNetwork creates a user-defined bridge network, as `docker network
// create`: its bridge, its NAT and isolation rules and its address pool.
// Containers join it with Spec.Network = name or Connect; on it they
// reach each other by container name and network alias. A name in use is
// ErrConflict, and so is a subnet overlapping another network's or a route
// of the host ("Pool overlaps with other one on this address space").
func (r *Runtime) CreateNetwork(ctx context.Context, name string, opts ...NetworkOption) (*Network, error) {
	cfg, err := makeNetworkConfig(name, opts)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rec, err := r.createNetwork(ctx, cfg)
	if err != nil {
		return nil, err
	}
	r.event(ctx, "network", "create", rec.ID, map[string]string{"name": rec.Name, "type": rec.Driver})
	return &Network{rt: r, rec: *rec}, nil
}

// Network looks a network up by name, full ID or unique ID prefix. The
// default network "bridge" is created if it does not exist yet.
func (r *Runtime) Network(ctx context.Context, nameOrID string) (*Network, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	switch nameOrID {
	case "":
		return nil, errdefs.New(errdefs.ErrInvalid, "network name or ID is empty")
	case "host", "none":
		return &Network{rt: r, rec: r.builtinNetwork(nameOrID)}, nil
	case DefaultNetwork:
		rec, err := r.defaultNetwork(ctx)
		if err != nil {
			return nil, err
		}
		return &Network{rt: r, rec: *rec}, nil
	}
	if rec, err := r.readNetwork(nameOrID); err == nil {
		return &Network{rt: r, rec: *rec}, nil
	} else if !errors.Is(err, errdefs.ErrNotFound) {
		return nil, err
	}
	all, err := r.allNetworks(ctx)
	if err != nil {
		return nil, err
	}
	var found []*Network
	for _, n := range all {
		if n.rec.ID == nameOrID {
			return n, nil
		}
		if strings.HasPrefix(n.rec.ID, nameOrID) {
			found = append(found, n)
		}
	}
	switch len(found) {
	case 0:
		return nil, errdefs.New(errdefs.ErrNotFound, fmt.Sprintf("network %s not found", nameOrID))
	case 1:
		return found[0], nil
	}
	return nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("network %s is ambiguous (%d matches found on name or ID prefix)", nameOrID, len(found)))
}

// Networks lists the store's networks, the predefined ones included,
// sorted by name, keeping those that match every filter, as `docker
// network ls --filter`: "name=SUBSTRING", "id=PREFIX", "driver=bridge",
// "label=KEY" or "label=KEY=VALUE", "scope=local", "type=custom|builtin",
// "dangling=true|false" (no container attached). Filters of one key match
// if any of them does. An unknown filter is ErrInvalid.
func (r *Runtime) Networks(ctx context.Context, filters ...string) ([]*Network, error) {
	f, err := parseNetworkFilters(filters)
	if err != nil {
		return nil, err
	}
	all, err := r.allNetworks(ctx)
	if err != nil {
		return nil, err
	}
	var members map[string][]*containerRecord
	if len(f["dangling"]) > 0 {
		members = r.networkMembers()
	}
	var out []*Network
	for _, n := range all {
		if matchNetwork(f, n, members) {
			out = append(out, n)
		}
	}
	return out, nil
}

// PruneNetworks removes the user-defined networks no running container is
// attached to, as `docker network prune`, and returns their names. The
// filters keep networks out: "until=TIME" (only those created before; a
// duration, Unix time or date), "label=KEY[=VALUE]", "label!=KEY[=VALUE]".
// A malformed filter is ErrInvalid and removes nothing.
func (r *Runtime) PruneNetworks(ctx context.Context, filters ...string) ([]string, error) {
	f, err := parseVolumeFilters(filters, "until", "label", "label!")
	if err != nil {
		return nil, err
	}
	var until []time.Time
	for _, v := range f["until"] {
		t, err := parseUntil(v, time.Now())
		if err != nil {
			return nil, err
		}
		until = append(until, t)
	}
	all, err := r.allNetworks(ctx)
	if err != nil {
		return nil, err
	}
	var removed []string
next:
	for _, n := range all {
		if n.Predefined() {
			continue
		}
		for _, t := range until {
			if !n.rec.Created.Before(t) {
				continue next
			}
		}
		for _, l := range f["label"] {
			if !hasLabel(n.rec.Labels, l) {
				continue next
			}
		}
		for _, l := range f["label!"] {
			if hasLabel(n.rec.Labels, l) {
				continue next
			}
		}
		err := n.Remove(ctx)
		switch {
		case err == nil:
			removed = append(removed, n.rec.Name)
		case errors.Is(err, errdefs.ErrConflict), errors.Is(err, errdefs.ErrNotFound):
			// In use, or removed meanwhile.
		default:
			return removed, err
		}
	}
	return removed, nil
}

// Remove removes a user-defined network: its bridge, rules and address
// pool. A network with running containers attached is ErrConflict; the
// predefined networks cannot be removed (ErrInvalid).
func (n *Network) Remove(ctx context.Context) error {
	if n.Predefined() {
		return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("%s is a pre-defined network and cannot be removed", n.rec.Name))
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := n.rt.removeNetwork(ctx, &n.rec); err != nil {
		return err
	}
	n.rt.event(ctx, "network", "destroy", n.rec.ID, map[string]string{"name": n.rec.Name, "type": n.rec.Driver})
	return nil
}

// NetworkInspect is a network's description in the shape of `docker
// network inspect`.
type NetworkInspect struct {
	Name       string
	ID         string `json:"Id"`
	Created    string
	Scope      string
	Driver     string
	EnableIPv6 bool
	IPAM       NetworkIPAM
	Internal   bool
	Attachable bool
	Ingress    bool
	ConfigOnly bool
	Containers map[string]NetworkContainer
	Options    map[string]string
	Labels     map[string]string
}

// NetworkIPAM is the IPAM section of NetworkInspect.
type NetworkIPAM struct {
	Driver  string
	Options map[string]string
	Config  []NetworkIPAMConfig
}

// NetworkIPAMConfig is one pool of NetworkIPAM.
type NetworkIPAMConfig struct {
	Subnet  string
	Gateway string
}

// NetworkContainer is a running container attached to a network, as
// NetworkInspect lists it.
type NetworkContainer struct {
	Name        string
	EndpointID  string
	MacAddress  string
	IPv4Address string
	IPv6Address string
}

// Inspect describes the network and the containers attached to it.
func (n *Network) Inspect(ctx context.Context) (*NetworkInspect, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rec := n.rec
	out := &NetworkInspect{Name: rec.Name, ID: rec.ID, Created: formatTime(rec.Created), Scope: "local", Driver: rec.Driver,
		IPAM: NetworkIPAM{Driver: "default", Config: []NetworkIPAMConfig{}}, Internal: rec.Internal,
		Attachable: !n.Predefined(), Containers: map[string]NetworkContainer{}, Options: map[string]string{},
		Labels: maps.Clone(rec.Labels)}
	if out.Labels == nil {
		out.Labels = map[string]string{}
	}
	if rec.Subnet.IsValid() {
		out.IPAM.Config = append(out.IPAM.Config, NetworkIPAMConfig{Subnet: rec.Subnet.String(), Gateway: addrString(rec.Gateway)})
	}
	if rec.Bridge != "" {
		out.Options["com.docker.network.bridge.name"] = rec.Bridge
	}
	for _, c := range n.rt.networkMembers()[rec.Name] {
		// A container whose owner died is settled (and released) first.
		if st, err := n.rt.reconcile(ctx, c.ID); err != nil || st.Status != StatusRunning && st.Status != StatusPaused {
			continue
		}
		ep := c.Network.Networks[rec.Name]
		out.Containers[c.ID] = NetworkContainer{Name: c.Name, EndpointID: ep.EndpointID, MacAddress: ep.MacAddress,
			IPv4Address: fmt.Sprintf("%s/%d", ep.IPAddress, ep.IPPrefixLen)}
	}
	return out, nil
}

// ConnectOption configures Container.Connect.
type ConnectOption func(*connectOptions)

type connectOptions struct {
	aliases []string
	ip      string
}

// WithNetworkAliases adds names by which the container's peers on the
// network reach it (docker network connect --alias). Default: none (the
// container's name and short ID always work).
func WithNetworkAliases(names ...string) ConnectOption {
	return func(o *connectOptions) { o.aliases = append(o.aliases, names...) }
}

// WithNetworkIP gives the container a fixed IPv4 address on the network
// (docker network connect --ip). Default: the next free address.
func WithNetworkIP(ip string) ConnectOption { return func(o *connectOptions) { o.ip = ip } }

// Connect attaches the container to a user-defined or the default bridge
// network, as `docker network connect`. A running container gets a new
// interface (eth1, eth2, ...) at once; a stopped one joins the network at
// its next start. Containers in the host's or another container's network
// namespace, or in mode none, cannot be connected (ErrInvalid); one
// already on the network is ErrConflict.
func (c *Container) Connect(ctx context.Context, network string, opts ...ConnectOption) error {
	var o connectOptions
	for _, opt := range opts {
		opt(&o)
	}
	for _, a := range o.aliases {
		if err := checkAlias(a); err != nil {
			return err
		}
	}
	if o.ip != "" {
		if _, err := parseIPv4(o.ip); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return c.connect(ctx, network, o)
}

// Disconnect detaches the container from a network, as `docker network
// disconnect`: a running container loses the interface and the ports
// published through it at once. force ignores failures to remove what
// is already gone. A container not on the network is ErrNotFound.
func (c *Container) Disconnect(ctx context.Context, network string, force bool) error {
	if network == "" {
		return errdefs.New(errdefs.ErrInvalid, "network name or ID is empty")
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return c.disconnect(ctx, network, force)
}

// validateNetworkSpec checks a Spec's network options at create, as
// docker does: an unknown network is ErrNotFound, options that do not
// fit the network mode are ErrInvalid.
func (r *Runtime) validateNetworkSpec(spec *Spec) error {
	mode := networkMode(spec)
	conflict := func(what string) error {
		return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("conflicting options: %s and the network mode", what))
	}
	var user *networkRecord
	switch {
	case mode == "host" || mode == "none" || mode == DefaultNetwork:
	case strings.HasPrefix(mode, "container:"):
		other := strings.TrimPrefix(mode, "container:")
		if other == "" {
			return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid network mode %q", spec.Network))
		}
		if _, err := r.resolveContainer(other); err != nil {
			return err
		}
		switch {
		case len(spec.Ports) > 0 || spec.PublishAll:
			return conflict("port publishing")
		case spec.Hostname != "":
			return conflict("hostname")
		case len(spec.DNS)+len(spec.DNSSearch)+len(spec.DNSOptions) > 0:
			return conflict("dns")
		case len(spec.ExtraHosts) > 0:
			return conflict("custom host-to-IP mapping")
		}
	default:
		rec, err := r.findNetworkRecord(mode)
		if err != nil {
			return err
		}
		user = rec
	}
	if spec.MacAddress != "" {
		if mode == "host" || strings.HasPrefix(mode, "container:") {
			return conflict("mac-address")
		}
		if _, err := parseMAC(spec.MacAddress); err != nil {
			return err
		}
	}
	if user == nil && len(spec.NetworkAliases) > 0 {
		return errdefs.New(errdefs.ErrInvalid, "network-scoped alias is supported only for containers in user defined networks")
	}
	for _, a := range spec.NetworkAliases {
		if err := checkAlias(a); err != nil {
			return err
		}
	}
	if spec.IPAddress != "" {
		if user == nil {
			return errdefs.New(errdefs.ErrInvalid, "user specified IP address is supported on user defined networks only")
		}
		ip, err := parseIPv4(spec.IPAddress)
		if err != nil {
			return err
		}
		if !user.Subnet.Contains(ip) || ip == user.Gateway || ip == user.Subnet.Addr() || ip == lastAddrOf(user.Subnet) {
			return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid address %s: it is not a free host address of network %s's subnet %s", ip, user.Name, user.Subnet))
		}
	}
	for _, p := range spec.Ports {
		if p.HostIP != "" {
			if _, err := netip.ParseAddr(strings.Trim(p.HostIP, "[]")); err != nil {
				return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid host address %q in port binding", p.HostIP))
			}
		}
		if p.HostPortEnd != 0 && (p.HostPort == 0 || p.HostPortEnd < p.HostPort) {
			return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid host port range %d-%d", p.HostPort, p.HostPortEnd))
		}
	}
	return nil
}

// findNetworkRecord finds a bridge network's record by name, full ID or
// unique ID prefix, creating nothing.
func (r *Runtime) findNetworkRecord(nameOrID string) (*networkRecord, error) {
	if rec, err := r.readNetwork(nameOrID); err == nil || !errors.Is(err, errdefs.ErrNotFound) {
		return rec, err
	}
	recs, err := r.networkRecords()
	if err != nil {
		return nil, err
	}
	var found []*networkRecord
	for _, rec := range recs {
		if rec.ID == nameOrID {
			return rec, nil
		}
		if strings.HasPrefix(rec.ID, nameOrID) {
			found = append(found, rec)
		}
	}
	if len(found) == 1 {
		return found[0], nil
	}
	return nil, errdefs.New(errdefs.ErrNotFound, fmt.Sprintf("network %s not found", nameOrID))
}

// ---- records

func (r *Runtime) networksDir() string { return r.store.Path("networks") }

func (r *Runtime) networkPath(name string) string {
	return filepath.Join(r.networksDir(), name+".json")
}

func (r *Runtime) ipamDir(name string) string { return filepath.Join(r.networksDir(), name+".ipam") }

func (r *Runtime) readNetwork(name string) (*networkRecord, error) {
	if checkNetworkName(name) != nil {
		return nil, errdefs.New(errdefs.ErrNotFound, fmt.Sprintf("network %s not found", name))
	}
	var rec networkRecord
	if err := store.ReadJSON(r.networkPath(name), &rec); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, errdefs.New(errdefs.ErrNotFound, fmt.Sprintf("network %s not found", name))
		}
		return nil, err
	}
	return &rec, nil
}

// networkRecords reads the records of the store's bridge networks.
func (r *Runtime) networkRecords() ([]*networkRecord, error) {
	ents, err := os.ReadDir(r.networksDir())
	if err != nil {
		return nil, err
	}
	var out []*networkRecord
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || e.IsDir() || strings.HasPrefix(name, ".") {
			continue
		}
		if rec, err := r.readNetwork(name); err == nil {
			out = append(out, rec)
		}
	}
	return out, nil
}

// allNetworks is every network of the store sorted by name, the
// predefined ones included (the default bridge is created if missing).
func (r *Runtime) allNetworks(ctx context.Context) ([]*Network, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if _, err := r.defaultNetwork(ctx); err != nil {
		return nil, err
	}
	recs, err := r.networkRecords()
	if err != nil {
		return nil, err
	}
	out := []*Network{
		{rt: r, rec: r.builtinNetwork("host")},
		{rt: r, rec: r.builtinNetwork("none")},
	}
	for _, rec := range recs {
		out = append(out, &Network{rt: r, rec: *rec})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].rec.Name < out[j].rec.Name })
	return out, nil
}

// builtinNetwork is the record of "host" or "none", which exist in every
// store without a file; their IDs are derived from the store's root.
func (r *Runtime) builtinNetwork(name string) networkRecord {
	driver := NetworkDriverHost
	if name == "none" {
		driver = NetworkDriverNull
	}
	h := sha256.Sum256([]byte("berth network " + name + " " + r.opts.root))
	var created time.Time
	if fi, err := os.Stat(r.networksDir()); err == nil {
		created = fi.ModTime().UTC()
	}
	return networkRecord{ID: hex.EncodeToString(h[:]), Name: name, Driver: driver, Created: created}
}

// storeHash is a short hash of the store's root, which names the store's
// host-global network objects when the root is not the default.
func (r *Runtime) storeHash() string {
	h := sha256.Sum256([]byte(r.opts.root))
	return hex.EncodeToString(h[:4])
}

// nftTableName is the store's nftables table: "berth" for the default
// root, "berth-<hash>" for others.
func (r *Runtime) nftTableName() string {
	if r.opts.root == DefaultRoot {
		return "berth"
	}
	return "berth-" + r.storeHash()
}

// defaultBridgeName is the link of the default network: "berth0" for the
// default root, "bb<hash>" for others.
func (r *Runtime) defaultBridgeName() string {
	if r.opts.root == DefaultRoot {
		return "berth0"
	}
	return "bb" + r.storeHash()
}

// networkMembers maps each network to the containers with an endpoint on
// it (those set up to run), read from the container records.
func (r *Runtime) networkMembers() map[string][]*containerRecord {
	out := map[string][]*containerRecord{}
	ids, err := r.store.ContainerIDs()
	if err != nil {
		return out
	}
	for _, id := range ids {
		rec, err := r.readRecord(id)
		if err != nil || rec.Network == nil {
			continue
		}
		for name, ep := range rec.Network.Networks {
			if ep != nil && ep.IPAddress != "" {
				out[name] = append(out[name], rec)
			}
		}
	}
	for _, m := range out {
		sort.Slice(m, func(i, j int) bool { return m[i].Created.Before(m[j].Created) })
	}
	return out
}

// ---- filters

// parseNetworkFilters parses docker network ls filters (the syntax and
// helpers of volume filters).
func parseNetworkFilters(filters []string) (volumeFilters, error) {
	f, err := parseVolumeFilters(filters, "name", "id", "driver", "label", "scope", "type", "dangling")
	if err != nil {
		return nil, err
	}
	for _, v := range f["type"] {
		if v != "custom" && v != "builtin" {
			return nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid filter: 'type'='%s'", v))
		}
	}
	return f, nil
}

// matchNetwork reports whether n passes the filters; members is needed
// for "dangling".
func matchNetwork(f volumeFilters, n *Network, members map[string][]*containerRecord) bool {
	rec := n.rec
	pass := func(key string, fn func(string) bool) bool { return len(f[key]) == 0 || anyMatch(f[key], fn) }
	for _, l := range f["label"] {
		if !hasLabel(rec.Labels, l) {
			return false
		}
	}
	return pass("name", func(v string) bool { return nameMatches(v, rec.Name) }) &&
		pass("id", func(v string) bool { return strings.HasPrefix(rec.ID, v) }) &&
		pass("driver", func(v string) bool { return v == rec.Driver }) &&
		pass("scope", func(v string) bool { return v == "local" }) &&
		pass("type", func(v string) bool { return (v == "builtin") == n.Predefined() }) &&
		pass("dangling", func(v string) bool { return (v == "true" || v == "1") == (len(members[rec.Name]) == 0) })
}

// ---- small helpers

func prefixString(p netip.Prefix) string {
	if !p.IsValid() {
		return ""
	}
	return p.String()
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

func parseIPv4(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Unmap().Is4() {
		return netip.Addr{}, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid IPv4 address: %s", s))
	}
	return a.Unmap(), nil
}

// parseMAC parses a --mac-address: a unicast 6-byte address.
func parseMAC(s string) (net.HardwareAddr, error) {
	mac, err := net.ParseMAC(s)
	if err != nil || len(mac) != 6 || mac[0]&1 != 0 {
		return nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid MAC address: %s", s))
	}
	return mac, nil
}

func checkAlias(a string) error {
	if a == "" || strings.ContainsAny(a, " \t\n#") || len(a) > 253 {
		return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid network alias %q", a))
	}
	return nil
}
