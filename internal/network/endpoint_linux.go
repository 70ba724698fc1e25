package network

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/berth-run/berth/internal/errdefs"
)

func (m *Manager) attach(ctx context.Context, req AttachRequest) (ep *Endpoint, err error) {
	ns, err := newNetns(req.NetnsPath)
	if err != nil {
		return nil, err
	}
	defer ns.Close()
	var undo []func()
	defer func() {
		if err != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
		}
	}()
	if ns.created {
		undo = append(undo, func() { _ = removeNetns(req.NetnsPath) })
	}
	ep = &Endpoint{ContainerID: req.ContainerID, NetnsPath: req.NetnsPath}
	if req.Bridge == "" {
		return ep, nil
	}
	fail := func(err error) error {
		return fmt.Errorf("attach %s to %s: %w", req.ContainerID, req.Bridge, err)
	}

	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fail(err)
	}
	defer h.Close()
	br, err := h.LinkByName(req.Bridge)
	if isLinkNotFound(err) {
		return nil, fail(errdefs.New(errdefs.ErrNotFound, "no bridge "+req.Bridge))
	}
	if err != nil {
		return nil, fail(err)
	}
	if br.Type() != "bridge" {
		return nil, fail(errdefs.New(errdefs.ErrInvalid, req.Bridge+" is not a bridge"))
	}

	// Ports first: a taken host port is the likeliest failure, and
	// cheapest to undo before any interface exists.
	if len(req.Ports) > 0 {
		ep.Ports, err = m.nat.Publish(ctx, req.ContainerID, req.Bridge, req.Address.Addr(), req.Ports)
		if err != nil {
			return nil, fail(err)
		}
		undo = append(undo, func() { _ = m.nat.Unpublish(context.Background(), req.ContainerID, req.Bridge) })
	}

	ifName := req.IfName
	if ifName == "" {
		if ifName, err = nextIfName(ns.Handle); err != nil {
			return nil, fail(err)
		}
	}
	mac := req.MAC
	if mac == nil {
		mac = MACFromIP(req.Address.Addr())
	}
	mtu := req.MTU
	if mtu == 0 {
		mtu = br.Attrs().MTU
	}
	host := VethName(req.ContainerID, req.Bridge)
	nsFd, err := netns.GetFromPath(req.NetnsPath)
	if err != nil {
		return nil, fail(err)
	}
	err = addVeth(host, ifName, br.Attrs().Index, mtu, mac, int(nsFd))
	nsFd.Close()
	if errors.Is(err, unix.EEXIST) {
		return nil, fail(errdefs.Wrap(errdefs.ErrConflict,
			fmt.Sprintf("interface %s (host) or %s (container) exists: already attached?", host, ifName), err))
	}
	if err != nil {
		return nil, fail(fmt.Errorf("veth %s: %w", host, err))
	}
	undo = append(undo, func() { _ = delLinkByName(host) })
	if err := setHostPort(host, vethAlias(req.ContainerID)); err != nil {
		return nil, fail(fmt.Errorf("veth %s: %w", host, err))
	}

	peer, err := ns.LinkByName(ifName)
	if err != nil {
		return nil, fail(err)
	}
	addr := &netlink.Addr{IPNet: prefixNet(req.Address)}
	if req.Address.Addr().Is6() {
		addr.Flags = unix.IFA_F_NODAD
	}
	if err := ns.AddrAdd(peer, addr); err != nil {
		return nil, fail(fmt.Errorf("address %s: %w", req.Address, err))
	}
	if err := ns.LinkSetUp(peer); err != nil {
		return nil, fail(err)
	}
	if req.Gateway.IsValid() {
		err := ns.RouteAdd(&netlink.Route{LinkIndex: peer.Attrs().Index, Gw: req.Gateway.AsSlice()})
		switch {
		case err == nil:
			ep.Gateway = req.Gateway
		case errors.Is(err, unix.EEXIST):
			// An earlier network holds the default route.
		default:
			return nil, fail(fmt.Errorf("default route via %s: %w", req.Gateway, err))
		}
	}
	ep.Bridge, ep.IfName, ep.HostIfName = req.Bridge, ifName, host
	ep.MAC, ep.Address, ep.MTU = mac, req.Address, mtu
	return ep, nil
}

func (m *Manager) detach(ctx context.Context, id, bridge string) error {
	var errs []error
	if err := delLinkByName(VethName(id, bridge)); err != nil {
		errs = append(errs, fmt.Errorf("detach %s from %s: %w", id, bridge, err))
	}
	if err := m.nat.Unpublish(ctx, id, bridge); err != nil {
		errs = append(errs, fmt.Errorf("detach %s from %s: %w", id, bridge, err))
	}
	return errors.Join(errs...)
}

