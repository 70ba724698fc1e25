package berth_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/berth-run/berth"
	"github.com/berth-run/berth/internal/ipam"
	"github.com/berth-run/berth/internal/portmap"
	"github.com/berth-run/berth/internal/testutil"
)

// netEnv is a scratch store for network tests with a busybox image that
// exposes port 80. When the test ends its containers and networks are
// removed, the store's bridges and nft table too, and nothing of them may
// remain (checked through netlink, nftables and the IPAM state).
type netEnv struct {
	t   *testing.T
	ctx context.Context
	rt  *berth.Runtime

	mu    sync.Mutex
	ids   []string          // every container the test made
	pools map[string]string // network name -> subnet, for the leases check
}

func newNetEnv(t *testing.T) *netEnv {
	t.Helper()
	testutil.RequiresRoot(t)
	rt := newRuntime(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	f, err := os.Open(testutil.BusyboxTar(t))
	require.NoError(t, err)
	defer f.Close()
	_, err = rt.Import(ctx, f, "busybox", berth.WithChanges(`CMD ["sh"]`, "EXPOSE 80"))
	require.NoError(t, err)
	e := &netEnv{t: t, ctx: ctx, rt: rt, pools: map[string]string{}}
	t.Cleanup(e.teardown)
	return e
}

// teardown removes what the test left and checks that nothing of the
// store's networking remains.
func (e *netEnv) teardown() {
	t, ctx := e.t, context.Background()
	cs, err := e.rt.Containers(ctx)
	assert.NoError(t, err)
	for _, c := range cs {
		assert.NoError(t, c.Remove(ctx, berth.RemoveForce()), c.Name())
	}
	nets, err := e.rt.Networks(ctx)
	assert.NoError(t, err)
	for _, n := range nets {
		if n.Subnet() != "" {
			e.pools[n.Name()] = n.Subnet()
		}
		if !n.Predefined() {
			assert.NoError(t, n.Remove(ctx), n.Name())
		}
	}
	e.assertNoContainerLeftovers()
	def, err := e.rt.Network(ctx, "bridge")
	require.NoError(t, err)
	require.NoError(t, berth.RemoveStoreNetworks(ctx, e.rt))
	for _, n := range nets {
		if b := n.BridgeName(); b != "" {
			_, err := netlink.LinkByName(b)
			assert.Error(t, err, "bridge %s of network %s is left", b, n.Name())
		}
	}
	_, err = netlink.LinkByName(def.BridgeName())
	assert.Error(t, err, "default bridge left")
	assert.NotContains(t, nftTables(t), berth.NetworkTableName(e.rt), "nft table left")
}

// assertNoContainerLeftovers checks that no container of the test has a
// veth, a published port, an nft chain, an address lease or a netns left.
func (e *netEnv) assertNoContainerLeftovers() {
	t := e.t
	e.mu.Lock()
	ids := append([]string(nil), e.ids...)
	e.mu.Unlock()
	links, err := netlink.LinkList()
	require.NoError(t, err)
	for _, l := range links {
		for _, id := range ids {
			assert.NotEqual(t, "berth:"+id, l.Attrs().Alias, "veth %s of container %s left", l.Attrs().Name, id)
		}
	}
	table, err := portmap.NewTable(berth.NetworkTableName(e.rt), filepath.Join(t.TempDir(), "lock"))
	require.NoError(t, err)
	inUse, err := table.InUse(context.Background())
	require.NoError(t, err)
	assert.Empty(t, inUse, "published ports left")
	for _, ch := range nftChains(t, berth.NetworkTableName(e.rt)) {
		assert.False(t, strings.HasPrefix(ch, "ctr-"), "container chain %s left", ch)
	}
	for name, subnet := range e.pools {
		sn := netip.MustParsePrefix(subnet)
		pool, err := ipam.Open(filepath.Join(e.rt.Root(), "networks", name+".ipam"), sn, netip.Addr{})
		require.NoError(t, err)
		leases, err := pool.Leases(context.Background())
		require.NoError(t, err)
		assert.Empty(t, leases, "leases left in network %s", name)
	}
	ents, _ := os.ReadDir(berth.NetnsDir(e.rt))
	assert.Empty(t, ents, "netns files left")
	assertThreadsInHostNetns(t)
	mi, err := os.ReadFile("/proc/self/mountinfo")
	require.NoError(t, err)
	assert.NotContains(t, string(mi), berth.NetnsDir(e.rt), "netns mounts left")
}

func nftTables(t *testing.T) []string {
	c, err := nftables.New()
	require.NoError(t, err)
	tables, err := c.ListTablesOfFamily(nftables.TableFamilyINet)
	require.NoError(t, err)
	var out []string
	for _, tb := range tables {
		out = append(out, tb.Name)
	}
	return out
}

func nftChains(t *testing.T, table string) []string {
	c, err := nftables.New()
	require.NoError(t, err)
	chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyINet)
	require.NoError(t, err)
	var out []string
	for _, ch := range chains {
		if ch.Table.Name == table {
			out = append(out, ch.Name)
		}
	}
	return out
}

