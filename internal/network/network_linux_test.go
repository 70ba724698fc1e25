package network

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/berth-run/berth/internal/errdefs"
	"github.com/berth-run/berth/internal/ipam"
	"github.com/berth-run/berth/internal/portmap"
	"github.com/berth-run/berth/internal/testutil"
)

// Worker mode: TestEnsureBridgeManyProcesses re-executes the test binary
// with these set; the worker runs EnsureBridge a few times and exits.
const (
	workerEnv = "BERTH_NETWORK_WORKER"
)

func TestMain(m *testing.M) {
	if spec := os.Getenv(workerEnv); spec != "" {
		os.Exit(ensureWorker(spec))
	}
	os.Exit(m.Run())
}

func ensureWorker(spec string) int {
	// spec: table,statedir,bridge,subnet,gateway
	f := strings.Split(spec, ",")
	m, err := New(Config{Table: f[0], StateDir: f[1]})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	cfg := BridgeConfig{Name: f[2], Subnet: netip.MustParsePrefix(f[3]), Gateway: netip.MustParseAddr(f[4])}
	for range 5 {
		if err := m.EnsureBridge(context.Background(), cfg); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	return 0
}

// env is one test's world: a fresh network namespace standing in for the
// host (entered by the test goroutine), a Manager with its own table, and
// an IPAM pool per bridge.
type env struct {
	t     *testing.T
	ctx   context.Context
	m     *Manager
	host  netns.NsHandle
	dir   string
	pools map[string]*ipam.Pool
	gws   map[string]netip.Addr
}

func uniq() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func newEnv(t *testing.T, edits ...func(*Config)) *env {
	host := testutil.EnterNetns(t)
	lo, err := netlink.LinkByName("lo")
	require.NoError(t, err)
	require.NoError(t, netlink.LinkSetUp(lo))
	return newEnvHere(t, host, edits...)
}

// newEnvHere builds an env in the namespace the test goroutine is in.
func newEnvHere(t *testing.T, host netns.NsHandle, edits ...func(*Config)) *env {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	dir := t.TempDir()
	cfg := Config{Table: "berth-test-" + uniq(), StateDir: filepath.Join(dir, "networks")}
	for _, edit := range edits {
		edit(&cfg)
	}
	m, err := New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, m.NAT().Delete(context.Background())) })
	return &env{t: t, ctx: ctx, m: m, host: host, dir: dir,
		pools: map[string]*ipam.Pool{}, gws: map[string]netip.Addr{}}
}

func (e *env) bridge(name, subnet string, internal bool) {
	e.t.Helper()
	sn := netip.MustParsePrefix(subnet)
	gw, err := ipam.Gateway(sn)
	require.NoError(e.t, err)
	require.NoError(e.t, e.m.EnsureBridge(e.ctx, BridgeConfig{Name: name, Subnet: sn, Gateway: gw, Internal: internal}))
	e.t.Cleanup(func() { assert.NoError(e.t, e.m.RemoveBridge(context.Background(), name)) })
	p, err := ipam.Open(filepath.Join(e.dir, "networks", name+".ipam"), sn, gw)
	require.NoError(e.t, err)
	e.pools[name], e.gws[name] = p, gw
}

func (e *env) netnsPath(id string) string { return filepath.Join(e.dir, "run", "netns", id) }

// attach allocates an address and attaches container id; cleanup
// releases both.
func (e *env) attach(id, bridge string, ports ...string) *Endpoint {
	e.t.Helper()
	ep, err := e.tryAttach(id, bridge, ports...)
	require.NoError(e.t, err)
	return ep
}

func (e *env) tryAttach(id, bridge string, ports ...string) (*Endpoint, error) {
	e.t.Helper()
	pm, err := portmap.ParseAll(ports)
	require.NoError(e.t, err)
	req := AttachRequest{ContainerID: id, NetnsPath: e.netnsPath(id), Bridge: bridge, Ports: pm}
	if bridge != "" {
		addr, err := e.pools[bridge].Allocate(e.ctx, id)
		require.NoError(e.t, err)
		req.Address, req.Gateway = addr, e.gws[bridge]
	}
	e.t.Cleanup(func() { e.release(id) })
	return e.m.Attach(e.ctx, req)
}

func (e *env) release(id string) {
	e.t.Helper()
	assert.NoError(e.t, e.m.Release(context.Background(), id, e.netnsPath(id)))
	for _, p := range e.pools {
		assert.NoError(e.t, p.Release(context.Background(), id))
	}
}

// serveTCP runs a server in the container's namespace that answers each
// connection with the remote address it sees.
func serveTCP(t *testing.T, nsPath string, port int) {
	t.Helper()
	var ln net.Listener
	require.NoError(t, testutil.InNetnsPath(nsPath, func() (err error) {
		ln, err = net.Listen("tcp", fmt.Sprintf(":%d", port))
		return err
	}))
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprintf(c, "%s\n", c.RemoteAddr())
			c.Close()
		}
	}()
}