func (m *Manager) release(ctx context.Context, id, path string) error {
	var errs []error
	var h *netlink.Handle
	if path != "" {
		var err error
		if h, err = openNetns(path); err != nil {
			errs = append(errs, err)
		}
	}
	// Deleting the veths, unmounting the namespace and deleting nft
	// objects each wait on the kernel: do them at once. The nft work
	// stays on the caller's thread and namespace.
	var wg sync.WaitGroup
	var vethErr, nsErr error
	if h != nil {
		// Subscribed here, on the caller's thread: in its namespace,
		// where the veths' peers live.
		sock, err := nl.Subscribe(unix.NETLINK_ROUTE, unix.RTNLGRP_LINK)
		if err != nil {
			sock = nil
		}
		if m.leaveVethsToKernel {
			// Also opened here, for deleting what the kernel leaves.
			host, err := netlink.NewHandle(unix.NETLINK_ROUTE)
			if err != nil {
				host = nil
			}
			wg.Go(func() { nsErr, vethErr = dropNetns(h, host, sock, path, vethAlias(id)) })
		} else {
			// h's socket is bound to (and keeps alive) the namespace
			// whatever thread runs it, so the mount can go meanwhile.
			wg.Go(func() { vethErr = delVethsUntilGone(h, sock) })
			wg.Go(func() { nsErr = removeNetns(path) })
		}
	} else if path != "" {
		wg.Go(func() { nsErr = removeNetns(path) })
	}
	if err := m.nat.Unpublish(ctx, id, ""); err != nil {
		errs = append(errs, fmt.Errorf("release %s: %w", id, err))
	}
	wg.Wait()
	for _, err := range []error{vethErr, nsErr} {
		if err != nil {
			errs = append(errs, fmt.Errorf("release %s: %w", id, err))
		}
	}
	if h == nil {
		// No namespace to look in: the host sides may still exist, for
		// example if the namespace file was lost but a process kept the
		// namespace alive. Find them by their label (a scan of the
		// host's links, only on this unusual path).
		hh, err := netlink.NewHandle(unix.NETLINK_ROUTE)
		if err == nil {
			_, err = delVeths(hh, func(l netlink.Link) bool { return l.Attrs().Alias == vethAlias(id) })
			hh.Close()
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("release %s: %w", id, err))
		}
	}
	return errors.Join(errs...)
}

// delVethsUntilGone deletes every veth of the namespace of h (its peers
// on the host go with them) and returns once the host's side of each is
// gone. It closes h and sock, a socket subscribed to the link
// notifications of the peers' namespace (nil if there is none).
//
// The kernel unlists a deleted link and announces it (RTM_DELLINK) at
// once, but the request returns only after an rcu_barrier (~20 ms) that
// frees it. So the host's link notifications are watched, and this
// returns when every peer was announced deleted, while the request
// finishes the kernel's cleanup on its own goroutine. Without the
// notifications (a socket error, or a queue overflow on a busy host) it
// waits for the request.
func delVethsUntilGone(h *netlink.Handle, sock *nl.NetlinkSocket) error {
	if sock != nil {
		defer sock.Close()
	}
	links, err := h.LinkList()
	if err != nil {
		h.Close()
		return err
	}
	var veths []netlink.Link
	peers := map[int32]bool{}
	for _, l := range links {
		if l.Type() == "veth" {
			veths = append(veths, l)
			peers[int32(l.Attrs().ParentIndex)] = true
		}
	}
	if len(veths) == 0 {
		h.Close()
		return nil
	}
	done := make(chan error, 1)
	go func() {
		defer h.Close()
		var errs []error
		for _, l := range veths {
			if err := h.LinkDel(l); err != nil && !isLinkNotFound(err) {
				errs = append(errs, fmt.Errorf("delete %s: %w", l.Attrs().Name, err))
			}
		}
		done <- errors.Join(errs...)
	}()
	if sock == nil {
		return <-done
	}
	gone := make(chan struct{})
	go func() {
		defer close(gone)
		for len(peers) > 0 {
			msgs, _, err := sock.Receive()
			if err != nil {
				return // closed, or overflowed: wait for the request
			}
			for _, m := range msgs {
				if m.Header.Type == unix.RTM_DELLINK && len(m.Data) >= unix.SizeofIfInfomsg {
					delete(peers, nl.DeserializeIfInfomsg(m.Data).Index)
				}
			}
		}
	}()
	select {
	case err := <-done:
		sock.Close()
		<-gone
		return err
	case <-gone:
		sock.Close()
		if len(peers) > 0 {
			return <-done
		}
		return nil
	}
}

// netnsGoneWait bounds the wait for the kernel to destroy a released
// namespace (normally one RCU grace period, 10-15 ms here) before the
// veths it still holds are deleted one by one.
const netnsGoneWait = 250 * time.Millisecond

