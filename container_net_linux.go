package berth

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/berth-run/berth/internal/errdefs"
	"github.com/berth-run/berth/internal/ipam"
	"github.com/berth-run/berth/internal/network"
	"github.com/berth-run/berth/internal/oci"
	"github.com/berth-run/berth/internal/opts"
	"github.com/berth-run/berth/internal/portmap"
)

// netSetup is what network setup hands to the runtime.
type netSetup struct {
	// preStart runs once the init's namespaces exist, before the
	// container's process is set up (nil: nothing to do).
	preStart func(ctx context.Context, pid int) error

	// The bridge networks are attached while the init starts: done is
	// closed when that is over, with err and settings set.
	done     chan struct{}
	err      error
	settings *NetworkSettings
	c        *Container
}

// wait waits for the network setup to finish and returns its error. It
// must be called before the container is torn down or its record used.
func (ns *netSetup) wait() error {
	if ns == nil || ns.done == nil {
		return nil
	}
	<-ns.done
	if ns.err == nil && ns.settings != nil {
		ns.c.rec.Network = ns.settings
	}
	return ns.err
}

// netnsPath is where a container's network namespace is bind-mounted.
func (r *Runtime) netnsPath(id string) string { return r.store.RunPath("netns", id) }

// setupNetwork prepares the container's network namespace and its
// /etc/hostname, /etc/hosts and /etc/resolv.conf, and fills cfg's network
// fields. On error nothing it set up is left.
func (r *Runtime) setupNetwork(ctx context.Context, c *Container, cfg *oci.Config) (*netSetup, error) {
	spec := &c.rec.Spec
	dir := r.containerDir(c.rec.ID)
	mode := networkMode(spec)
	ns := &netSetup{}
	switch {
	case mode == "none":
		cfg.NetNS = ""
		ns.preStart = loopbackUp
	case mode == "host":
		cfg.NetNS = "host"
	case strings.HasPrefix(mode, "container:"):
		other, err := r.Container(ctx, strings.TrimPrefix(mode, "container:"))
		if err != nil {
			return nil, err
		}
		st, err := r.reconcile(ctx, other.rec.ID)
		if err != nil {
			return nil, err
		}
		if st.Status != StatusRunning && st.Status != StatusPaused {
			return nil, errdefs.New(errdefs.ErrNotRunning, fmt.Sprintf("cannot join network of a non running container: %s", other.rec.Name))
		}
		cfg.NetNS = fmt.Sprintf("/proc/%d/ns/net", st.Init.PID)
		cfg.NetNSShared = true
		// Share the other container's name files, as docker does.
		od := r.containerDir(other.rec.ID)
		cfg.HostsPath = filepath.Join(od, "hosts")
		cfg.ResolvConfPath = filepath.Join(od, "resolv.conf")
		cfg.HostnamePath = filepath.Join(od, "hostname")
		return ns, nil
	default:
		return r.setupBridgeNetworks(ctx, c, cfg)
	}
	hostname := spec.Hostname
	if hostname == "" {
		if mode == "host" {
			hostname, _ = os.Hostname()
		} else {
			hostname = c.rec.ID[:12]
		}
	}
	if err := r.writeNameFiles(ctx, dir, hostname, spec, mode == "host", network.HostsEntry{}, nil); err != nil {
		return nil, err
	}
	setNameFiles(cfg, dir, hostname, mode == "host")
	return ns, nil
}

// endpointPlan is a network a container is to be attached to at start.
type endpointPlan struct {
	net     *networkRecord
	aliases []string
	ip      netip.Addr // a requested address, or invalid
	mac     net.HardwareAddr
}