// serveUDP echoes datagrams prefixed with the sender's address.
func serveUDP(t *testing.T, nsPath string, port int) {
	t.Helper()
	var pc net.PacketConn
	require.NoError(t, testutil.InNetnsPath(nsPath, func() (err error) {
		pc, err = net.ListenPacket("udp", fmt.Sprintf(":%d", port))
		return err
	}))
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo([]byte(from.String()+" "+string(buf[:n])), from)
		}
	}()
}

// dialTCP connects to addr from the calling thread's namespace and returns
// the line the server sends: the client address the server saw.
func dialTCP(addr string, timeout time.Duration) (string, error) {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), err
}

func dialTCPIn(ns netns.NsHandle, addr string, timeout time.Duration) (seen string, err error) {
	ierr := testutil.InNetns(ns, func() error {
		seen, err = dialTCP(addr, timeout)
		return nil
	})
	return seen, errors.Join(ierr, err)
}

func dialTCPInPath(path, addr string, timeout time.Duration) (seen string, err error) {
	ierr := testutil.InNetnsPath(path, func() error {
		seen, err = dialTCP(addr, timeout)
		return nil
	})
	return seen, errors.Join(ierr, err)
}

func udpRoundTrip(addr string) (string, error) {
	c, err := net.Dial("udp", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	buf := make([]byte, 1500)
	for range 5 { // datagrams may be lost while neighbours resolve
		if _, err := c.Write([]byte("ping")); err != nil {
			return "", err
		}
		_ = c.SetReadDeadline(time.Now().Add(time.Second))
		n, err := c.Read(buf)
		if err == nil {
			return string(buf[:n]), nil
		}
	}
	return "", fmt.Errorf("no udp answer from %s", addr)
}

func hostOnly(s string) string {
	h, _, err := net.SplitHostPort(s)
	if err != nil {
		return s
	}
	return h
}

// dumpOnFailure prints the namespace's ruleset and addresses if the test
// failed (diagnostics only; nothing is asserted on this output).
func dumpOnFailure(t *testing.T) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, args := range [][]string{{"nft", "list", "ruleset"}, {"ip", "-br", "addr"}, {"ip", "route"},
			{"ip", "neigh"}, {"ip", "-6", "route"}, {"bridge", "link"}, {"bridge", "mdb"}} {
			out, _ := exec.Command(args[0], args[1:]...).CombinedOutput()
			t.Logf("%s:\n%s", strings.Join(args, " "), out)
		}
	})
}

func TestPublishedPortsFromLoopbackAndRemote(t *testing.T) {
	e := newEnv(t)
	dumpOnFailure(t)
	e.bridge("berth-t0", "10.88.0.0/16", false)
	ep := e.attach("c1", "berth-t0", "80", "127.0.0.1::81", "53/udp")
	require.Len(t, ep.Ports, 3)
	anyPort, localPort, udpPort := ep.Ports[0].HostPort, ep.Ports[1].HostPort, ep.Ports[2].HostPort
	assert.NotZero(t, anyPort)
	assert.NotEqual(t, anyPort, localPort)
	serveTCP(t, ep.NetnsPath, 80)
	serveTCP(t, ep.NetnsPath, 81)
	serveUDP(t, ep.NetnsPath, 53)

	// From the host, through 127.0.0.1: the source is masqueraded to the
	// bridge's address, the container never sees 127.0.0.1.
	for _, p := range []uint16{anyPort, localPort} {
		seen, err := dialTCP(fmt.Sprintf("127.0.0.1:%d", p), 5*time.Second)
		require.NoError(t, err, "port %d", p)
		assert.Equal(t, "10.88.0.1", hostOnly(seen))
	}
	got, err := udpRoundTrip(fmt.Sprintf("127.0.0.1:%d", udpPort))
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(got, "10.88.0.1:"), got)
	assert.True(t, strings.HasSuffix(got, " ping"), got)

	// From a "remote" client in its own namespace, linked to the host by
	// a veth: the 0.0.0.0 mapping answers at the host's address and the
	// container sees the client's real address; the 127.0.0.1 one does
	// not answer there.
	remote := testutil.NewNetns(t)
	linkRemote(t, remote, "bt-rh", "bt-rc", "192.168.77.1/24", "192.168.77.2/24")
	seen, err := dialTCPIn(remote, fmt.Sprintf("192.168.77.1:%d", anyPort), 5*time.Second)
	require.NoError(t, err)
	assert.Equal(t, "192.168.77.2", hostOnly(seen))
	_, err = dialTCPIn(remote, fmt.Sprintf("192.168.77.1:%d", localPort), 2*time.Second)
	assert.Error(t, err, "a 127.0.0.1 mapping must not be reachable from outside")
	// Nor is the container reachable by its own address from outside.
	_, err = dialTCPIn(remote, "10.88.0.2:80", time.Second)
	assert.Error(t, err)

	// The container's environment: eth0 with its address and the gateway.
	ifs, err := Interfaces(e.ctx, ep.NetnsPath)
	require.NoError(t, err)
	require.Len(t, ifs, 2)
	assert.Equal(t, "lo", ifs[0].Name)
	assert.True(t, ifs[0].Up)
	assert.Equal(t, "eth0", ifs[1].Name)
	assert.True(t, ifs[1].Up)
	assert.Equal(t, []netip.Prefix{netip.MustParsePrefix("10.88.0.2/16")}, v4only(ifs[1].Addrs))
	assert.Equal(t, "10.88.0.1", ifs[1].Gateway.String())
	assert.Equal(t, "02:42:0a:58:00:02", ifs[1].MAC.String())
	assert.Equal(t, ep.MAC, ifs[1].MAC)
}

