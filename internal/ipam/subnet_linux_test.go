package ipam

import (
	"context"
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"

	"github.com/berth-run/berth/internal/testutil"
)

// TestChooseSubnetAvoidsHostRoutes runs in a fresh netns where a bridge
// holds 10.88.3.1/24 and a route covers 10.89.0.0/17: the first free /16 is
// then 10.90.0.0/16.
func TestChooseSubnetAvoidsHostRoutes(t *testing.T) {
	testutil.EnterNetns(t)
	d := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "berth-test0"}}
	require.NoError(t, netlink.LinkAdd(d))
	require.NoError(t, netlink.LinkSetUp(d))
	addr, err := netlink.ParseAddr("10.88.3.1/24")
	require.NoError(t, err)
	require.NoError(t, netlink.AddrAdd(d, addr))
	_, dst, _ := net.ParseCIDR("10.89.0.0/17")
	require.NoError(t, netlink.RouteAdd(&netlink.Route{LinkIndex: d.Attrs().Index, Dst: dst}))
	// A default route must not count: it overlaps everything.
	require.NoError(t, netlink.RouteAdd(&netlink.Route{LinkIndex: d.Attrs().Index, Gw: net.ParseIP("10.88.3.254")}))

	got, err := ChooseSubnet(context.Background(), nil)
	require.NoError(t, err)
	assert.Equal(t, "10.90.0.0/16", got.String())
}