// plannedEndpoints lists the networks a container joins when it starts:
// its Spec's network, or, once it has a record of networks (after a start
// or Connect), those, its Spec's first.
func (r *Runtime) plannedEndpoints(ctx context.Context, rec *containerRecord) ([]endpointPlan, error) {
	spec := &rec.Spec
	primary, err := r.lookupNetwork(ctx, networkMode(spec))
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", rec.Name, err)
	}
	var mac net.HardwareAddr
	if spec.MacAddress != "" {
		if mac, err = parseMAC(spec.MacAddress); err != nil {
			return nil, err
		}
	}
	if rec.Network == nil || len(rec.Network.Networks) == 0 {
		p := endpointPlan{net: primary, aliases: spec.NetworkAliases, mac: mac}
		if spec.IPAddress != "" {
			if p.ip, err = parseIPv4(spec.IPAddress); err != nil {
				return nil, err
			}
		}
		return []endpointPlan{p}, nil
	}
	names := make([]string, 0, len(rec.Network.Networks))
	for name := range rec.Network.Networks {
		names = append(names, name)
	}
	sort.Slice(names, func(i, j int) bool {
		if (names[i] == primary.Name) != (names[j] == primary.Name) {
			return names[i] == primary.Name
		}
		return names[i] < names[j]
	})
	var out []endpointPlan
	for _, name := range names {
		ep := rec.Network.Networks[name]
		nrec := primary
		if name != primary.Name {
			if nrec, err = r.lookupNetwork(ctx, name); err != nil {
				return nil, fmt.Errorf("container %s: %w", rec.Name, err)
			}
		}
		p := endpointPlan{net: nrec, aliases: ep.Aliases}
		if ep.IPAMAddress != "" {
			if p.ip, err = parseIPv4(ep.IPAMAddress); err != nil {
				return nil, err
			}
		}
		if name == primary.Name {
			p.mac = mac
		}
		out = append(out, p)
	}
	return out, nil
}

// setupBridgeNetworks gives a container a network namespace of its own
// and attaches it to its bridge networks, publishes its ports, records the
// endpoints and writes its name files. The namespace is made at once (the
// init is born in it); the rest runs while the init starts, and the
// runtime's PreStart waits for it.
func (r *Runtime) setupBridgeNetworks(ctx context.Context, c *Container, cfg *oci.Config) (*netSetup, error) {
	id := c.rec.ID
	spec := &c.rec.Spec
	plans, err := r.plannedEndpoints(ctx, c.rec)
	if err != nil {
		return nil, err
	}
	ports, err := portsToPublish(spec, cfg.Image.ExposedPorts)
	if err != nil {
		return nil, err
	}
	if _, err := r.extraHosts(ctx, spec); err != nil {
		return nil, err
	}
	nsPath := r.netnsPath(id)
	if err := network.NewNetns(ctx, nsPath); err != nil {
		return nil, err
	}
	cfg.NetNS = nsPath
	hostname := spec.Hostname
	if hostname == "" {
		hostname = id[:12]
	}
	dir := r.containerDir(id)
	setNameFiles(cfg, dir, hostname, false)
	ns := &netSetup{done: make(chan struct{}), c: c}
	ns.preStart = func(context.Context, int) error { return ns.wait() }
	rec := *c.rec // a copy: the goroutine does not share c.rec
	go func() {
		defer close(ns.done)
		ns.settings, ns.err = r.attachNetworks(ctx, &rec, plans, ports, hostname)
	}()
	return ns, nil
}