func v4only(ps []netip.Prefix) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range ps {
		if p.Addr().Is4() {
			out = append(out, p)
		}
	}
	return out
}

// linkRemote connects the namespace remote to the test's namespace with a
// veth pair: hostName/hostAddr here, peerName/peerAddr there, with a
// default route back.
func linkRemote(t *testing.T, remote netns.NsHandle, hostName, peerName, hostAddr, peerAddr string) {
	t.Helper()
	attrs := netlink.NewLinkAttrs()
	attrs.Name, attrs.Flags = hostName, net.FlagUp
	require.NoError(t, netlink.LinkAdd(&netlink.Veth{LinkAttrs: attrs, PeerName: peerName,
		PeerNamespace: netlink.NsFd(remote), PeerTxQLen: -1}))
	t.Cleanup(func() { _ = delLinkByName(hostName) })
	l, err := netlink.LinkByName(hostName)
	require.NoError(t, err)
	a, err := netlink.ParseAddr(hostAddr)
	require.NoError(t, err)
	require.NoError(t, netlink.AddrAdd(l, a))
	require.NoError(t, testutil.InNetns(remote, func() error {
		p, err := netlink.LinkByName(peerName)
		if err != nil {
			return err
		}
		pa, err := netlink.ParseAddr(peerAddr)
		if err != nil {
			return err
		}
		if err := netlink.AddrAdd(p, pa); err != nil {
			return err
		}
		if err := netlink.LinkSetUp(p); err != nil {
			return err
		}
		return netlink.RouteAdd(&netlink.Route{LinkIndex: p.Attrs().Index, Gw: a.IP})
	}))
}

func TestBridgePeersAndIsolation(t *testing.T) {
	e := newEnv(t)
	dumpOnFailure(t)
	e.bridge("berth-ta", "10.88.0.0/16", false)
	e.bridge("berth-tb", "10.89.0.0/16", false)
	a := e.attach("ca", "berth-ta", "8080:80")
	b := e.attach("cb", "berth-ta")
	c := e.attach("cc", "berth-tb")
	serveTCP(t, a.NetnsPath, 80)

	// Same bridge: direct, with the peer's own address.
	seen, err := dialTCPInPath(b.NetnsPath, a.Address.Addr().String()+":80", 5*time.Second)
	require.NoError(t, err)
	assert.Equal(t, b.Address.Addr().String(), hostOnly(seen))

	// Another bridge: isolated.
	_, err = dialTCPInPath(c.NetnsPath, a.Address.Addr().String()+":80", time.Second)
	assert.Error(t, err, "bridges must be isolated from each other")

	// But the published port is reachable through the host's address,
	// from the other network too (as with docker's published ports).
	seen, err = dialTCPInPath(c.NetnsPath, "10.89.0.1:8080", 5*time.Second)
	require.NoError(t, err)
	assert.Equal(t, c.Address.Addr().String(), hostOnly(seen))

	// Hairpin: the container reaches its own published port through the
	// host's address, and a peer on its bridge does too.
	for _, ep := range []*Endpoint{a, b} {
		seen, err = dialTCPInPath(ep.NetnsPath, "10.88.0.1:8080", 5*time.Second)
		require.NoError(t, err, ep.ContainerID)
		assert.Equal(t, "10.88.0.1", hostOnly(seen))
	}

	// The host reaches containers directly.
	seen, err = dialTCP(a.Address.Addr().String()+":80", 5*time.Second)
	require.NoError(t, err)
	assert.Equal(t, "10.88.0.1", hostOnly(seen))
}