// dropNetns removes the namespace mounted at path, whose netlink handle
// is h, and returns once the host's side of each of its veths (labelled
// alias) is gone. It closes h, host (a handle in the peers' namespace, or
// nil) and sock, a socket subscribed to the link notifications of the
// peers' namespace (nil if there is none). This is
// release for a program about to exit (Config.LeaveVethsToKernel).
//
// delVethsUntilGone returns as soon as the veths are gone, but leaves a
// request in the kernel (~20 ms) that a process cannot exit before.
// Unmounting the namespace leaves the deletion to the kernel: its last
// reference gone, a kernel worker unregisters its devices (a veth takes
// its peer along) and announces each (RTM_DELLINK). If the namespace
// lives on (a process still in it), the announcements do not come (or
// the socket fails): the veths still there are deleted with requests.
func dropNetns(h, host *netlink.Handle, sock *nl.NetlinkSocket, path, alias string) (nsErr, vethErr error) {
	if sock != nil {
		defer sock.Close()
	}
	if host != nil {
		defer host.Close()
	}
	links, err := h.LinkList()
	h.Close()
	peers := map[int32]bool{} // the host's ifindex of each veth's peer
	for _, l := range links {
		if l.Type() == "veth" {
			peers[int32(l.Attrs().ParentIndex)] = true
		}
	}
	nsErr = removeNetns(path)
	if err != nil {
		return nsErr, err
	}
	if len(peers) > 0 && sock != nil && nsErr == nil {
		deadline := time.Now().Add(netnsGoneWait)
		for len(peers) > 0 {
			left := time.Until(deadline)
			if left <= 0 {
				break
			}
			tv := unix.NsecToTimeval(left.Nanoseconds())
			if sock.SetReceiveTimeout(&tv) != nil {
				break
			}
			msgs, _, err := sock.Receive()
			if err != nil {
				break // the timeout, or an overflow on a busy host
			}
			for _, m := range msgs {
				if m.Header.Type == unix.RTM_DELLINK && len(m.Data) >= unix.SizeofIfInfomsg {
					delete(peers, nl.DeserializeIfInfomsg(m.Data).Index)
				}
			}
		}
	}
	if len(peers) > 0 && host == nil {
		return nsErr, errors.New("no netlink handle to delete the veths the kernel left")
	}
	var errs []error
	for idx := range peers {
		l, err := host.LinkByIndex(int(idx))
		if err != nil && !isLinkNotFound(err) {
			errs = append(errs, fmt.Errorf("veth %d: %w", idx, err))
		}
		if err != nil || l.Attrs().Alias != alias {
			continue // gone (and its index not yet taken again)
		}
		if err := host.LinkDel(l); err != nil && !isLinkNotFound(err) {
			errs = append(errs, fmt.Errorf("delete %s: %w", l.Attrs().Name, err))
		}
	}
	return nsErr, errors.Join(errs...)
}

