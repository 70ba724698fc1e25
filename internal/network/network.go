// Package network is the plumbing of berth's container networks: bridges,
// per-container network namespaces and veth endpoints, and the NAT and
// forwarding rules around them (through internal/portmap's nftables table).
//
// Everything is Go over netlink and syscalls: no ip, iptables or nft
// binaries. All operations act on the network namespace of the calling
// thread (the host's, in any ordinary program) and are synchronous: when
// Release returns, the container's veths, netns mount and rules are gone.
//
// The caller (the root package) owns the records: it allocates addresses
// with internal/ipam, keeps the Endpoint returned by Attach, and calls
// Release (then ipam's Release) when the container goes away, including
// when the store's repair finds a container that died in a crash. Attach,
// Detach and Release for one container must not run concurrently; calls
// for different containers and bridges may, from any number of processes.
package network

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"

	"github.com/berth-run/berth/internal/errdefs"
	"github.com/berth-run/berth/internal/portmap"
)

// Config names the per-store resources a Manager uses.
type Config struct {
	// Table is the store's nftables table, unique per store: "berth"
	// for the default root, "berth-<hash>" for others.
	Table string
	// StateDir is a directory of the store (berth uses <root>/networks)
	// that holds the lock file serialising port allocation.
	StateDir string
	// LeaveVethsToKernel makes a container's release unmount its network
	// namespace and wait for the kernel's clean-up of it to remove the
	// veths (one RCU grace period, ~13 ms here), instead of deleting
	// them with requests, which return at once but leave a thread in the
	// kernel for ~20 ms more: a program about to exit waits for that
	// thread, a long-lived one does not.
	LeaveVethsToKernel bool
}

// Manager sets up the networks of one store. It holds no open resources.
type Manager struct {
	nat                *portmap.Table
	leaveVethsToKernel bool
}

// New returns the Manager of a store.
func New(cfg Config) (*Manager, error) {
	if cfg.StateDir == "" {
		return nil, errdefs.New(errdefs.ErrInvalid, "network: empty state directory")
	}
	t, err := portmap.NewTable(cfg.Table, filepath.Join(cfg.StateDir, "ports.lock"))
	if err != nil {
		return nil, err
	}
	return &Manager{nat: t, leaveVethsToKernel: cfg.LeaveVethsToKernel}, nil
}

// NAT returns the store's nftables table (for inspecting published ports,
// and for Delete when a store is removed).
func (m *Manager) NAT() *portmap.Table { return m.nat }

// BridgeConfig describes a bridge network.
type BridgeConfig struct {
	Name     string       // interface name, at most 15 bytes ("berth0")
	Subnet   netip.Prefix // the network's subnet
	Gateway  netip.Addr   // the bridge's own address in Subnet; zero for none
	MTU      int          // 0: the kernel's default (1500)
	Internal bool         // no outbound NAT, no traffic beyond the bridge
}

// AttachRequest connects a container to a bridge network, or, with no
// Bridge, gives it a network namespace with only loopback (mode "none").
type AttachRequest struct {
	ContainerID string
	// NetnsPath is where the container's network namespace is
	// bind-mounted (berth uses <runroot>/netns/<id>). Attach creates it
	// if it is not a namespace yet; later networks reuse it.
	NetnsPath string
	// Bridge is the bridge to attach to; "" for a namespace with only lo.
	Bridge string
	// IfName is the interface name inside the container; "" picks
	// eth0, eth1, ... (the first free).
	IfName string
	// Address is the container's address with the subnet's prefix length.
	Address netip.Prefix
	// Gateway, if valid, becomes the container's default route unless it
	// already has one (from the network attached first).
	Gateway netip.Addr
	// MAC of the container's interface; nil derives a locally
	// administered one from Address (02:42:<IPv4 bytes>, like docker).
	MAC net.HardwareAddr
	// MTU of the veth pair; 0 takes the bridge's.
	MTU int
	// Ports to publish (host port 0 is resolved to a free port).
	Ports []portmap.PortMapping
}

// Endpoint is a container's attachment to a network, as Attach made it.
type Endpoint struct {
	ContainerID string
	NetnsPath   string
	Bridge      string // "" for a loopback-only namespace
	IfName      string // inside the container: "eth0"
	HostIfName  string // the host side of the veth pair
	MAC         net.HardwareAddr
	Address     netip.Prefix
	Gateway     netip.Addr // zero if Attach added no default route
	MTU         int
	Ports       []portmap.PortMapping // with host ports resolved
}

// Interface is a network interface as seen inside a namespace.
type Interface struct {
	Name    string
	Index   int
	MAC     net.HardwareAddr
	MTU     int
	Up      bool
	Addrs   []netip.Prefix
	Gateway netip.Addr // the default route's gateway through this interface, if any
}

// EnsureBridge creates the bridge if missing (with a fixed random MAC, so it
// does not change as ports come and go), gives it the gateway address,
// brings it up, sets route_localnet=1 on it (so 127.0.0.1:port can be
// DNATed to a container) and, for non-internal networks,
// net.ipv4.ip_forward=1 as docker does, and installs the bridge's
// forwarding and NAT rules. It is idempotent and safe to call from several
// processes at once. A non-bridge interface of that name is ErrConflict.
func (m *Manager) EnsureBridge(ctx context.Context, cfg BridgeConfig) error {
	if err := checkIfName("bridge", cfg.Name); err != nil {
		return err
	}
	if !cfg.Subnet.IsValid() || cfg.Subnet != cfg.Subnet.Masked() {
		return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("bridge %s: invalid subnet %s", cfg.Name, cfg.Subnet))
	}
	if cfg.Gateway.IsValid() && !cfg.Subnet.Contains(cfg.Gateway) {
		return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("bridge %s: gateway %s outside subnet %s", cfg.Name, cfg.Gateway, cfg.Subnet))
	}
	if cfg.MTU < 0 || cfg.MTU > 65535 {
		return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("bridge %s: invalid mtu %d", cfg.Name, cfg.MTU))
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return m.ensureBridge(ctx, cfg)
}