func TestInternalBridge(t *testing.T) {
	e := newEnv(t)
	dumpOnFailure(t)
	e.bridge("berth-ti", "10.90.0.0/16", true)
	e.bridge("berth-tx", "10.91.0.0/16", false)
	a := e.attach("ia", "berth-ti")
	b := e.attach("ib", "berth-ti")
	x := e.attach("ix", "berth-tx")
	serveTCP(t, a.NetnsPath, 80)
	serveTCP(t, x.NetnsPath, 80)

	_, err := dialTCPInPath(b.NetnsPath, a.Address.Addr().String()+":80", 5*time.Second)
	require.NoError(t, err, "peers on an internal bridge reach each other")
	// Nothing beyond the bridge: not the other network, not the "outside".
	remote := testutil.NewNetns(t)
	linkRemote(t, remote, "bt-ih", "bt-ic", "192.168.78.1/24", "192.168.78.2/24")
	serveTCPNs(t, remote, 80)
	_, err = dialTCPInPath(b.NetnsPath, "192.168.78.2:80", time.Second)
	assert.Error(t, err, "an internal network must not reach outside")
	_, err = dialTCPInPath(b.NetnsPath, x.Address.Addr().String()+":80", time.Second)
	assert.Error(t, err)
	// While a normal network reaches outside, masqueraded to the host.
	seen, err := dialTCPInPath(x.NetnsPath, "192.168.78.2:80", 5*time.Second)
	require.NoError(t, err)
	assert.Equal(t, "192.168.78.1", hostOnly(seen))
}

func serveTCPNs(t *testing.T, ns netns.NsHandle, port int) {
	var ln net.Listener
	require.NoError(t, testutil.InNetns(ns, func() (err error) {
		ln, err = net.Listen("tcp", fmt.Sprintf(":%d", port))
		return err
	}))
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprintf(c, "%s\n", c.RemoteAddr())
			c.Close()
		}
	}()
}

func TestNoneMode(t *testing.T) {
	e := newEnv(t)
	ep := e.attach("n1", "")
	assert.Empty(t, ep.Bridge)
	ifs, err := Interfaces(e.ctx, ep.NetnsPath)
	require.NoError(t, err)
	require.Len(t, ifs, 1)
	assert.Equal(t, "lo", ifs[0].Name)
	assert.True(t, ifs[0].Up)
	assert.Contains(t, ifs[0].Addrs, netip.MustParsePrefix("127.0.0.1/8"))

	// NewNetns is the same thing on its own.
	p := filepath.Join(e.dir, "other")
	require.NoError(t, NewNetns(e.ctx, p))
	ifs, err = Interfaces(e.ctx, p)
	require.NoError(t, err)
	require.Len(t, ifs, 1)
	assert.True(t, ifs[0].Up)
	require.NoError(t, RemoveNetns(e.ctx, p))
	require.NoError(t, RemoveNetns(e.ctx, p))
	assert.NoFileExists(t, p)
}

func TestSecondNetworkIsEth1(t *testing.T) {
	e := newEnv(t)
	e.bridge("berth-t1", "10.88.0.0/16", false)
	e.bridge("berth-t2", "10.89.0.0/16", false)
	a := e.attach("m1", "berth-t1")
	b := e.attach("m1", "berth-t2")
	assert.Equal(t, "eth0", a.IfName)
	assert.Equal(t, "eth1", b.IfName)
	assert.Equal(t, "10.88.0.1", a.Gateway.String())
	assert.False(t, b.Gateway.IsValid(), "the default route stays with the first network")
	ifs, err := Interfaces(e.ctx, a.NetnsPath)
	require.NoError(t, err)
	require.Len(t, ifs, 3)

	require.NoError(t, e.m.Detach(e.ctx, "m1", "berth-t2"))
	require.NoError(t, e.m.Detach(e.ctx, "m1", "berth-t2"))
	ifs, err = Interfaces(e.ctx, a.NetnsPath)
	require.NoError(t, err)
	assert.Len(t, ifs, 2)
	_, err = netlink.LinkByName(b.HostIfName)
	assert.True(t, isLinkNotFound(err))
}

