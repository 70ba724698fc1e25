package portmap

import (
	"context"
	"net/netip"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/nftables"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"

	"github.com/berth-run/berth/internal/errdefs"
	"github.com/berth-run/berth/internal/testutil"
)

// newTestTable enters a fresh network namespace (with lo up, so that trial
// binds on 127.0.0.1 work) and returns a table there.
func newTestTable(t *testing.T) (*Table, context.Context) {
	testutil.EnterNetns(t)
	lo, err := netlink.LinkByName("lo")
	require.NoError(t, err)
	require.NoError(t, netlink.LinkSetUp(lo))
	tb, err := NewTable("berth-test", filepath.Join(t.TempDir(), "ports.lock"))
	require.NoError(t, err)
	ctx := context.Background()
	t.Cleanup(func() { assert.NoError(t, tb.Delete(ctx)) })
	return tb, ctx
}

func chainsOf(t *testing.T, table string) []string {
	c, err := nftables.New()
	require.NoError(t, err)
	all, err := c.ListChainsOfTableFamily(nftables.TableFamilyINet)
	require.NoError(t, err)
	var out []string
	for _, ch := range all {
		if ch.Table.Name == table {
			out = append(out, ch.Name)
		}
	}
	slices.Sort(out)
	return out
}

func TestTablePublishUnpublish(t *testing.T) {
	tb, ctx := newTestTable(t)
	require.NoError(t, tb.EnsureBridge(ctx, "br0", netip.MustParsePrefix("10.88.0.0/16"), false))
	require.NoError(t, tb.EnsureBridge(ctx, "br1", netip.MustParsePrefix("10.89.0.0/16"), true))
	assert.Equal(t, []string{"br-br0", "br-br1", "forward", "hostports", "nat-br0", "nat-br1", "output", "postrouting", "prerouting"},
		chainsOf(t, "berth-test"))

	ms, err := ParseAll([]string{"8080:80", "127.0.0.1::81/udp", "9000-9001:90-91"})
	require.NoError(t, err)
	got, err := tb.Publish(ctx, "c1", "br0", netip.MustParseAddr("10.88.0.2"), ms)
	require.NoError(t, err)
	require.Len(t, got, 4)
	assert.Equal(t, uint16(8080), got[0].HostPort)
	assert.NotZero(t, got[1].HostPort)
	assert.Equal(t, netip.MustParseAddr("127.0.0.1"), got[1].HostIP)

	// The same container on a second network.
	more, err := tb.Publish(ctx, "c1", "br1", netip.MustParseAddr("10.89.0.2"), []PortMapping{{HostPort: 7000, ContainerPort: 70, Protocol: "tcp"}})
	require.NoError(t, err)
	require.Len(t, more, 1)

	ports, err := tb.Ports(ctx, "c1")
	require.NoError(t, err)
	require.Len(t, ports, 5)
	assert.Equal(t, "br0", ports[0].Bridge)
	assert.Equal(t, got[1], ports[1].PortMapping)
	inUse, err := tb.InUse(ctx)
	require.NoError(t, err)
	assert.Len(t, inUse, 5)
	for _, b := range inUse {
		assert.Equal(t, "c1", b.ContainerID)
	}

	// Unpublish one network: the other's ports stay.
	require.NoError(t, tb.Unpublish(ctx, "c1", "br0"))
	ports, err = tb.Ports(ctx, "c1")
	require.NoError(t, err)
	require.Len(t, ports, 1)
	assert.Equal(t, uint16(7000), ports[0].HostPort)
	inUse, err = tb.InUse(ctx)
	require.NoError(t, err)
	assert.Len(t, inUse, 1)

	// The rest, twice.
	require.NoError(t, tb.Unpublish(ctx, "c1", ""))
	require.NoError(t, tb.Unpublish(ctx, "c1", ""))
	assert.NotContains(t, chainsOf(t, "berth-test"), ContainerChain("c1"))
	inUse, err = tb.InUse(ctx)
	require.NoError(t, err)
	assert.Empty(t, inUse)

	// The ports are free again.
	_, err = tb.Publish(ctx, "c2", "br0", netip.MustParseAddr("10.88.0.3"), ms[:1])
	require.NoError(t, err)

	require.NoError(t, tb.RemoveBridge(ctx, "br1"))
	require.NoError(t, tb.RemoveBridge(ctx, "br1"))
	assert.NotContains(t, chainsOf(t, "berth-test"), "br-br1")
	assert.NotContains(t, chainsOf(t, "berth-test"), "nat-br1")
}