// start runs a container that keeps running; it is removed when the test
// ends.
func (e *netEnv) start(spec berth.Spec, opts ...berth.RunOption) *berth.Container {
	e.t.Helper()
	if spec.Image == "" {
		spec.Image = "busybox"
	}
	c, err := e.rt.Run(e.ctx, spec, opts...)
	require.NoError(e.t, err)
	e.track(c.ID())
	return c
}

func (e *netEnv) track(id string) {
	e.mu.Lock()
	e.ids = append(e.ids, id)
	e.mu.Unlock()
}

// output runs a container to its end and returns its exit code and
// output (stdout and stderr).
func (e *netEnv) output(spec berth.Spec) (int, string) {
	e.t.Helper()
	if spec.Image == "" {
		spec.Image = "busybox"
	}
	var out syncBuffer
	c, err := e.rt.Run(e.ctx, spec, berth.WithStdout(&out), berth.WithStderr(&out))
	require.NoError(e.t, err)
	e.track(c.ID())
	code, err := c.Wait(e.ctx)
	require.NoError(e.t, err)
	require.NoError(e.t, c.Remove(e.ctx))
	return code, out.String()
}

// hostNetns is the network namespace this test binary started in, read
// while it had one thread.
var hostNetns, _ = os.Readlink("/proc/thread-self/ns/net")

// assertThreadsInHostNetns checks that no thread of this process was left
// in another network namespace (a container's, which it would keep
// alive after the container's removal).
func assertThreadsInHostNetns(t *testing.T) {
	t.Helper()
	tasks, err := os.ReadDir("/proc/self/task")
	require.NoError(t, err)
	for _, task := range tasks {
		ns, err := os.Readlink("/proc/self/task/" + task.Name() + "/ns/net")
		if err != nil {
			continue // ended meanwhile
		}
		assert.Equal(t, hostNetns, ns, "thread %s is in another network namespace", task.Name())
	}
}

// Forking into a container's namespaces (run, exec) happens on a thread
// that joins them and then ends; none may stay behind in them, holding a
// removed container's namespace. (Go cannot end the main thread: it
// parked it for ever, in the namespace, until this was fixed.)
func TestNoThreadStaysInContainerNetns(t *testing.T) {
	e := newNetEnv(t)
	for range 6 {
		c := e.start(berth.Spec{Cmd: []string{"sleep", "600"}})
		for range 3 {
			p, err := c.Exec(e.ctx, berth.ExecSpec{Cmd: []string{"true"}})
			require.NoError(t, err)
			code, err := p.Wait(e.ctx)
			require.NoError(t, err)
			require.Equal(t, 0, code)
		}
		require.NoError(t, c.Remove(e.ctx, berth.RemoveForce()))
		code, out := e.output(berth.Spec{Cmd: []string{"true"}})
		require.Equal(t, 0, code, out)
	}
	e.assertNoContainerLeftovers()
}

// A program that runs containers on bridge networks keeps no descriptor of
// theirs once their removal is over: a socket left open in a container's network namespace (until
// the garbage collector closed it) kept the namespace alive after the
// removal, and the removal then waited for the veths in vain.
func TestBridgeRunsLeaveNoDescriptors(t *testing.T) {
	e := newNetEnv(t)
	e.output(berth.Spec{Cmd: []string{"true"}})      // the bridge and the table exist
	defer debug.SetGCPercent(debug.SetGCPercent(-1)) // no finalizer closes a leaked file
	time.Sleep(100 * time.Millisecond)               // its requests still in the kernel end
	before := openFds(t)
	for range 5 {
		code, out := e.output(berth.Spec{Cmd: []string{"true"}})
		require.Equal(t, 0, code, out)
	}
	// A veth deletion's request may still be finishing in the kernel
	// (~20 ms) on its own goroutine, with its socket: wait for it.
	after := openFds(t)
	for deadline := time.Now().Add(2 * time.Second); len(after) > len(before) && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		after = openFds(t)
	}
	assert.Equal(t, before, after, "descriptors of this process")
}

// openFds lists this process's open descriptors with what they are.
func openFds(t *testing.T) []string {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	var out []string
	for _, e := range ents {
		l, _ := os.Readlink("/proc/self/fd/" + e.Name())
		out = append(out, e.Name()+" "+l)
	}
	return out
}

// httpd is the command of a container serving "hello from NAME" on port 80.
func httpd(name string) []string {
	return []string{"sh", "-c", "mkdir -p /www && echo hello from " + name + " > /www/index.html && exec httpd -f -p 80 -h /www"}
}

// httpGet fetches / from addr over a connection made by dial, retrying
// while the server comes up.
func httpGet(dial func() (net.Conn, error)) (string, error) {
	var last error
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		conn, err := dial()
		if err != nil {
			last = err
			continue
		}
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		_, err = io.WriteString(conn, "GET /index.html HTTP/1.0\r\n\r\n")
		var b []byte
		if err == nil {
			b, err = io.ReadAll(conn)
		}
		conn.Close()
		if err == nil && bytes.Contains(b, []byte("200 OK")) {
			_, body, _ := bytes.Cut(b, []byte("\r\n\r\n"))
			return strings.TrimSpace(string(body)), nil
		}
		last = fmt.Errorf("answer %q: %v", b, err)
	}
	return "", last
}