func TestHostPortAllocation(t *testing.T) {
	e := newEnv(t)
	e.bridge("berth-tp", "10.88.0.0/16", false)

	// Random ports are distinct and free.
	ep := e.attach("p1", "berth-tp", "80", "81", "82", "83/udp", "127.0.0.1::84")
	seen := map[uint16]bool{}
	for _, p := range ep.Ports {
		assert.False(t, seen[p.HostPort], "port %d twice", p.HostPort)
		seen[p.HostPort] = true
	}

	// Concurrently from several goroutines (each in this namespace): all
	// distinct.
	var wg sync.WaitGroup
	var mu sync.Mutex
	errs := []error{}
	for i := range 6 {
		wg.Go(func() {
			err := testutil.InNetns(e.host, func() error {
				id := fmt.Sprintf("pc%d", i)
				ep, err := e.tryAttach(id, "berth-tp", "80", "81")
				if err != nil {
					return err
				}
				mu.Lock()
				defer mu.Unlock()
				for _, p := range ep.Ports {
					if seen[p.HostPort] {
						return fmt.Errorf("port %d handed out twice", p.HostPort)
					}
					seen[p.HostPort] = true
				}
				return nil
			})
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
		})
	}
	wg.Wait()
	require.NoError(t, errors.Join(errs...))

	// A port held by a host process.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	hp := ln.Addr().(*net.TCPAddr).Port
	_, err = e.tryAttach("p2", "berth-tp", fmt.Sprintf("%d:80", hp))
	assert.ErrorIs(t, err, errdefs.ErrConflict)
	assert.ErrorContains(t, err, "in use on the host")
	// The failed Attach left nothing behind.
	assert.NoFileExists(t, e.netnsPath("p2"))
	_, err = netlink.LinkByName(VethName("p2", "berth-tp"))
	assert.True(t, isLinkNotFound(err))

	// A port another container publishes, on all addresses or one.
	fixed := e.attach("p3", "berth-tp", "127.0.0.1:18080:80", "18081:80")
	require.Len(t, fixed.Ports, 2)
	for _, spec := range []string{"18080:80", "127.0.0.1:18080:80", "127.0.0.1:18081:80"} {
		_, err = e.tryAttach("p4", "berth-tp", spec)
		assert.ErrorIs(t, err, errdefs.ErrConflict, spec)
		assert.ErrorContains(t, err, "published by container p3", spec)
	}
	// Same port, another address: fine (and the same port over UDP).
	other := e.attach("p5", "berth-tp", "127.0.0.2:18080:80", "18080:80/udp")
	assert.Equal(t, uint16(18080), other.Ports[0].HostPort)

	// A host range picks its first free port.
	rng := e.attach("p6", "berth-tp", "18080-18090:80")
	assert.Equal(t, uint16(18082), rng.Ports[0].HostPort)

	// A host address that is not local.
	_, err = e.tryAttach("p7", "berth-tp", "10.250.0.1:18000:80")
	assert.ErrorIs(t, err, errdefs.ErrInvalid)
}

// nftState reads, through the nftables API, the chains of the env's table
// and the owners of its dispatch map elements.
func (e *env) nftState() (chains []string, owners []string) {
	e.t.Helper()
	c, err := nftables.New()
	require.NoError(e.t, err)
	all, err := c.ListChainsOfTableFamily(nftables.TableFamilyINet)
	require.NoError(e.t, err)
	for _, ch := range all {
		if ch.Table.Name == e.m.NAT().Name() {
			chains = append(chains, ch.Name)
		}
	}
	inUse, err := e.m.NAT().InUse(e.ctx)
	require.NoError(e.t, err)
	for _, b := range inUse {
		owners = append(owners, b.ContainerID)
	}
	tb := &nftables.Table{Name: e.m.NAT().Name(), Family: nftables.TableFamilyINet}
	for _, name := range []string{"bridges", "masq", "fwd"} {
		s, err := c.GetSetByName(tb, name)
		require.NoError(e.t, err)
		els, err := c.GetSetElements(s)
		require.NoError(e.t, err)
		for _, el := range els {
			owners = append(owners, name+":"+strings.TrimRight(string(el.Key), "\x00"))
		}
	}
	return chains, owners
}

// Both ways of releasing (veths deleted by requests, or left to the
// kernel's clean-up of the namespace) leave nothing when they return.
func TestReleaseRemovesEverything(t *testing.T) {
	for _, leave := range []bool{false, true} {
		t.Run(fmt.Sprintf("LeaveVethsToKernel=%v", leave), func(t *testing.T) {
			testReleaseRemovesEverything(t, newEnv(t, func(c *Config) { c.LeaveVethsToKernel = leave }))
		})
	}
}