func TestTableConflicts(t *testing.T) {
	tb, ctx := newTestTable(t)
	require.NoError(t, tb.EnsureBridge(ctx, "br0", netip.MustParsePrefix("10.88.0.0/16"), false))
	cip := netip.MustParseAddr("10.88.0.2")
	pub := func(id string, specs ...string) ([]PortMapping, error) {
		ms, err := ParseAll(specs)
		require.NoError(t, err)
		return tb.Publish(ctx, id, "br0", cip, ms)
	}
	_, err := pub("a", "127.0.0.1:18080:80")
	require.NoError(t, err)

	_, err = pub("b", "18080:80")
	assert.ErrorIs(t, err, errdefs.ErrConflict)
	assert.ErrorContains(t, err, "0.0.0.0:18080/tcp is already published by container a")

	// Twice in one request.
	_, err = pub("b", "18081:80", "127.0.0.1:18081:81")
	assert.ErrorIs(t, err, errdefs.ErrConflict)
	assert.ErrorContains(t, err, "requested twice")
	// Nothing of the failed request was added.
	ports, err := tb.Ports(ctx, "b")
	require.NoError(t, err)
	assert.Empty(t, ports)

	// A range skips the taken port; a full range is a conflict.
	got, err := pub("b", "18080-18081:80")
	require.NoError(t, err)
	assert.Equal(t, uint16(18081), got[0].HostPort)
	_, err = pub("c", "127.0.0.1:18080-18081:80")
	assert.ErrorIs(t, err, errdefs.ErrConflict)
	assert.ErrorContains(t, err, "no free host port in 18080-18081")

	// IPv6 host address for an IPv4 container.
	_, err = pub("c", "[::1]:18090:80")
	assert.ErrorIs(t, err, errdefs.ErrNotSupported)
}

func TestTableIPv6Keys(t *testing.T) {
	tb, ctx := newTestTable(t)
	require.NoError(t, tb.EnsureBridge(ctx, "br6", netip.MustParsePrefix("fd00:88::/64"), false))
	cip := netip.MustParseAddr("fd00:88::2")
	ms, err := ParseAll([]string{"18080:80", "[::1]:18081:81"})
	require.NoError(t, err)
	got, err := tb.Publish(ctx, "v6", "br6", cip, ms)
	require.NoError(t, err)
	require.Len(t, got, 2)
	inUse, err := tb.InUse(ctx)
	require.NoError(t, err)
	var addrs []string
	for _, b := range inUse {
		addrs = append(addrs, b.String())
	}
	assert.ElementsMatch(t, []string{"[::]:18080->0/tcp", "[::1]:18081->0/tcp"}, addrs)
	// An IPv4 container may take the same port: another family.
	_, err = tb.Publish(ctx, "v4", "br6", netip.MustParseAddr("10.0.0.2"), ms[:1])
	require.NoError(t, err)
	require.NoError(t, tb.Unpublish(ctx, "v6", ""))
	require.NoError(t, tb.Unpublish(ctx, "v4", ""))
}

func TestTableDeleteIdempotent(t *testing.T) {
	tb, ctx := newTestTable(t)
	require.NoError(t, tb.Delete(ctx))
	require.NoError(t, tb.RemoveBridge(ctx, "br0"))
	require.NoError(t, tb.Unpublish(ctx, "nothing", ""))
	assert.Empty(t, chainsOf(t, "berth-test"))
	inUse, err := tb.InUse(ctx)
	require.NoError(t, err)
	assert.Empty(t, inUse)
}

func TestTableEnsureBridgeReconfigures(t *testing.T) {
	tb, ctx := newTestTable(t)
	require.NoError(t, tb.EnsureBridge(ctx, "br0", netip.MustParsePrefix("10.88.0.0/16"), true))
	masq := func() []string {
		c, err := nftables.New()
		require.NoError(t, err)
		s, err := c.GetSetByName(&nftables.Table{Name: "berth-test", Family: nftables.TableFamilyINet}, "masq")
		require.NoError(t, err)
		els, err := c.GetSetElements(s)
		require.NoError(t, err)
		var out []string
		for _, e := range els {
			out = append(out, string(e.Key[:3]))
		}
		return out
	}
	assert.Empty(t, masq(), "internal: no outbound NAT")
	// Same bridge name, now not internal and another subnet (say, a
	// network recreated after a crash left the old rules): updated.
	require.NoError(t, tb.EnsureBridge(ctx, "br0", netip.MustParsePrefix("10.99.0.0/16"), false))
	assert.Equal(t, []string{"br0"}, masq())
	rules, err := dumpRules("berth-test", BridgeChain("br0"))
	require.NoError(t, err)
	require.Len(t, rules, 4)
	assert.Equal(t, "berth bridge=br0 subnet=10.99.0.0/16 internal=false", rules[0].comment)
}