func dialer(addr string) func() (net.Conn, error) {
	return func() (net.Conn, error) { return net.DialTimeout("tcp", addr, 5*time.Second) }
}

// freePort returns a port free on 127.0.0.1 for proto.
func freePort(t *testing.T, proto string) int {
	t.Helper()
	if proto == "udp" {
		c, err := net.ListenPacket("udp4", "127.0.0.1:0")
		require.NoError(t, err)
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	}
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// remoteNetns is a network namespace standing for a remote client,
// linked to the host by a veth pair on a /30 of the benchmarking range
// 198.18.0.0/15 (never one of berth's subnets). It returns the namespace
// and the host's address on the link.
func remoteNetns(t *testing.T) (netns.NsHandle, netip.Addr) {
	t.Helper()
	ns := testutil.NewNetns(t)
	b := make([]byte, 1)
	_, _ = rand.Read(b)
	hostAddr := netip.AddrFrom4([4]byte{198, 18, b[0], 1})
	peerAddr := netip.AddrFrom4([4]byte{198, 18, b[0], 2})
	host, peer := "bt"+randHex(4), "btp"+randHex(4)
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: host}, PeerName: peer, PeerNamespace: netlink.NsFd(int(ns))}
	require.NoError(t, netlink.LinkAdd(veth))
	t.Cleanup(func() {
		if l, err := netlink.LinkByName(host); err == nil {
			assert.NoError(t, netlink.LinkDel(l))
		}
	})
	hl, err := netlink.LinkByName(host)
	require.NoError(t, err)
	require.NoError(t, netlink.AddrAdd(hl, &netlink.Addr{IPNet: &net.IPNet{IP: hostAddr.AsSlice(), Mask: net.CIDRMask(30, 32)}}))
	require.NoError(t, netlink.LinkSetUp(hl))
	err = testutil.InNetns(ns, func() error {
		for _, name := range []string{"lo", peer} {
			l, err := netlink.LinkByName(name)
			if err != nil {
				return err
			}
			if err := netlink.LinkSetUp(l); err != nil {
				return err
			}
		}
		pl, _ := netlink.LinkByName(peer)
		if err := netlink.AddrAdd(pl, &netlink.Addr{IPNet: &net.IPNet{IP: peerAddr.AsSlice(), Mask: net.CIDRMask(30, 32)}}); err != nil {
			return err
		}
		return netlink.RouteAdd(&netlink.Route{LinkIndex: pl.Attrs().Index, Gw: hostAddr.AsSlice()})
	})
	require.NoError(t, err)
	return ns, hostAddr
}

func TestPublishedPortTCPFromLoopbackAndRemote(t *testing.T) {
	e := newNetEnv(t)
	port := freePort(t, "tcp")
	ports, err := berth.ParsePorts(fmt.Sprintf("%d:80", port))
	require.NoError(t, err)
	c := e.start(berth.Spec{Name: "web", Cmd: httpd("web"), Ports: ports})

	body, err := httpGet(dialer(fmt.Sprintf("127.0.0.1:%d", port)))
	require.NoError(t, err)
	assert.Equal(t, "hello from web", body)

	remote, hostAddr := remoteNetns(t)
	body, err = httpGet(func() (conn net.Conn, err error) {
		err = testutil.InNetns(remote, func() error {
			conn, err = net.DialTimeout("tcp", fmt.Sprintf("%s:%d", hostAddr, port), 5*time.Second)
			return err
		})
		return conn, err
	})
	require.NoError(t, err, "from a remote namespace")
	assert.Equal(t, "hello from web", body)

	ins, err := c.Inspect(e.ctx)
	require.NoError(t, err)
	assert.Equal(t, []berth.PortBindingJSON{{HostIP: "0.0.0.0", HostPort: fmt.Sprint(port)}}, ins.NetworkSettings.Ports["80/tcp"])
	ns := ins.NetworkSettings
	assert.NotEmpty(t, ns.IPAddress)
	assert.Equal(t, 16, ns.IPPrefixLen)
	assert.NotEmpty(t, ns.Gateway)
	assert.True(t, strings.HasPrefix(ns.MacAddress, "02:42:"), ns.MacAddress)
	assert.Equal(t, filepath.Join(berth.NetnsDir(e.rt), c.ID()), ns.SandboxKey)
	require.Contains(t, ns.Networks, "bridge")

	// The container's own /etc/hosts names it; its resolv.conf has no
	// loopback resolvers.
	code, out := e.output(berth.Spec{Cmd: []string{"sh", "-c", "cat /etc/hosts /etc/resolv.conf; hostname"}})
	assert.Equal(t, 0, code, out)
	assert.NotContains(t, out, "nameserver 127.")

	require.NoError(t, c.Remove(e.ctx, berth.RemoveForce()))
	e.assertNoContainerLeftovers()
}