// delVeths deletes the veths listed by h that match (all if match is nil).
// Deleting one end of a pair deletes both, synchronously.
func delVeths(h *netlink.Handle, match func(netlink.Link) bool) (int, error) {
	links, err := h.LinkList()
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for _, l := range links {
		if l.Type() != "veth" || (match != nil && !match(l)) {
			continue
		}
		if err := h.LinkDel(l); err != nil && !isLinkNotFound(err) {
			errs = append(errs, fmt.Errorf("delete %s: %w", l.Attrs().Name, err))
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

// addVeth creates a veth pair in one netlink request: the host end named
// host, attached to the bridge master and up; the peer named peer, with
// mac, in the namespace nsFd. (vishvananda's LinkAdd would need three
// requests for the same.)
func addVeth(host, peer string, master, mtu int, mac net.HardwareAddr, nsFd int) error {
	req := nl.NewNetlinkRequest(unix.RTM_NEWLINK, unix.NLM_F_CREATE|unix.NLM_F_EXCL|unix.NLM_F_ACK)
	msg := nl.NewIfInfomsg(unix.AF_UNSPEC)
	msg.Flags, msg.Change = unix.IFF_UP, unix.IFF_UP
	req.AddData(msg)
	req.AddData(nl.NewRtAttr(unix.IFLA_IFNAME, nl.ZeroTerminated(host)))
	req.AddData(nl.NewRtAttr(unix.IFLA_MTU, nl.Uint32Attr(uint32(mtu))))
	req.AddData(nl.NewRtAttr(unix.IFLA_MASTER, nl.Uint32Attr(uint32(master))))
	info := nl.NewRtAttr(unix.IFLA_LINKINFO, nil)
	info.AddRtAttr(nl.IFLA_INFO_KIND, nl.NonZeroTerminated("veth"))
	data := info.AddRtAttr(nl.IFLA_INFO_DATA, nil)
	p := data.AddRtAttr(nl.VETH_INFO_PEER, nil)
	nl.NewIfInfomsgChild(p, unix.AF_UNSPEC)
	p.AddRtAttr(unix.IFLA_IFNAME, nl.ZeroTerminated(peer))
	p.AddRtAttr(unix.IFLA_MTU, nl.Uint32Attr(uint32(mtu)))
	p.AddRtAttr(unix.IFLA_ADDRESS, mac)
	p.AddRtAttr(unix.IFLA_NET_NS_FD, nl.Uint32Attr(uint32(nsFd)))
	req.AddData(info)
	_, err := req.Execute(unix.NETLINK_ROUTE, 0)
	return err
}

// setHostPort labels the host end of a veth with alias (the kernel ignores
// IFLA_IFALIAS when creating a link) and turns on hairpin mode on its
// bridge port, in one request. Hairpin is needed for a container to reach
// its own published port through the host's address: with br_netfilter
// the DNATed frame is bridged straight back out of the port it came in
// on, which a bridge only does in hairpin mode.
func setHostPort(host, alias string) error {
	req := nl.NewNetlinkRequest(unix.RTM_NEWLINK, unix.NLM_F_ACK)
	req.AddData(nl.NewIfInfomsg(unix.AF_UNSPEC))
	req.AddData(nl.NewRtAttr(unix.IFLA_IFNAME, nl.ZeroTerminated(host)))
	req.AddData(nl.NewRtAttr(unix.IFLA_IFALIAS, []byte(alias)))
	info := nl.NewRtAttr(unix.IFLA_LINKINFO, nil)
	info.AddRtAttr(unix.IFLA_INFO_SLAVE_KIND, nl.NonZeroTerminated("bridge"))
	data := info.AddRtAttr(unix.IFLA_INFO_SLAVE_DATA, nil)
	data.AddRtAttr(unix.IFLA_BRPORT_MODE, []byte{1})
	req.AddData(info)
	_, err := req.Execute(unix.NETLINK_ROUTE, 0)
	return err
}

// delLinkByName deletes a link of the calling thread's namespace by name in
// one request; a missing link is not an error.
func delLinkByName(name string) error {
	req := nl.NewNetlinkRequest(unix.RTM_DELLINK, unix.NLM_F_ACK)
	req.AddData(nl.NewIfInfomsg(unix.AF_UNSPEC))
	req.AddData(nl.NewRtAttr(unix.IFLA_IFNAME, nl.ZeroTerminated(name)))
	_, err := req.Execute(unix.NETLINK_ROUTE, 0)
	if err != nil && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("delete %s: %w", name, err)
	}
	return nil
}

// nextIfName returns the first ethN not present in the namespace.
func nextIfName(h *netlink.Handle) (string, error) {
	links, err := h.LinkList()
	if err != nil {
		return "", err
	}
	used := map[int]bool{}
	for _, l := range links {
		if n, ok := strings.CutPrefix(l.Attrs().Name, "eth"); ok {
			if i, err := strconv.Atoi(n); err == nil {
				used[i] = true
			}
		}
	}
	for i := 0; ; i++ {
		if !used[i] {
			return "eth" + strconv.Itoa(i), nil
		}
	}
}

func prefixNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func interfaces(path string) ([]Interface, error) {
	h, err := openNetns(path)
	if err != nil {
		return nil, err
	}
	if h == nil {
		return nil, errdefs.New(errdefs.ErrNotFound, fmt.Sprintf("netns %s: not a network namespace", path))
	}
	defer h.Close()
	links, err := h.LinkList()
	if err != nil {
		return nil, fmt.Errorf("netns %s: %w", path, err)
	}
	addrs, err := h.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("netns %s: %w", path, err)
	}
	routes, err := h.RouteList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("netns %s: %w", path, err)
	}
	out := make([]Interface, 0, len(links))
	for _, l := range links {
		a := l.Attrs()
		ifc := Interface{Name: a.Name, Index: a.Index, MAC: a.HardwareAddr, MTU: a.MTU, Up: a.Flags&net.FlagUp != 0}
		for _, ad := range addrs {
			if ad.LinkIndex != a.Index || ad.IPNet == nil {
				continue
			}
			ip, ok := netip.AddrFromSlice(ad.IP)
			if !ok {
				continue
			}
			ones, _ := ad.Mask.Size()
			ifc.Addrs = append(ifc.Addrs, netip.PrefixFrom(ip.Unmap(), ones))
		}
		for _, r := range routes {
			if r.LinkIndex != a.Index || r.Gw == nil {
				continue
			}
			if r.Dst != nil {
				if ones, _ := r.Dst.Mask.Size(); ones != 0 {
					continue
				}
			}
			if gw, ok := netip.AddrFromSlice(r.Gw); ok && !ifc.Gateway.IsValid() {
				ifc.Gateway = gw.Unmap()
			}
		}
		out = append(out, ifc)
	}
	return out, nil
}
