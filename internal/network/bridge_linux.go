package network

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/berth-run/berth/internal/errdefs"
)

func (m *Manager) ensureBridge(ctx context.Context, cfg BridgeConfig) error {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("bridge %s: %w", cfg.Name, err)
	}
	defer h.Close()

	link, err := h.LinkByName(cfg.Name)
	if isLinkNotFound(err) {
		attrs := netlink.NewLinkAttrs()
		attrs.Name = cfg.Name
		attrs.MTU = cfg.MTU
		attrs.Flags = net.FlagUp
		// A fixed address: otherwise the bridge takes the lowest MAC of
		// its ports, and changes it as containers come and go.
		attrs.HardwareAddr = randomMAC()
		br := &netlink.Bridge{LinkAttrs: attrs}
		switch err = h.LinkAdd(br); {
		case err == nil:
			link = br
		case errors.Is(err, unix.EEXIST):
			// Another process created it first.
			link, err = h.LinkByName(cfg.Name)
		}
	}
	if err != nil {
		return fmt.Errorf("bridge %s: %w", cfg.Name, err)
	}
	if link.Type() != "bridge" {
		return errdefs.New(errdefs.ErrConflict, fmt.Sprintf("bridge %s: an interface of that name exists and is a %s, not a bridge", cfg.Name, link.Type()))
	}
	if cfg.Gateway.IsValid() {
		addr := &netlink.Addr{IPNet: &net.IPNet{
			IP:   cfg.Gateway.AsSlice(),
			Mask: net.CIDRMask(cfg.Subnet.Bits(), cfg.Subnet.Addr().BitLen()),
		}}
		if cfg.Gateway.Is6() {
			addr.Flags = unix.IFA_F_NODAD
		}
		if err := h.AddrReplace(link, addr); err != nil {
			return fmt.Errorf("bridge %s: address %s: %w", cfg.Name, cfg.Gateway, err)
		}
	}
	if link.Attrs().Flags&net.FlagUp == 0 {
		if err := h.LinkSetUp(link); err != nil {
			return fmt.Errorf("bridge %s: %w", cfg.Name, err)
		}
	}
	// 127.0.0.1:port published to a container is DNATed to an address on
	// the bridge; the kernel routes loopback sources off the host only
	// with route_localnet.
	if err := setSysctl("/proc/sys/net/ipv4/conf/"+cfg.Name+"/route_localnet", "1"); err != nil {
		return fmt.Errorf("bridge %s: %w", cfg.Name, err)
	}
	if !cfg.Internal {
		if err := setSysctl("/proc/sys/net/ipv4/ip_forward", "1"); err != nil {
			return fmt.Errorf("bridge %s: %w", cfg.Name, err)
		}
	}
	return m.nat.EnsureBridge(ctx, cfg.Name, cfg.Subnet, cfg.Internal)
}

func (m *Manager) removeBridge(ctx context.Context, name string) error {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("bridge %s: %w", name, err)
	}
	defer h.Close()
	link, err := h.LinkByName(name)
	switch {
	case isLinkNotFound(err):
	case err != nil:
		return fmt.Errorf("bridge %s: %w", name, err)
	case link.Type() != "bridge":
		return errdefs.New(errdefs.ErrConflict, fmt.Sprintf("bridge %s: the interface of that name is a %s, not a bridge", name, link.Type()))
	default:
		links, err := h.LinkList()
		if err != nil {
			return fmt.Errorf("bridge %s: %w", name, err)
		}
		var ports []string
		for _, l := range links {
			if l.Attrs().MasterIndex == link.Attrs().Index {
				ports = append(ports, l.Attrs().Name)
			}
		}
		if len(ports) > 0 {
			return errdefs.New(errdefs.ErrConflict, fmt.Sprintf("bridge %s has active endpoints: %s", name, strings.Join(ports, ", ")))
		}
		if err := h.LinkDel(link); err != nil && !isLinkNotFound(err) && !errors.Is(err, unix.ENODEV) {
			return fmt.Errorf("bridge %s: %w", name, err)
		}
	}
	return m.nat.RemoveBridge(ctx, name)
}

func isLinkNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf) || errors.Is(err, unix.ENODEV)
}

// randomMAC returns a random locally administered unicast address.
func randomMAC() net.HardwareAddr {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	b[0] = b[0]&^0x01 | 0x02
	return b
}