func testReleaseRemovesEverything(t *testing.T, e *env) {
	e.bridge("berth-tr", "10.88.0.0/16", false)
	ep := e.attach("r1", "berth-tr", "80", "127.0.0.1::81/udp")
	chains, owners := e.nftState()
	assert.Contains(t, chains, portmap.ContainerChain("r1"))
	assert.Contains(t, owners, "r1")
	veth, err := netlink.LinkByName(ep.HostIfName)
	require.NoError(t, err)
	assert.Equal(t, "berth:r1", veth.Attrs().Alias)

	require.NoError(t, e.m.Release(e.ctx, "r1", ep.NetnsPath))
	require.NoError(t, e.pools["berth-tr"].Release(e.ctx, "r1"))

	_, err = netlink.LinkByName(ep.HostIfName)
	assert.True(t, isLinkNotFound(err), "veth gone")
	assert.NoFileExists(t, ep.NetnsPath)
	assert.False(t, isNetns(ep.NetnsPath))
	assert.False(t, mounted(t, ep.NetnsPath), "netns mount gone")
	chains, owners = e.nftState()
	assert.NotContains(t, chains, portmap.ContainerChain("r1"))
	assert.NotContains(t, owners, "r1")
	leases, err := e.pools["berth-tr"].Leases(e.ctx)
	require.NoError(t, err)
	assert.Empty(t, leases)
	ports, err := e.m.NAT().Ports(e.ctx, "r1")
	require.NoError(t, err)
	assert.Empty(t, ports)

	// RemoveBridge: link, chain and set elements gone.
	require.NoError(t, e.m.RemoveBridge(e.ctx, "berth-tr"))
	_, err = netlink.LinkByName("berth-tr")
	assert.True(t, isLinkNotFound(err))
	chains, owners = e.nftState()
	assert.NotContains(t, chains, portmap.BridgeChain("berth-tr"))
	for _, o := range owners {
		assert.NotContains(t, o, "berth-tr")
	}
	require.NoError(t, e.m.RemoveBridge(e.ctx, "berth-tr"))
}

func TestRemoveBridgeWithEndpoints(t *testing.T) {
	e := newEnv(t)
	e.bridge("berth-te", "10.88.0.0/16", false)
	e.attach("e1", "berth-te")
	err := e.m.RemoveBridge(e.ctx, "berth-te")
	assert.ErrorIs(t, err, errdefs.ErrConflict)
	e.release("e1")
}

// mounted reports whether path is a mount point, from mountinfo.
func mounted(t *testing.T, path string) bool {
	b, err := os.ReadFile("/proc/self/mountinfo")
	require.NoError(t, err)
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && f[4] == path {
			return true
		}
	}
	return false
}

func TestReleaseAfterPartialFailure(t *testing.T) {
	e := newEnv(t)
	e.bridge("berth-tf", "10.88.0.0/16", false)

	// The veth is already gone.
	ep := e.attach("f1", "berth-tf", "80")
	require.NoError(t, delLinkByName(ep.HostIfName))
	require.NoError(t, e.m.Release(e.ctx, "f1", ep.NetnsPath))
	require.NoError(t, e.m.Release(e.ctx, "f1", ep.NetnsPath))
	assert.NoFileExists(t, ep.NetnsPath)

	// The namespace was unmounted, the file is still there.
	ep = e.attach("f2", "berth-tf")
	require.NoError(t, unix.Unmount(ep.NetnsPath, unix.MNT_DETACH))
	require.NoError(t, e.m.Release(e.ctx, "f2", ep.NetnsPath))
	assert.NoFileExists(t, ep.NetnsPath)
	_, err := netlink.LinkByName(ep.HostIfName)
	assert.True(t, isLinkNotFound(err), "%v", err)

	// The namespace file is lost but a process (here: an open handle)
	// keeps the namespace, and so the veth, alive: Release finds the host
	// side by its label.
	ep = e.attach("f3", "berth-tf", "81")
	keep, err := netns.GetFromPath(ep.NetnsPath)
	require.NoError(t, err)
	defer keep.Close()
	require.NoError(t, removeNetns(ep.NetnsPath))
	require.NoError(t, e.m.Release(e.ctx, "f3", ep.NetnsPath))
	_, err = netlink.LinkByName(ep.HostIfName)
	assert.True(t, isLinkNotFound(err), "host veth removed by label: %v", err)
	ports, err := e.m.NAT().Ports(e.ctx, "f3")
	require.NoError(t, err)
	assert.Empty(t, ports)

	// Rules already gone, nothing else there: still fine.
	require.NoError(t, e.m.NAT().Unpublish(e.ctx, "f4", ""))
	require.NoError(t, e.m.Release(e.ctx, "f4", e.netnsPath("f4")))
	require.NoError(t, e.m.Release(e.ctx, "f4", ""))
}

func TestAttachErrors(t *testing.T) {
	e := newEnv(t)
	e.bridge("berth-tx", "10.88.0.0/16", false)
	_, err := e.m.Attach(e.ctx, AttachRequest{ContainerID: "x", NetnsPath: e.netnsPath("x"),
		Bridge: "berth-nope", Address: netip.MustParsePrefix("10.88.0.9/16")})
	assert.ErrorIs(t, err, errdefs.ErrNotFound)
	assert.NoFileExists(t, e.netnsPath("x"))

	// Attaching twice to one bridge.
	e.attach("x2", "berth-tx")
	_, err = e.m.Attach(e.ctx, AttachRequest{ContainerID: "x2", NetnsPath: e.netnsPath("x2"),
		Bridge: "berth-tx", Address: netip.MustParsePrefix("10.88.0.99/16")})
	assert.ErrorIs(t, err, errdefs.ErrConflict)

	for _, req := range []AttachRequest{
		{NetnsPath: "/x"},
		{ContainerID: "x"},
		{ContainerID: "x", NetnsPath: "/x", Bridge: "berth-tx"},
		{ContainerID: "x", NetnsPath: "/x", Bridge: "bad/name", Address: netip.MustParsePrefix("10.88.0.9/16")},
		{ContainerID: "x", NetnsPath: "/x", Ports: []portmap.PortMapping{{ContainerPort: 80, Protocol: "tcp"}}},
	} {
		_, err := e.m.Attach(e.ctx, req)
		assert.ErrorIs(t, err, errdefs.ErrInvalid, "%+v", req)
	}
}

