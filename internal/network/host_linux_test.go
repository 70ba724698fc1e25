package network

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"

	"github.com/berth-run/berth/internal/ipam"
	"github.com/berth-run/berth/internal/portmap"
	"github.com/berth-run/berth/internal/testutil"
)

// TestHostNamespaceEndToEnd runs the whole path in the real host network
// namespace, as berth will: a bridge and a table with unique test names, a
// subnet no host route or address overlaps, a container whose published
// ports answer at 127.0.0.1 (the only address this test sends to). It
// leaves the host's other interfaces, routes and nft tables as they were,
// and removes everything it made.
func TestHostNamespaceEndToEnd(t *testing.T) {
	testutil.RequiresRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	suffix := uniq()
	bridge := "berth-th" + suffix // 14 bytes
	dir := t.TempDir()

	tablesBefore := nftTables(t)
	linksBefore := linkNames(t)

	// A free subnet from a range the default berth0 does not start at,
	// so a concurrently running berth store is unlikely to race for it.
	host, err := ipam.HostPrefixes(ctx)
	require.NoError(t, err)
	var subnet netip.Prefix
	for _, i := range rand.Perm(50) {
		c := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(200 + i), 0, 0}), 16)
		if !slices.ContainsFunc(host, c.Overlaps) {
			subnet = c
			break
		}
	}
	require.True(t, subnet.IsValid(), "no free test subnet")
	gw, err := ipam.Gateway(subnet)
	require.NoError(t, err)

	m, err := New(Config{Table: "berth-test-" + suffix, StateDir: filepath.Join(dir, "networks")})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, m.NAT().Delete(context.Background())) })
	require.NoError(t, m.EnsureBridge(ctx, BridgeConfig{Name: bridge, Subnet: subnet, Gateway: gw}))
	t.Cleanup(func() { assert.NoError(t, m.RemoveBridge(context.Background(), bridge)) })
	pool, err := ipam.Open(filepath.Join(dir, "networks", bridge+".ipam"), subnet, gw)
	require.NoError(t, err)

	id := "host-e2e-" + suffix
	addr, err := pool.Allocate(ctx, id)
	require.NoError(t, err)
	pm, err := portmap.ParseAll([]string{"127.0.0.1::80", "80/tcp", "53/udp"})
	require.NoError(t, err)
	nsPath := filepath.Join(dir, "netns", id)
	ep, err := m.Attach(ctx, AttachRequest{ContainerID: id, NetnsPath: nsPath, Bridge: bridge,
		Address: addr, Gateway: gw, Ports: pm})
	require.NoError(t, err)
	released := false
	t.Cleanup(func() {
		if !released {
			assert.NoError(t, m.Release(context.Background(), id, nsPath))
		}
	})
	serveTCP(t, nsPath, 80)
	serveUDP(t, nsPath, 53)

	for _, p := range ep.Ports[:2] {
		seen, err := dialTCP(fmt.Sprintf("127.0.0.1:%d", p.HostPort), 5*time.Second)
		require.NoError(t, err, p.String())
		assert.Equal(t, gw.String(), hostOnly(seen))
	}
	got, err := udpRoundTrip(fmt.Sprintf("127.0.0.1:%d", ep.Ports[2].HostPort))
	require.NoError(t, err)
	assert.Contains(t, got, "ping")

	require.NoError(t, m.Release(ctx, id, nsPath))
	released = true
	require.NoError(t, pool.Release(ctx, id))
	_, err = netlink.LinkByName(ep.HostIfName)
	assert.True(t, isLinkNotFound(err))
	assert.NoFileExists(t, nsPath)
	require.NoError(t, m.RemoveBridge(ctx, bridge))
	require.NoError(t, m.NAT().Delete(ctx))

	assert.Equal(t, tablesBefore, nftTables(t), "the host's nft tables are as they were")
	c, err := nftables.New()
	require.NoError(t, err)
	_, err = c.ListTableOfFamily(m.NAT().Name(), nftables.TableFamilyINet)
	assert.Error(t, err, "the test's table is gone")
	assert.Equal(t, linksBefore, linkNames(t), "the host's links are as they were")
}

func nftTables(t *testing.T) []string {
	c, err := nftables.New()
	require.NoError(t, err)
	ts, err := c.ListTables()
	require.NoError(t, err)
	var out []string
	for _, tb := range ts {
		if len(tb.Name) >= 5 && tb.Name[:5] == "berth" {
			continue // berth tables of tests running beside this one
		}
		out = append(out, fmt.Sprintf("%d/%s", tb.Family, tb.Name))
	}
	slices.Sort(out)
	return out
}

// linkNames lists the host's links other than berth test ones (other
// tests of the machine may add and remove theirs meanwhile).
func linkNames(t *testing.T) []string {
	links, err := netlink.LinkList()
	require.NoError(t, err)
	var out []string
	for _, l := range links {
		n := l.Attrs().Name
		if len(n) >= 5 && n[:5] == "berth" || len(n) == 12 && n[:2] == "vb" {
			continue
		}
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}