// attachNetworks is the part of setupBridgeNetworks that runs while the
// init starts. On error nothing it set up is left (the namespace
// included).
func (r *Runtime) attachNetworks(ctx context.Context, rec *containerRecord, plans []endpointPlan, ports []portmap.PortMapping, hostname string) (_ *NetworkSettings, err error) {
	id := rec.ID
	var names []string
	for _, p := range plans {
		names = append(names, p.net.Name)
	}
	unlock, err := r.lockNetworks(names)
	if err != nil {
		return nil, err
	}
	defer unlock()
	m, err := r.netManager()
	if err != nil {
		return nil, err
	}
	nsPath := r.netnsPath(id)
	defer func() {
		if err != nil {
			r.releaseEndpointsLocked(context.WithoutCancel(ctx), rec, m, names, true)
		}
	}()
	settings := &NetworkSettings{Mode: networkMode(&rec.Spec), NetNS: nsPath, Networks: map[string]*EndpointConfig{}}
	for i, p := range plans {
		ep, err := r.attachEndpoint(ctx, m, id, nsPath, p, ports, i == 0)
		if err != nil {
			return nil, err
		}
		settings.Networks[p.net.Name] = endpointConfig(p, ep)
		if i == 0 {
			settings.Ports = portBindings(ep.Ports)
		}
	}
	if err := r.recordNetwork(id, func(cur *containerRecord) { cur.Network = settings }); err != nil {
		return nil, err
	}
	rec.Network = settings

	// Only user-defined networks resolve names: no need to read the
	// other containers' records for the default bridge.
	members := map[string][]*containerRecord{}
	if hasUserNetwork(names) {
		members = r.networkMembers()
	}
	self, peers := hostsEntries(rec, members)
	if err := r.writeNameFiles(ctx, r.containerDir(id), hostname, &rec.Spec, false, self, peers); err != nil {
		return nil, err
	}
	r.rewriteHosts(ctx, peersOf(rec, names, members), members)
	return settings, nil
}

// attachEndpoint gives the container an address on one network and
// connects it; with ports, they are published through that network.
func (r *Runtime) attachEndpoint(ctx context.Context, m *network.Manager, id, nsPath string, p endpointPlan, ports []portmap.PortMapping, withPorts bool) (*network.Endpoint, error) {
	if err := r.ensureBridge(ctx, m, p.net); err != nil {
		return nil, fmt.Errorf("network %s: %w", p.net.Name, err)
	}
	pool, err := ipam.Open(r.ipamDir(p.net.Name), p.net.Subnet, p.net.Gateway)
	if err != nil {
		return nil, err
	}
	var addr netip.Prefix
	if p.ip.IsValid() {
		addr, err = pool.Reserve(ctx, id, p.ip)
	} else {
		addr, err = pool.Allocate(ctx, id)
	}
	if err != nil {
		return nil, fmt.Errorf("network %s: %w", p.net.Name, err)
	}
	req := network.AttachRequest{ContainerID: id, NetnsPath: nsPath, Bridge: p.net.Bridge, Address: addr, MAC: p.mac}
	if !p.net.Internal {
		req.Gateway = p.net.Gateway
	}
	if withPorts {
		req.Ports = ports
	}
	ep, err := m.Attach(ctx, req)
	if err != nil {
		_ = pool.Release(context.WithoutCancel(ctx), id)
		return nil, fmt.Errorf("network %s: %w", p.net.Name, err)
	}
	return ep, nil
}

func endpointConfig(p endpointPlan, ep *network.Endpoint) *EndpointConfig {
	e := &EndpointConfig{NetworkID: p.net.ID, EndpointID: newID(), IPAddress: ep.Address.Addr().String(),
		IPPrefixLen: ep.Address.Bits(), MacAddress: ep.MAC.String(), Aliases: p.aliases, Interface: ep.IfName}
	if !p.net.Internal {
		e.Gateway = p.net.Gateway.String()
	}
	if p.ip.IsValid() {
		e.IPAMAddress = p.ip.String()
	}
	return e
}