func TestEnsureBridgeIdempotentAndConflicts(t *testing.T) {
	e := newEnv(t)
	e.bridge("berth-tq", "10.88.0.0/16", false)
	cfg := BridgeConfig{Name: "berth-tq", Subnet: netip.MustParsePrefix("10.88.0.0/16"), Gateway: netip.MustParseAddr("10.88.0.1")}
	br, err := netlink.LinkByName("berth-tq")
	require.NoError(t, err)
	for range 3 {
		require.NoError(t, e.m.EnsureBridge(e.ctx, cfg))
	}
	again, err := netlink.LinkByName("berth-tq")
	require.NoError(t, err)
	assert.Equal(t, br.Attrs().Index, again.Attrs().Index)
	assert.Equal(t, br.Attrs().HardwareAddr, again.Attrs().HardwareAddr)
	e.assertBaseRulesOnce("berth-tq")
	b, err := os.ReadFile("/proc/sys/net/ipv4/conf/berth-tq/route_localnet")
	require.NoError(t, err)
	assert.Equal(t, "1", strings.TrimSpace(string(b)))
	b, err = os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	require.NoError(t, err)
	assert.Equal(t, "1", strings.TrimSpace(string(b)))

	// A non-bridge interface of the name.
	attrs := netlink.NewLinkAttrs()
	attrs.Name = "berth-tv"
	require.NoError(t, netlink.LinkAdd(&netlink.Veth{LinkAttrs: attrs, PeerName: "berth-tv1", PeerTxQLen: -1}))
	defer delLinkByName("berth-tv")
	err = e.m.EnsureBridge(e.ctx, BridgeConfig{Name: "berth-tv", Subnet: netip.MustParsePrefix("10.99.0.0/16")})
	assert.ErrorIs(t, err, errdefs.ErrConflict)

	for _, bad := range []BridgeConfig{
		{Name: "a-name-longer-than-15", Subnet: cfg.Subnet},
		{Name: "berth-tq", Subnet: netip.MustParsePrefix("10.88.0.1/16")},
		{Name: "berth-tq", Subnet: cfg.Subnet, Gateway: netip.MustParseAddr("10.89.0.1")},
	} {
		assert.ErrorIs(t, e.m.EnsureBridge(e.ctx, bad), errdefs.ErrInvalid, "%+v", bad)
	}
}

// assertBaseRulesOnce checks that repeated EnsureBridge calls left one
// copy of the base chains' rules.
func (e *env) assertBaseRulesOnce(bridges ...string) {
	e.t.Helper()
	c, err := nftables.New()
	require.NoError(e.t, err)
	tb := &nftables.Table{Name: e.m.NAT().Name(), Family: nftables.TableFamilyINet}
	want := map[string]int{"prerouting": 1, "output": 1, "hostports": 3, "postrouting": 2, "forward": 4}
	for _, br := range bridges {
		want[portmap.BridgeChain(br)] = 4
		want["nat-"+br] = 2
	}
	for chain, n := range want {
		rules, err := c.GetRules(tb, &nftables.Chain{Name: chain, Table: tb})
		require.NoError(e.t, err)
		assert.Len(e.t, rules, n, chain)
	}
}

// TestEnsureBridgeManyProcesses: four processes set up the same bridge at
// once (EEXIST races on the link, the address and the table).
func TestEnsureBridgeManyProcesses(t *testing.T) {
	e := newEnv(t)
	const br = "berth-tm"
	t.Cleanup(func() { assert.NoError(t, e.m.RemoveBridge(context.Background(), br)) })
	spec := strings.Join([]string{e.m.NAT().Name(), filepath.Join(e.dir, "networks"), br, "10.88.0.0/16", "10.88.0.1"}, ",")
	var cmds []*exec.Cmd
	var outs []*strings.Builder
	for range 4 {
		// Started from this (locked) goroutine, so the children are born
		// in the test's namespace.
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), workerEnv+"="+spec)
		out := &strings.Builder{}
		cmd.Stdout, cmd.Stderr = out, out
		require.NoError(t, cmd.Start())
		cmds, outs = append(cmds, cmd), append(outs, out)
	}
	for i, cmd := range cmds {
		assert.NoError(t, cmd.Wait(), outs[i].String())
	}
	link, err := netlink.LinkByName(br)
	require.NoError(t, err)
	addrs, err := netlink.AddrList(link, netlink.FAMILY_V4)
	require.NoError(t, err)
	assert.Len(t, addrs, 1)
	e.assertBaseRulesOnce(br)
}