func TestPublishedPortUDP(t *testing.T) {
	e := newNetEnv(t)
	port := freePort(t, "udp")
	ports, err := berth.ParsePorts(fmt.Sprintf("%d:5353/udp", port))
	require.NoError(t, err)
	c := e.start(berth.Spec{Cmd: []string{"sleep", "600"}, Ports: ports})
	ins, err := c.Inspect(e.ctx)
	require.NoError(t, err)
	assert.Equal(t, []berth.PortBindingJSON{{HostIP: "0.0.0.0", HostPort: fmt.Sprint(port)}}, ins.NetworkSettings.Ports["5353/udp"])

	// busybox's nc here has no UDP mode: the echo server's socket is
	// opened inside the container's network namespace by the test.
	var srv net.PacketConn
	require.NoError(t, testutil.InNetnsPath(ins.NetworkSettings.SandboxKey, func() (err error) {
		srv, err = net.ListenPacket("udp4", ":5353")
		return err
	}))
	go func() {
		buf := make([]byte, 512)
		for {
			n, from, err := srv.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = srv.WriteTo(append([]byte("echo "), buf[:n]...), from)
		}
	}()
	conn, err := net.Dial("udp4", fmt.Sprintf("127.0.0.1:%d", port))
	require.NoError(t, err)
	defer conn.Close()
	var got string
	for i := 0; i < 50 && got == ""; i++ {
		_, err := conn.Write([]byte("ping"))
		require.NoError(t, err)
		_ = conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		buf := make([]byte, 512)
		if n, err := conn.Read(buf); err == nil {
			got = string(buf[:n])
		}
	}
	assert.Equal(t, "echo ping", got)
	srv.Close()
}

func TestPublishAllExposedPorts(t *testing.T) {
	e := newNetEnv(t)
	c := e.start(berth.Spec{Cmd: httpd("p"), PublishAll: true})
	ins, err := c.Inspect(e.ctx)
	require.NoError(t, err)
	b := ins.NetworkSettings.Ports["80/tcp"]
	require.Len(t, b, 1)
	assert.Equal(t, "0.0.0.0", b[0].HostIP)
	assert.NotEqual(t, "", b[0].HostPort)
	body, err := httpGet(dialer("127.0.0.1:" + b[0].HostPort))
	require.NoError(t, err)
	assert.Equal(t, "hello from p", body)
	assert.True(t, ins.HostConfig.PublishAllPorts)

	// -p for the exposed port wins over -P's random one.
	port := freePort(t, "tcp")
	ports, err := berth.ParsePorts(fmt.Sprintf("127.0.0.1:%d:80", port))
	require.NoError(t, err)
	c2 := e.start(berth.Spec{Cmd: httpd("p2"), PublishAll: true, Ports: ports})
	ins, err = c2.Inspect(e.ctx)
	require.NoError(t, err)
	assert.Equal(t, []berth.PortBindingJSON{{HostIP: "127.0.0.1", HostPort: fmt.Sprint(port)}}, ins.NetworkSettings.Ports["80/tcp"])
}

func TestUserNetworkNamesAliasesAndIsolation(t *testing.T) {
	e := newNetEnv(t)
	_, err := e.rt.CreateNetwork(e.ctx, "front")
	require.NoError(t, err)
	back, err := e.rt.CreateNetwork(e.ctx, "back", berth.WithSubnet("10.123.0.0/24"), berth.WithGateway("10.123.0.254"))
	require.NoError(t, err)
	assert.Equal(t, "10.123.0.0/24", back.Subnet())
	assert.Equal(t, "10.123.0.254", back.Gateway())

	web := e.start(berth.Spec{Name: "web", Network: "front", NetworkAliases: []string{"www"}, Cmd: httpd("web")})
	e.start(berth.Spec{Name: "api", Network: "back", Cmd: httpd("api"), IPAddress: "10.123.0.7"})
	// A peer on the same network reaches it by name and by alias.
	code, out := e.output(berth.Spec{Network: "front", Cmd: []string{"sh", "-c",
		"for i in $(seq 100); do wget -qO- http://web/index.html && break; sleep 0.1; done; wget -qO- http://www/index.html; ping -c1 web >/dev/null && echo ping-ok"}})
	assert.Equal(t, 0, code, out)
	assert.Equal(t, "hello from web\nhello from web\nping-ok\n", out)

	// The running web learnt about later peers in its /etc/hosts.
	client := e.start(berth.Spec{Name: "client", Network: "front", Cmd: []string{"sleep", "600"}})
	hosts, err := os.ReadFile(filepath.Join(e.rt.Root(), "containers", web.ID(), "hosts"))
	require.NoError(t, err)
	assert.Contains(t, string(hosts), "\tclient\t")
	require.NoError(t, client.Remove(e.ctx, berth.RemoveForce()))
	hosts, err = os.ReadFile(filepath.Join(e.rt.Root(), "containers", web.ID(), "hosts"))
	require.NoError(t, err)
	assert.NotContains(t, string(hosts), "client")

	// The fixed address was given; another network cannot reach it,
	// nor resolve names across networks.
	apiIns := inspect(t, e, "api")
	assert.Equal(t, "10.123.0.7", apiIns.NetworkSettings.Networks["back"].IPAddress)
	assert.Equal(t, "10.123.0.254", apiIns.NetworkSettings.Networks["back"].Gateway)
	webIP := inspect(t, e, "web").NetworkSettings.Networks["front"].IPAddress
	code, out = e.output(berth.Spec{Network: "back", Cmd: []string{"sh", "-c",
		"wget -qO- http://api/index.html; timeout 3 wget -qO- http://" + webIP + "/index.html 2>/dev/null || echo blocked; wget -qO- http://web/ 2>&1 | grep -q 'bad address' && echo unresolved"}})
	assert.Equal(t, "hello from api\nblocked\nunresolved\n", out, "exit %d", code)

	// The default bridge resolves no container names (docker).
	e.start(berth.Spec{Name: "plain", Cmd: httpd("plain")})
	_, out = e.output(berth.Spec{Cmd: []string{"sh", "-c", "wget -qO- http://plain/ 2>&1 | grep -q 'bad address' && echo unresolved"}})
	assert.Equal(t, "unresolved\n", out)

	// A network with running containers cannot go.
	n, err := e.rt.Network(e.ctx, "front")
	require.NoError(t, err)
	err = n.Remove(e.ctx)
	assert.ErrorIs(t, err, berth.ErrConflict)
	assert.Contains(t, err.Error(), "has active endpoints")
	ni, err := n.Inspect(e.ctx)
	require.NoError(t, err)
	require.Contains(t, ni.Containers, web.ID())
	assert.Equal(t, "web", ni.Containers[web.ID()].Name)
	assert.Equal(t, webIP+"/16", ni.Containers[web.ID()].IPv4Address)
}