// RemoveBridge deletes the bridge and its rules. A bridge that still has
// endpoints is ErrConflict (release its containers first); a missing
// bridge is not an error.
func (m *Manager) RemoveBridge(ctx context.Context, name string) error {
	if err := checkIfName("bridge", name); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return m.removeBridge(ctx, name)
}

// Attach connects a container to a network (see AttachRequest). On error
// nothing it created is left behind.
func (m *Manager) Attach(ctx context.Context, req AttachRequest) (*Endpoint, error) {
	if req.ContainerID == "" {
		return nil, errdefs.New(errdefs.ErrInvalid, "attach: empty container id")
	}
	if req.NetnsPath == "" {
		return nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("attach %s: empty netns path", req.ContainerID))
	}
	if req.Bridge != "" {
		if err := checkIfName("bridge", req.Bridge); err != nil {
			return nil, err
		}
		if !req.Address.IsValid() {
			return nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("attach %s to %s: no address", req.ContainerID, req.Bridge))
		}
		if req.Gateway.IsValid() && req.Gateway.Is4() != req.Address.Addr().Is4() {
			return nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("attach %s to %s: gateway %s and address %s differ in family",
				req.ContainerID, req.Bridge, req.Gateway, req.Address))
		}
		if req.MAC != nil && len(req.MAC) != 6 {
			return nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("attach %s to %s: bad mac %s", req.ContainerID, req.Bridge, req.MAC))
		}
	} else if len(req.Ports) > 0 {
		return nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("attach %s: ports need a bridge network", req.ContainerID))
	}
	if req.IfName != "" {
		if err := checkIfName("interface", req.IfName); err != nil {
			return nil, err
		}
	}
	if req.MTU < 0 || req.MTU > 65535 {
		return nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("attach %s: invalid mtu %d", req.ContainerID, req.MTU))
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return m.attach(ctx, req)
}

// Detach disconnects a container from one bridge: its veth pair and the
// ports it published through that bridge. Idempotent; like Release it runs
// to the end even if ctx is cancelled.
func (m *Manager) Detach(ctx context.Context, containerID, bridge string) error {
	if containerID == "" {
		return errdefs.New(errdefs.ErrInvalid, "detach: empty container id")
	}
	if err := checkIfName("bridge", bridge); err != nil {
		return err
	}
	return m.detach(context.WithoutCancel(ctx), containerID, bridge)
}

// Release removes everything a container's networking left: the veths in
// its namespace (or, if the namespace is gone, host veths labelled with
// its ID), all its published ports, and the namespace mount and file at
// netnsPath ("" if it has none). It is idempotent and tolerant of parts
// already gone, so it also cleans up after a crash; it returns the errors
// of the steps that failed after trying them all. It only removes, so it
// runs to the end even if ctx is already cancelled.
func (m *Manager) Release(ctx context.Context, containerID, netnsPath string) error {
	if containerID == "" {
		return errdefs.New(errdefs.ErrInvalid, "release: empty container id")
	}
	return m.release(context.WithoutCancel(ctx), containerID, netnsPath)
}

// NewNetns creates a network namespace bind-mounted at path, with only the
// loopback interface, up. If path already is a namespace it is left as it
// is (its lo is brought up).
func NewNetns(ctx context.Context, path string) error {
	if path == "" {
		return errdefs.New(errdefs.ErrInvalid, "netns: empty path")
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	h, err := newNetns(path)
	if err != nil {
		return err
	}
	// The handle's socket was opened in the namespace, and keeps it
	// alive until closed.
	h.Close()
	return nil
}

// RemoveNetns unmounts and deletes the namespace file at path. Missing or
// unmounted files are not an error. The namespace itself lives on while a
// process is inside it.
func RemoveNetns(ctx context.Context, path string) error {
	if path == "" {
		return errdefs.New(errdefs.ErrInvalid, "netns: empty path")
	}
	return removeNetns(path)
}

// Interfaces lists the interfaces of the namespace at path, with their
// addresses and default gateway, for inspect.
func Interfaces(ctx context.Context, path string) ([]Interface, error) {
	if path == "" {
		return nil, errdefs.New(errdefs.ErrInvalid, "netns: empty path")
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return interfaces(path)
}

// VethName is the host-side name of a container's veth on bridge: "vb" and
// 10 hex digits of a hash of both, 12 bytes, stable so that Detach finds it.
func VethName(containerID, bridge string) string {
	h := sha256.Sum256([]byte(containerID + "\x00" + bridge))
	return "vb" + hex.EncodeToString(h[:5])
}

// MACFromIP derives a locally administered unicast MAC from an address the
// way docker does: 02:42 followed by the IPv4 address (or the last four
// bytes of an IPv6 address).
func MACFromIP(ip netip.Addr) net.HardwareAddr {
	b := ip.As16()
	return net.HardwareAddr{0x02, 0x42, b[12], b[13], b[14], b[15]}
}

// vethAlias labels the host side of a container's veth, so that Release
// finds it even when the container's namespace file is gone.
func vethAlias(containerID string) string { return "berth:" + containerID }

func checkIfName(what, name string) error {
	if name == "" || len(name) > 15 || name == "." || name == ".." {
		return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("%s name %q: want 1-15 bytes", what, name))
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return errdefs.New(errdefs.ErrInvalid,
				fmt.Sprintf("%s name %q: invalid character %q (want letters, digits, '-', '_', '.')", what, name, c))
		}
	}
	return nil
}