// TestAttachReleaseTiming measures the hot path (reported, not asserted).
func TestAttachReleaseTiming(t *testing.T) {
	e := newEnv(t)
	e.bridge("berth-tt", "10.88.0.0/16", false)
	const n = 20
	var attach, release, attachP, releaseP time.Duration
	for i := range n {
		for _, ports := range [][]string{nil, {"80", "127.0.0.1::81"}} {
			id := fmt.Sprintf("t%d-%d", i, len(ports))
			pm, _ := portmap.ParseAll(ports)
			addr, err := e.pools["berth-tt"].Allocate(e.ctx, id)
			require.NoError(t, err)
			start := time.Now()
			_, err = e.m.Attach(e.ctx, AttachRequest{ContainerID: id, NetnsPath: e.netnsPath(id),
				Bridge: "berth-tt", Address: addr, Gateway: e.gws["berth-tt"], Ports: pm})
			require.NoError(t, err)
			mid := time.Now()
			require.NoError(t, e.m.Release(e.ctx, id, e.netnsPath(id)))
			end := time.Now()
			require.NoError(t, e.pools["berth-tt"].Release(e.ctx, id))
			if os.Getenv("BERTH_TIMING_IDLE") != "" {
				time.Sleep(200 * time.Millisecond) // let the kernel finish tearing the namespace down
			}
			if ports == nil {
				attach += mid.Sub(start)
				release += end.Sub(mid)
			} else {
				attachP += mid.Sub(start)
				releaseP += end.Sub(mid)
			}
		}
	}
	t.Logf("no ports:  attach %v, release %v (mean of %d)", attach/n, release/n, n)
	t.Logf("two ports: attach %v, release %v (mean of %d)", attachP/n, releaseP/n, n)
}

// TestIPv6Endpoint: an IPv6-only network. The host reaches a published
// port through its own address on the bridge (locally generated traffic,
// DNATed in the output chain; no IPv6 forwarding needed for that).
func TestIPv6Endpoint(t *testing.T) {
	e := newEnv(t)
	dumpOnFailure(t)
	e.bridge("berth-t6", "fd00:88::/64", false)
	ep := e.attach("six", "berth-t6", "80")
	assert.Equal(t, "fd00:88::2/64", ep.Address.String())
	assert.Equal(t, "fd00:88::1", ep.Gateway.String())
	serveTCP(t, ep.NetnsPath, 80)

	// The container answers neighbour solicitations for its address once
	// it has joined the address's solicited-node group, which the kernel
	// does from a work item that needs rtnl. When many namespaces are
	// being torn down at once (other tests), that can take longer than
	// ND's 3 s, so a first connect may fail with EHOSTUNREACH: retry, as
	// a client would.
	var seen string
	var err error
	for deadline := time.Now().Add(20 * time.Second); ; {
		seen, err = dialTCP(fmt.Sprintf("[fd00:88::1]:%d", ep.Ports[0].HostPort), 5*time.Second)
		if err == nil || !errors.Is(err, unix.EHOSTUNREACH) || time.Now().After(deadline) {
			break
		}
	}
	require.NoError(t, err)
	assert.Equal(t, "fd00:88::1", hostOnly(seen))
	seen, err = dialTCP("[fd00:88::2]:80", 5*time.Second)
	require.NoError(t, err)
	assert.Equal(t, "fd00:88::1", hostOnly(seen))

	ifs, err := Interfaces(e.ctx, ep.NetnsPath)
	require.NoError(t, err)
	require.Len(t, ifs, 2)
	assert.Contains(t, ifs[1].Addrs, netip.MustParsePrefix("fd00:88::2/64"))
	assert.Equal(t, "fd00:88::1", ifs[1].Gateway.String())
}

func TestReleaseWithCancelledContext(t *testing.T) {
	e := newEnv(t)
	e.bridge("berth-tc", "10.88.0.0/16", false)
	ep := e.attach("k1", "berth-tc", "80")
	ctx, cancel := context.WithCancel(e.ctx)
	cancel()
	require.NoError(t, e.m.Release(ctx, "k1", ep.NetnsPath))
	ports, err := e.m.NAT().Ports(e.ctx, "k1")
	require.NoError(t, err)
	assert.Empty(t, ports)
	_, err = netlink.LinkByName(ep.HostIfName)
	assert.True(t, isLinkNotFound(err))
}