func inspect(t *testing.T, e *netEnv, name string) *berth.ContainerInspect {
	t.Helper()
	c, err := e.rt.Container(e.ctx, name)
	require.NoError(t, err)
	ins, err := c.Inspect(e.ctx)
	require.NoError(t, err)
	return ins
}

func TestNetworkModesHostNoneContainer(t *testing.T) {
	e := newNetEnv(t)
	def, err := e.rt.Network(e.ctx, "bridge")
	require.NoError(t, err)

	// host: the host's interfaces (this store's bridge among them).
	code, out := e.output(berth.Spec{Network: "host", Cmd: []string{"cat", "/proc/net/dev"}})
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, def.BridgeName()+":")
	assert.Contains(t, out, "lo:")

	// none: only lo.
	code, out = e.output(berth.Spec{Network: "none", Cmd: []string{"sh", "-c", "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '"}})
	require.Equal(t, 0, code, out)
	assert.Equal(t, "lo\n", out)

	// container:X shares X's interfaces and address.
	x := e.start(berth.Spec{Name: "xx", Cmd: []string{"sleep", "600"}})
	ip := inspect(t, e, "xx").NetworkSettings.IPAddress
	code, out = e.output(berth.Spec{Network: "container:xx", Cmd: []string{"ip", "-4", "-o", "addr"}})
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, ip+"/")
	_ = x
}

func TestRestartTakesNewAddressAndStoppedKeepsNone(t *testing.T) {
	e := newNetEnv(t)
	_, err := e.rt.CreateNetwork(e.ctx, "rs")
	require.NoError(t, err)
	c := e.start(berth.Spec{Network: "rs", Cmd: []string{"sleep", "600"}, PublishAll: true})
	ins, err := c.Inspect(e.ctx)
	require.NoError(t, err)
	require.NotEmpty(t, ins.NetworkSettings.Networks["rs"].IPAddress)
	require.NotEmpty(t, ins.NetworkSettings.Ports["80/tcp"])
	zero := time.Duration(0)
	require.NoError(t, c.Stop(e.ctx, &zero))
	ins, err = c.Inspect(e.ctx)
	require.NoError(t, err)
	assert.Empty(t, ins.NetworkSettings.IPAddress)
	assert.Empty(t, ins.NetworkSettings.Ports)
	require.Contains(t, ins.NetworkSettings.Networks, "rs")
	assert.Empty(t, ins.NetworkSettings.Networks["rs"].IPAddress)
	e.assertNoContainerLeftovers()

	require.NoError(t, c.Start(e.ctx))
	ins, err = c.Inspect(e.ctx)
	require.NoError(t, err)
	assert.NotEmpty(t, ins.NetworkSettings.Networks["rs"].IPAddress)
	assert.NotEmpty(t, ins.NetworkSettings.Ports["80/tcp"])
}