// portsToPublish is the Spec's -p mappings, and with -P a random host
// port for every port the image exposes that -p does not map.
func portsToPublish(spec *Spec, exposed map[string]struct{}) ([]portmap.PortMapping, error) {
	var out []portmap.PortMapping
	mapped := map[string]bool{}
	for _, p := range spec.Ports {
		m := portmap.PortMapping{HostPort: p.HostPort, HostPortEnd: p.HostPortEnd, ContainerPort: p.ContainerPort, Protocol: protoOr(p.Protocol)}
		if p.HostIP != "" {
			ip, err := netip.ParseAddr(strings.Trim(p.HostIP, "[]"))
			if err != nil {
				return nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid host address %q in port binding", p.HostIP))
			}
			m.HostIP = ip.Unmap()
		}
		out = append(out, m)
		mapped[fmt.Sprintf("%d/%s", m.ContainerPort, m.Protocol)] = true
	}
	if !spec.PublishAll {
		return out, nil
	}
	keys := make([]string, 0, len(exposed))
	for k := range exposed {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	all, err := portmap.PublishAll(keys)
	if err != nil {
		return nil, err
	}
	for _, m := range all {
		if !mapped[fmt.Sprintf("%d/%s", m.ContainerPort, m.Protocol)] {
			out = append(out, m)
		}
	}
	return out, nil
}

// portBindings is the record's form of published ports, host ports
// resolved; "0.0.0.0" stands for all addresses.
func portBindings(pms []portmap.PortMapping) []PortBinding {
	out := make([]PortBinding, 0, len(pms))
	for _, m := range pms {
		b := PortBinding{HostIP: "0.0.0.0", HostPort: m.HostPort, ContainerPort: m.ContainerPort, Protocol: m.Protocol}
		if m.HostIP.IsValid() {
			b.HostIP = m.HostIP.String()
		}
		out = append(out, b)
	}
	return out
}

// recordNetwork changes the container record's network settings under
// the store lock.
func (r *Runtime) recordNetwork(id string, fn func(*containerRecord)) error {
	unlock, err := r.store.Lock()
	if err != nil {
		return err
	}
	defer unlock()
	rec, err := r.readRecord(id)
	if err != nil {
		return err
	}
	fn(rec)
	return r.writeRecord(rec)
}

// teardownNetwork releases what setupNetwork made: the endpoints (veths,
// published ports, the namespace mount), the addresses, and the
// container's entries in its peers' /etc/hosts. Idempotent, and complete
// even after a crash: when it returns nothing of the container's
// networking is left. The caller holds the container lock, not the store
// lock.
func (r *Runtime) teardownNetwork(ctx context.Context, c *Container) {
	rec, err := r.readRecord(c.rec.ID)
	if err != nil {
		rec = c.rec
	}
	var names []string
	if rec.Network != nil {
		for name, ep := range rec.Network.Networks {
			if ep != nil && ep.IPAddress != "" {
				names = append(names, name)
			}
		}
	}
	if len(names) == 0 {
		if _, err := os.Lstat(r.netnsPath(rec.ID)); errors.Is(err, fs.ErrNotExist) {
			return // never set up, or released already
		}
	}
	m, err := r.netManager()
	if err != nil {
		return
	}
	unlock, err := r.lockNetworks(names)
	if err != nil {
		return
	}
	defer unlock()
	r.releaseEndpointsLocked(context.WithoutCancel(ctx), rec, m, names, false)
}

// releaseEndpointsLocked is teardownNetwork with the locks of the user
// networks in names held.
//
// With keepNetns (a failed start, whose init may be joining the namespace
// right now) the endpoints on the networks named are detached one by one
// and the namespace stays for the start's undo to release.
func (r *Runtime) releaseEndpointsLocked(ctx context.Context, rec *containerRecord, m *network.Manager, names []string, keepNetns bool) {
	id := rec.ID
	if keepNetns {
		for _, name := range names {
			if n, err := r.lookupNetwork(ctx, name); err == nil {
				_ = m.Detach(ctx, id, n.Bridge)
			}
		}
	} else {
		_ = m.Release(ctx, id, r.netnsPath(id))
	}
	// Every pool of the store: a crash between allocating and recording
	// leaves a lease the record does not know.
	if recs, err := r.networkRecords(); err == nil {
		for _, n := range recs {
			if pool, err := ipam.Open(r.ipamDir(n.Name), n.Subnet, n.Gateway); err == nil {
				_ = pool.Release(ctx, id)
			}
		}
	}
	_ = r.recordNetwork(id, func(cur *containerRecord) {
		if cur.Network == nil {
			return
		}
		cur.Network.NetNS, cur.Network.Ports = "", nil
		for _, ep := range cur.Network.Networks {
			if ep != nil {
				*ep = EndpointConfig{NetworkID: ep.NetworkID, Aliases: ep.Aliases, IPAMAddress: ep.IPAMAddress}
			}
		}
	})
	if hasUserNetwork(names) {
		members := r.networkMembers()
		r.rewriteHosts(ctx, peersOf(rec, names, members), members)
	}
}

func hasUserNetwork(names []string) bool {
	for _, n := range names {
		if !isPredefinedNetwork(n) {
			return true
		}
	}
	return false
}

// hostsEntries are a container's own lines of /etc/hosts (its addresses
// with its hostname, and on user-defined networks its name and aliases)
// and its peers' (the other members of its user-defined networks, by
// name, aliases and short ID). members are the networks' members.
func hostsEntries(rec *containerRecord, members map[string][]*containerRecord) (network.HostsEntry, []network.HostsEntry) {
	var self network.HostsEntry
	var peers, selves []network.HostsEntry
	if rec.Network == nil {
		return self, nil
	}
	hostname := rec.Spec.Hostname
	if hostname == "" {
		hostname = rec.ID[:12]
	}
	for _, name := range endpointNames(rec) {
		ep := rec.Network.Networks[name]
		addr, err := netip.ParseAddr(ep.IPAddress)
		if err != nil {
			continue
		}
		e := network.HostsEntry{Addr: addr, Names: []string{hostname}}
		if !isPredefinedNetwork(name) {
			e.Names = append(e.Names, rec.Name)
			e.Names = append(e.Names, ep.Aliases...)
		}
		selves = append(selves, e)
		if isPredefinedNetwork(name) {
			continue // docker's default bridge has no name resolution
		}
		for _, p := range members[name] {
			pep := p.Network.Networks[name]
			if p.ID == rec.ID || pep == nil {
				continue
			}
			if a, err := netip.ParseAddr(pep.IPAddress); err == nil {
				names := append([]string{p.Name}, pep.Aliases...)
				peers = append(peers, network.HostsEntry{Addr: a, Names: append(names, p.ID[:12])})
			}
		}
	}
	if len(selves) > 0 {
		self = selves[0]
		peers = append(selves[1:], peers...)
	}
	return self, peers
}

// endpointNames lists the networks a container has an address on, its
// primary network first.
func endpointNames(rec *containerRecord) []string {
	var names []string
	for name, ep := range rec.Network.Networks {
		if ep != nil && ep.IPAddress != "" {
			names = append(names, name)
		}
	}
	primary := networkMode(&rec.Spec)
	sort.Slice(names, func(i, j int) bool {
		if (names[i] == primary) != (names[j] == primary) {
			return names[i] == primary
		}
		return names[i] < names[j]
	})
	return names
}

// peersOf lists the members of the user-defined networks among nets,
// rec left out.
func peersOf(rec *containerRecord, nets []string, members map[string][]*containerRecord) []*containerRecord {
	seen := map[string]bool{rec.ID: true}
	var out []*containerRecord
	for _, name := range nets {
		if isPredefinedNetwork(name) {
			continue
		}
		for _, p := range members[name] {
			if !seen[p.ID] {
				seen[p.ID] = true
				out = append(out, p)
			}
		}
	}
	return out
}

// rewriteHosts rewrites the /etc/hosts of containers from the networks'
// members, in place: the files are bind-mounted into running containers,
// so a rename would not reach them. The caller holds the locks of the
// networks whose membership changed.
func (r *Runtime) rewriteHosts(ctx context.Context, recs []*containerRecord, members map[string][]*containerRecord) {
	for _, p := range recs {
		self, peers := hostsEntries(p, members)
		b, err := r.hostsContent(ctx, &p.Spec, self, peers)
		if err == nil {
			_ = rewriteInPlace(filepath.Join(r.containerDir(p.ID), "hosts"), b)
		}
	}
}

// rewriteInPlace replaces the content of an existing file without
// replacing the file: the new content is written over the old, then the
// file is cut to its length (a reader never sees it empty).
func rewriteInPlace(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.WriteAt(b, 0); err != nil {
		return err
	}
	return f.Truncate(int64(len(b)))
}

// hostsContent is a container's /etc/hosts: docker's head, its own
// entry, its peers and its --add-host lines.
func (r *Runtime) hostsContent(ctx context.Context, spec *Spec, self network.HostsEntry, peers []network.HostsEntry) ([]byte, error) {
	extra, err := r.extraHosts(ctx, spec)
	if err != nil {
		return nil, err
	}
	return network.HostsFile(self, append(peers, extra...)), nil
}

// extraHosts parses the Spec's --add-host entries; "host-gateway" is the
// default network's gateway, as in docker.
func (r *Runtime) extraHosts(ctx context.Context, spec *Spec) ([]network.HostsEntry, error) {
	var out []network.HostsEntry
	for _, h := range spec.ExtraHosts {
		eh, err := opts.ParseExtraHost(h)
		if err != nil {
			return nil, err
		}
		var addr netip.Addr
		if eh.IP == opts.HostGateway {
			def, err := r.defaultNetwork(ctx)
			if err != nil {
				return nil, fmt.Errorf("--add-host %s: %w", h, err)
			}
			addr = def.Gateway
		} else if addr, err = netip.ParseAddr(eh.IP); err != nil {
			return nil, errdefs.Wrap(errdefs.ErrInvalid, fmt.Sprintf("invalid --add-host %q", h), err)
		}
		out = append(out, network.HostsEntry{Addr: addr, Names: []string{eh.Host}})
	}
	return out, nil
}

// writeNameFiles writes the container's hostname, hosts and resolv.conf
// files. self is the container's own address entry (invalid in modes
// none and host), peers the other entries.
func (r *Runtime) writeNameFiles(ctx context.Context, dir, hostname string, spec *Spec, hostNet bool, self network.HostsEntry, peers []network.HostsEntry) error {
	var hosts []byte
	if hostNet {
		extra, err := r.extraHosts(ctx, spec)
		if err != nil {
			return err
		}
		hosts, _ = os.ReadFile("/etc/hosts")
		for _, e := range extra {
			hosts = append(hosts, []byte(e.Addr.String()+"\t"+strings.Join(e.Names, "\t")+"\n")...)
		}
	} else {
		var err error
		if hosts, err = r.hostsContent(ctx, spec, self, peers); err != nil {
			return err
		}
	}
	resolv, _ := os.ReadFile("/etc/resolv.conf")
	if !hostNet || len(spec.DNS)+len(spec.DNSSearch)+len(spec.DNSOptions) > 0 {
		var err error
		if resolv, err = network.ResolvConf(resolv, spec.DNS, spec.DNSSearch, spec.DNSOptions); err != nil {
			return err
		}
	}
	files := map[string][]byte{"hostname": []byte(hostname + "\n"), "hosts": hosts, "resolv.conf": resolv}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), content, 0o644); err != nil {
			return fmt.Errorf("container %s: %w", name, err)
		}
	}
	return nil
}

// setNameFiles points cfg at the container's name files.
func setNameFiles(cfg *oci.Config, dir, hostname string, hostNet bool) {
	cfg.HostsPath = filepath.Join(dir, "hosts")
	cfg.ResolvConfPath = filepath.Join(dir, "resolv.conf")
	cfg.HostnamePath = filepath.Join(dir, "hostname")
	if cfg.Hostname == "" && !hostNet {
		cfg.Hostname = hostname
	}
}

// loopbackUp brings up lo in the network namespace of process pid (the
// init of a container with --network none, whose namespace clone made).
func loopbackUp(_ context.Context, pid int) error {
	h, err := netns.GetFromPid(pid)
	if err != nil {
		return fmt.Errorf("network namespace of %d: %w", pid, err)
	}
	defer h.Close()
	nl, err := netlink.NewHandleAt(h)
	if err != nil {
		return fmt.Errorf("netlink in container: %w", err)
	}
	defer nl.Close()
	lo, err := nl.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("container lo: %w", err)
	}
	if err := nl.LinkSetUp(lo); err != nil {
		return fmt.Errorf("container lo up: %w", err)
	}
	return nil
}
