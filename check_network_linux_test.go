package berth_test

import (
	"context"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"

	"github.com/berth-run/berth"
	"github.com/berth-run/berth/internal/ipam"
	"github.com/berth-run/berth/internal/network"
)

// TestCheckNetworkLeaks: an address lease and a veth on the store's
// bridge held by a container that does not exist (what a crash between
// allocating and recording leaves) are reported and released.
func TestCheckNetworkLeaks(t *testing.T) {
	e := newNetEnv(t)
	ctx := context.Background()
	// A container on the default network makes its bridge and pool.
	if code, out := e.output(berth.Spec{Image: "busybox", Cmd: []string{"true"}}); code != 0 {
		t.Fatalf("run: %d %s", code, out)
	}
	n, err := e.rt.Network(ctx, "bridge")
	require.NoError(t, err)
	ghost := strings.Repeat("6", 64)
	pool, err := ipam.Open(filepath.Join(e.rt.Root(), "networks", "bridge.ipam"), netip.MustParsePrefix(n.Subnet()), netip.MustParseAddr(n.Gateway()))
	require.NoError(t, err)
	addr, err := pool.Allocate(ctx, ghost)
	require.NoError(t, err)
	br, err := netlink.LinkByName(n.BridgeName())
	require.NoError(t, err)
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: network.VethName(ghost, n.BridgeName()), MasterIndex: br.Attrs().Index},
		PeerName: "vp" + ghost[:10]}
	require.NoError(t, netlink.LinkAdd(veth))
	t.Cleanup(func() { _ = netlink.LinkDel(veth) })
	require.NoError(t, netlink.LinkSetAlias(veth, "berth:"+ghost))

	want := []string{
		"container " + ghost[:12] + ": holds address " + addr.Addr().String() + " of network bridge, which does not exist",
		"container " + ghost[:12] + ": holds veth " + veth.Name + " on bridge " + n.BridgeName() + ", which does not exist",
	}
	probs, err := e.rt.Check(ctx)
	require.NoError(t, err)
	expectProblems(t, probs, false, want...)
	probs, err = e.rt.Check(ctx, berth.WithRepair())
	require.NoError(t, err)
	expectProblems(t, probs, true, want...)
	probs, err = e.rt.Check(ctx)
	require.NoError(t, err)
	expectProblems(t, probs, false)
	leases, err := pool.Leases(ctx)
	require.NoError(t, err)
	require.Empty(t, leases)
	_, err = netlink.LinkByName(veth.Name)
	require.Error(t, err, "the veth is still there")
}