func TestConnectDisconnectRunning(t *testing.T) {
	e := newNetEnv(t)
	_, err := e.rt.CreateNetwork(e.ctx, "extra", berth.WithSubnet("10.124.0.0/24"))
	require.NoError(t, err)
	peer := e.start(berth.Spec{Name: "peer", Network: "extra", Cmd: httpd("peer")})
	c := e.start(berth.Spec{Name: "multi", Cmd: []string{"sleep", "600"}})

	require.NoError(t, c.Connect(e.ctx, "extra", berth.WithNetworkAliases("m2"), berth.WithNetworkIP("10.124.0.50")))
	assert.ErrorIs(t, c.Connect(e.ctx, "extra"), berth.ErrConflict)
	ins, err := c.Inspect(e.ctx)
	require.NoError(t, err)
	require.Contains(t, ins.NetworkSettings.Networks, "extra")
	assert.Equal(t, "10.124.0.50", ins.NetworkSettings.Networks["extra"].IPAddress)

	// The second network is eth1, and reaches the peer by name.
	var out syncBuffer
	p, err := c.Exec(e.ctx, berth.ExecSpec{Cmd: []string{"sh", "-c",
		"ip -o -4 addr show eth1; for i in $(seq 100); do wget -qO- http://peer/index.html && break; sleep 0.1; done"}, Stdout: &out, Stderr: &out})
	require.NoError(t, err)
	code, err := p.Wait(e.ctx)
	require.NoError(t, err)
	assert.Equal(t, 0, code, out.String())
	assert.Contains(t, out.String(), "10.124.0.50/24")
	assert.Contains(t, out.String(), "hello from peer")
	hosts, err := os.ReadFile(filepath.Join(e.rt.Root(), "containers", c.ID(), "hosts"))
	require.NoError(t, err)
	assert.Contains(t, string(hosts), "\tpeer\t")
	hosts, err = os.ReadFile(filepath.Join(e.rt.Root(), "containers", peer.ID(), "hosts"))
	require.NoError(t, err)
	assert.Contains(t, string(hosts), "10.124.0.50\tmulti\tm2\t")
	ifs := containerInterfaces(t, ins.NetworkSettings.SandboxKey)
	assert.Contains(t, ifs, "eth1")

	require.NoError(t, c.Disconnect(e.ctx, "extra", false))
	assert.ErrorIs(t, c.Disconnect(e.ctx, "extra", false), berth.ErrNotFound)
	assert.NotContains(t, containerInterfaces(t, ins.NetworkSettings.SandboxKey), "eth1")
	hosts, err = os.ReadFile(filepath.Join(e.rt.Root(), "containers", peer.ID(), "hosts"))
	require.NoError(t, err)
	assert.NotContains(t, string(hosts), "multi")

	// Modes without a namespace of their own cannot be connected.
	h := e.start(berth.Spec{Network: "host", Cmd: []string{"sleep", "600"}})
	assert.ErrorIs(t, h.Connect(e.ctx, "extra"), berth.ErrInvalid)

	// A stopped container is connected at its next start.
	s, err := e.rt.Create(e.ctx, berth.Spec{Image: "busybox", Cmd: []string{"sleep", "600"}})
	require.NoError(t, err)
	e.track(s.ID())
	require.NoError(t, s.Connect(e.ctx, "extra"))
	require.NoError(t, s.Start(e.ctx))
	ins, err = s.Inspect(e.ctx)
	require.NoError(t, err)
	assert.NotEmpty(t, ins.NetworkSettings.Networks["bridge"].IPAddress)
	assert.NotEmpty(t, ins.NetworkSettings.Networks["extra"].IPAddress)
}

// containerInterfaces lists the interface names in a container's netns.
func containerInterfaces(t *testing.T, path string) []string {
	t.Helper()
	var names []string
	require.NoError(t, testutil.InNetnsPath(path, func() error {
		links, err := netlink.LinkList()
		for _, l := range links {
			names = append(names, l.Attrs().Name)
		}
		return err
	}))
	return names
}

func TestNetworkAPI(t *testing.T) {
	e := newNetEnv(t)
	ctx := e.ctx
	all, err := e.rt.Networks(ctx)
	require.NoError(t, err)
	var names []string
	for _, n := range all {
		names = append(names, n.Name()+"/"+n.Driver())
	}
	assert.Equal(t, []string{"bridge/bridge", "host/host", "none/null"}, names)
	for _, n := range all {
		assert.ErrorIs(t, n.Remove(ctx), berth.ErrInvalid, n.Name())
	}

	n, err := e.rt.CreateNetwork(ctx, "lab", berth.WithNetworkLabels(map[string]string{"team": "net"}), berth.WithInternal())
	require.NoError(t, err)
	assert.True(t, n.Internal())
	got, err := e.rt.Network(ctx, n.ID()[:10])
	require.NoError(t, err)
	assert.Equal(t, "lab", got.Name())
	ins, err := got.Inspect(ctx)
	require.NoError(t, err)
	assert.Equal(t, "lab", ins.Name)
	assert.Equal(t, n.ID(), ins.ID)
	assert.Equal(t, "local", ins.Scope)
	assert.Equal(t, "bridge", ins.Driver)
	assert.Equal(t, "default", ins.IPAM.Driver)
	require.Len(t, ins.IPAM.Config, 1)
	assert.Equal(t, n.Subnet(), ins.IPAM.Config[0].Subnet)
	assert.Equal(t, n.Gateway(), ins.IPAM.Config[0].Gateway)
	assert.True(t, ins.Internal)
	assert.Equal(t, map[string]string{"team": "net"}, ins.Labels)
	assert.Empty(t, ins.Containers)

	filtered, err := e.rt.Networks(ctx, "label=team=net")
	require.NoError(t, err)
	require.Len(t, filtered, 1)
	filtered, err = e.rt.Networks(ctx, "type=builtin")
	require.NoError(t, err)
	assert.Len(t, filtered, 3)
	filtered, err = e.rt.Networks(ctx, "driver=null")
	require.NoError(t, err)
	require.Len(t, filtered, 1)
	assert.Equal(t, "none", filtered[0].Name())
	_, err = e.rt.Networks(ctx, "colour=blue")
	assert.ErrorIs(t, err, berth.ErrInvalid)

	// An internal network's containers have no default route.
	code, out := e.output(berth.Spec{Network: "lab", Cmd: []string{"ip", "route"}})
	require.Equal(t, 0, code, out)
	assert.NotContains(t, out, "default")

	// Prune removes unused user networks only (system prune too).
	_, err = e.rt.CreateNetwork(ctx, "used")
	require.NoError(t, err)
	e.start(berth.Spec{Network: "used", Cmd: []string{"sleep", "600"}})
	_, err = e.rt.PruneNetworks(ctx, "until=nonsense")
	assert.ErrorIs(t, err, berth.ErrInvalid)
	pruned, err := e.rt.PruneNetworks(ctx, "label!=team=net")
	require.NoError(t, err)
	assert.Empty(t, pruned)
	pruned, err = e.rt.PruneNetworks(ctx, "until=1h")
	require.NoError(t, err)
	assert.Empty(t, pruned, "created less than an hour ago")
	rep, err := e.rt.Prune(ctx, berth.SystemPruneOptions{Filters: []string{"label=team"}})
	require.NoError(t, err)
	assert.Equal(t, []string{"lab"}, rep.Networks)
	_, err = e.rt.Network(ctx, "lab")
	assert.ErrorIs(t, err, berth.ErrNotFound)
}

