package testutil

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
)

// RemoveBerthNetworking deletes what berth's networking made on the host
// for the scratch store at root and what outlives the store's directory:
// its bridges (labelled "berth-store:<root>") and its nft table
// ("berth-<hash of root>"). Tests and benchmarks that start containers
// on bridge networks of a scratch store call it when they end.
func RemoveBerthNetworking(t testing.TB, root string) {
	t.Helper()
	if root == "/var/lib/berth" {
		t.Fatalf("RemoveBerthNetworking is for scratch stores, not %s", root)
	}
	links, err := netlink.LinkList()
	if err != nil {
		t.Error(err)
		return
	}
	for _, l := range links {
		if l.Attrs().Alias == "berth-store:"+root {
			if err := netlink.LinkDel(l); err != nil {
				t.Error(err)
			}
		}
	}
	h := sha256.Sum256([]byte(root))
	c, err := nftables.New()
	if err != nil {
		t.Error(err)
		return
	}
	tb := &nftables.Table{Name: "berth-" + hex.EncodeToString(h[:4]), Family: nftables.TableFamilyINet}
	c.AddTable(tb) // add+delete: gone either way
	c.DelTable(tb)
	if err := c.Flush(); err != nil {
		t.Error(err)
	}
}