func TestNetworkBadInputChangesNothing(t *testing.T) {
	e := newNetEnv(t)
	ctx := e.ctx
	_, err := e.rt.CreateNetwork(ctx, "taken", berth.WithSubnet("10.125.0.0/16"))
	require.NoError(t, err)
	before := networkNames(t, e)

	for _, tc := range []struct {
		name string
		opts []berth.NetworkOption
		kind error
		msg  string
	}{
		{"taken", nil, berth.ErrConflict, "already exists"},
		{"bridge", nil, berth.ErrConflict, "already exists"},
		{"other", []berth.NetworkOption{berth.WithSubnet("10.125.128.0/17")}, berth.ErrConflict, "Pool overlaps"},
		{"other", []berth.NetworkOption{berth.WithSubnet("127.0.0.0/24")}, berth.ErrConflict, "Pool overlaps"},
		{"other", []berth.NetworkOption{berth.WithSubnet("10.126.0.1/16")}, berth.ErrInvalid, "host bits"},
		{"other", []berth.NetworkOption{berth.WithSubnet("nonsense")}, berth.ErrInvalid, "invalid subnet"},
		{"other", []berth.NetworkOption{berth.WithGateway("10.0.0.1")}, berth.ErrInvalid, "needs a subnet"},
		{"other", []berth.NetworkOption{berth.WithSubnet("10.126.0.0/16"), berth.WithGateway("10.127.0.1")}, berth.ErrInvalid, "not a host address"},
		{"other", []berth.NetworkOption{berth.WithNetworkDriver("overlay")}, berth.ErrNotSupported, "not supported"},
		{"bad/name", nil, berth.ErrInvalid, "invalid network name"},
	} {
		_, err := e.rt.CreateNetwork(ctx, tc.name, tc.opts...)
		assert.ErrorIs(t, err, tc.kind, tc.name)
		if err != nil {
			assert.Contains(t, err.Error(), tc.msg)
		}
	}
	assert.Equal(t, before, networkNames(t, e))

	_, err = berth.ParsePorts("80:80:tcp")
	assert.ErrorIs(t, err, berth.ErrInvalid)
	_, err = berth.ParsePorts("99999:80")
	assert.ErrorIs(t, err, berth.ErrInvalid)

	for _, tc := range []struct {
		spec berth.Spec
		kind error
	}{
		{berth.Spec{Network: "nosuch"}, berth.ErrNotFound},
		{berth.Spec{Network: "container:nosuch"}, berth.ErrNotFound},
		{berth.Spec{NetworkAliases: []string{"a"}}, berth.ErrInvalid},
		{berth.Spec{IPAddress: "10.88.0.9"}, berth.ErrInvalid},
		{berth.Spec{Network: "taken", IPAddress: "10.1.0.9"}, berth.ErrInvalid},
		{berth.Spec{Network: "taken", IPAddress: "not-an-ip"}, berth.ErrInvalid},
		{berth.Spec{MacAddress: "zz:zz"}, berth.ErrInvalid},
		{berth.Spec{Ports: []berth.PortBinding{{HostIP: "nonsense", ContainerPort: 80}}}, berth.ErrInvalid},
		{berth.Spec{Ports: []berth.PortBinding{{HostPort: 90, HostPortEnd: 80, ContainerPort: 80}}}, berth.ErrInvalid},
	} {
		tc.spec.Image, tc.spec.Cmd = "busybox", []string{"true"}
		_, err := e.rt.Create(ctx, tc.spec)
		assert.ErrorIs(t, err, tc.kind, "%+v", tc.spec)
	}
	cs, err := e.rt.Containers(ctx)
	require.NoError(t, err)
	assert.Empty(t, cs)
	assert.Equal(t, before, networkNames(t, e))
}

func networkNames(t *testing.T, e *netEnv) []string {
	t.Helper()
	nets, err := e.rt.Networks(e.ctx)
	require.NoError(t, err)
	var out []string
	for _, n := range nets {
		out = append(out, n.Name()+"="+n.Subnet())
	}
	return out
}

func TestHostPortTakenLeavesNothing(t *testing.T) {
	e := newNetEnv(t)
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	ports, err := berth.ParsePorts(fmt.Sprintf("127.0.0.1:%d:80", port))
	require.NoError(t, err)
	_, err = e.rt.Run(e.ctx, berth.Spec{Image: "busybox", Name: "clash", Cmd: []string{"sleep", "600"}, Ports: ports})
	require.ErrorIs(t, err, berth.ErrConflict)
	assert.Contains(t, err.Error(), "already in use")
	c, err := e.rt.Container(e.ctx, "clash")
	require.NoError(t, err, "docker keeps the created container")
	e.track(c.ID())
	st, err := c.State(e.ctx)
	require.NoError(t, err)
	assert.False(t, st.Running)
	e.assertNoContainerLeftovers()

	// A port another berth container publishes is taken too.
	port2 := freePort(t, "tcp")
	ports, err = berth.ParsePorts(fmt.Sprintf("%d:80", port2))
	require.NoError(t, err)
	e.start(berth.Spec{Cmd: []string{"sleep", "600"}, Ports: ports})
	_, err = e.rt.Run(e.ctx, berth.Spec{Image: "busybox", Name: "clash2", Cmd: []string{"sleep", "600"}, Ports: ports, AutoRemove: true})
	require.ErrorIs(t, err, berth.ErrConflict)
	_, err = e.rt.Container(e.ctx, "clash2")
	assert.ErrorIs(t, err, berth.ErrNotFound, "--rm removes it")
}

// netWorker is a worker process (the test binary run again, see TestMain)
// whose standard output is read line by line and whose standard input
// tells it to finish when closed.
type netWorker struct {
	cmd   *exec.Cmd
	in    io.WriteCloser
	out   *bufio.Reader
	errb  *syncBuffer
	ended bool
}

// startNetWorker starts a worker of kind on rt's store with extra
// environment variables. It is stopped (stdin closed, waited for) when
// the test ends, if the test did not finish it.
func startNetWorker(t *testing.T, rt *berth.Runtime, kind string, env map[string]string) *netWorker {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "BERTH_TEST_WORKER="+kind, "BERTH_TEST_ROOT="+rt.Root(), "BERTH_TEST_RUNROOT="+rt.RunRoot())
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	w := &netWorker{cmd: cmd, in: in, out: bufio.NewReader(out), errb: &syncBuffer{}}
	cmd.Stderr = w.errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !w.ended {
			_ = w.finish()
		}
	})
	return w
}

func (w *netWorker) readLine() (string, error) {
	line, err := w.out.ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("worker output: %w", err)
	}
	return line[:len(line)-1], nil
}

// finish closes the worker's input and waits for it to exit.
func (w *netWorker) finish() error {
	w.ended = true
	w.in.Close()
	_, _ = io.Copy(io.Discard, w.out)
	return w.cmd.Wait()
}

// stderr is what the worker wrote to its standard error.
func (w *netWorker) stderr() string { return w.errb.String() }

// TestConcurrentContainersDistinctAddresses: worker processes start
// containers on one network at once; every container gets its own
// address, and removing them all leaves no lease.
func TestConcurrentContainersDistinctAddresses(t *testing.T) {
	e := newNetEnv(t)
	_, err := e.rt.CreateNetwork(e.ctx, "crowd")
	require.NoError(t, err)
	const workers, each = 5, 10
	var ws []*netWorker
	for i := 0; i < workers; i++ {
		ws = append(ws, startNetWorker(t, e.rt, "netrun", map[string]string{"BERTH_TEST_NETWORK": "crowd", "BERTH_TEST_COUNT": fmt.Sprint(each)}))
	}
	seen := map[string]string{}
	for _, w := range ws {
		for j := 0; j < each; j++ {
			line, err := w.readLine()
			require.NoError(t, err, w.stderr())
			id, ip, ok := strings.Cut(line, " ")
			require.True(t, ok, line)
			e.track(id)
			require.NotContains(t, seen, ip, "address %s given twice", ip)
			seen[ip] = id
		}
	}
	assert.Len(t, seen, workers*each)
	n, err := e.rt.Network(e.ctx, "crowd")
	require.NoError(t, err)
	ins, err := n.Inspect(e.ctx)
	require.NoError(t, err)
	assert.Len(t, ins.Containers, workers*each)
	// Every member's /etc/hosts lists all the others.
	for _, id := range []string{seen[firstKey(seen)]} {
		hosts, err := os.ReadFile(filepath.Join(e.rt.Root(), "containers", id, "hosts"))
		require.NoError(t, err)
		assert.Equal(t, workers*each+6, strings.Count(string(hosts), "\n"), string(hosts))
	}
	for _, w := range ws {
		require.NoError(t, w.finish(), w.stderr())
	}
	e.assertNoContainerLeftovers()
}

func firstKey(m map[string]string) string {
	for k := range m {
		return k
	}
	return ""
}
