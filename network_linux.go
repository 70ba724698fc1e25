package berth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/berth-run/berth/internal/errdefs"
	"github.com/berth-run/berth/internal/ipam"
	"github.com/berth-run/berth/internal/network"
	"github.com/berth-run/berth/internal/network/lockfile"
	"github.com/berth-run/berth/internal/store"
)

// Locks of the network code, in the order they are taken (after the
// container lock, before the store lock):
//
//   - "net-<name>" (store.LockName) serialises the membership changes of
//     a user-defined network: attaching or releasing a container and
//     rewriting its members' /etc/hosts, and removing the network.
//   - the store lock guards network and container records.
//   - hostNetworkLock serialises, across every store of the host,
//     choosing a subnet and creating the bridge whose route then claims it.

// netManager returns the network plumbing of the store.
func (r *Runtime) netManager() (*network.Manager, error) {
	return network.New(network.Config{Table: r.nftTableName(), StateDir: r.networksDir(), LeaveVethsToKernel: r.opts.exitsSoon})
}

// bridgeAliasPrefix labels berth's bridges with the root of their store,
// so that the bridges of a store that no longer exists can be found.
const bridgeAliasPrefix = "berth-store:"

func (r *Runtime) bridgeAlias() string { return bridgeAliasPrefix + r.opts.root }

// hostNetworkLock takes the host-wide lock of network creation.
func hostNetworkLock(ctx context.Context) (*lockfile.File, error) {
	dir := "/run/lock"
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		dir = os.TempDir()
	}
	return lockfile.Lock(ctx, filepath.Join(dir, "berth-networks.lock"))
}

// defaultNetwork returns the record of the default network, creating the
// network on first use.
func (r *Runtime) defaultNetwork(ctx context.Context) (*networkRecord, error) {
	rec, err := r.readNetwork(DefaultNetwork)
	if !errors.Is(err, errdefs.ErrNotFound) {
		return rec, err
	}
	unlock, err := r.store.Lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	rec, err = r.readNetwork(DefaultNetwork)
	if !errors.Is(err, errdefs.ErrNotFound) {
		return rec, err
	}
	return r.createNetworkLocked(ctx, networkConfig{name: DefaultNetwork}, newID(), r.defaultBridgeName())
}

func (r *Runtime) createNetwork(ctx context.Context, cfg networkConfig) (*networkRecord, error) {
	unlock, err := r.store.Lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	if isPredefinedNetwork(cfg.name) {
		return nil, errdefs.New(errdefs.ErrConflict, fmt.Sprintf("network with name %s already exists", cfg.name))
	}
	if _, err := r.readNetwork(cfg.name); err == nil {
		return nil, errdefs.New(errdefs.ErrConflict, fmt.Sprintf("network with name %s already exists", cfg.name))
	} else if !errors.Is(err, errdefs.ErrNotFound) {
		return nil, err
	}
	id := newID()
	return r.createNetworkLocked(ctx, cfg, id, "br-"+id[:12])
}

// createNetworkLocked writes the record of a new network and sets up its
// bridge. The caller holds the store lock.
func (r *Runtime) createNetworkLocked(ctx context.Context, cfg networkConfig, id, bridge string) (*networkRecord, error) {
	lk, err := hostNetworkLock(ctx)
	if err != nil {
		return nil, err
	}
	defer lk.Unlock()
	m, err := r.netManager()
	if err != nil {
		return nil, err
	}
	r.sweepBridges(ctx)
	// A bridge of that name left by an earlier store at this root would
	// keep its old address and route: start afresh.
	if err := m.RemoveBridge(ctx, bridge); err != nil {
		return nil, fmt.Errorf("network %s: %w", cfg.name, err)
	}
	recs, err := r.networkRecords()
	if err != nil {
		return nil, err
	}
	var used []netip.Prefix
	for _, rec := range recs {
		used = append(used, rec.Subnet)
	}
	subnet := cfg.subnet
	if subnet.IsValid() {
		host, err := ipam.HostPrefixes(ctx)
		if err != nil {
			return nil, err
		}
		for _, p := range append(used, host...) {
			if p.IsValid() && p.Overlaps(subnet) {
				return nil, errdefs.New(errdefs.ErrConflict, fmt.Sprintf("network %s: subnet %s: Pool overlaps with other one on this address space", cfg.name, subnet))
			}
		}
	} else if subnet, err = ipam.ChooseSubnet(ctx, used); err != nil {
		return nil, fmt.Errorf("network %s: %w", cfg.name, err)
	}
	gw := cfg.gateway
	if !gw.IsValid() {
		gw = subnet.Addr().Next()
	}
	rec := &networkRecord{ID: id, Name: cfg.name, Driver: NetworkDriverBridge, Subnet: subnet, Gateway: gw,
		Bridge: bridge, Internal: cfg.internal, Labels: cfg.labels, Created: time.Now().UTC()}
	if err := store.WriteJSON(r.networkPath(rec.Name), rec, true); err != nil {
		return nil, err
	}
	if err := r.setupBridge(ctx, m, rec); err != nil {
		_ = m.RemoveBridge(context.WithoutCancel(ctx), bridge)
		_ = os.Remove(r.networkPath(rec.Name))
		return nil, fmt.Errorf("network %s: %w", cfg.name, err)
	}
	return rec, nil
}

// setupBridge creates or repairs the network's bridge and rules, and
// labels the bridge with the store last, so that a labelled bridge is a
// complete one.
func (r *Runtime) setupBridge(ctx context.Context, m *network.Manager, rec *networkRecord) error {
	err := m.EnsureBridge(ctx, network.BridgeConfig{Name: rec.Bridge, Subnet: rec.Subnet, Gateway: rec.Gateway, Internal: rec.Internal})
	if err != nil {
		return err
	}
	if alias := r.bridgeAlias(); len(alias) < 256 {
		l, err := netlink.LinkByName(rec.Bridge)
		if err != nil {
			return fmt.Errorf("bridge %s: %w", rec.Bridge, err)
		}
		if err := netlink.LinkSetAlias(l, alias); err != nil {
			return fmt.Errorf("bridge %s: %w", rec.Bridge, err)
		}
	}
	return nil
}

// ensureBridge makes sure the network's bridge exists (after a reboot it
// does not). One netlink request when it does.
func (r *Runtime) ensureBridge(ctx context.Context, m *network.Manager, rec *networkRecord) error {
	l, err := netlink.LinkByName(rec.Bridge)
	if err == nil && l.Attrs().Alias == r.bridgeAlias() && l.Attrs().Flags&net.FlagUp != 0 {
		return nil
	}
	return r.setupBridge(ctx, m, rec)
}

// sweepBridges removes the idle bridges and nft tables of stores whose
// root is gone (scratch stores of tests, deleted directories), so that
// they do not hold subnets forever. The caller holds hostNetworkLock.
func (r *Runtime) sweepBridges(ctx context.Context) {
	links, err := netlink.LinkList()
	if err != nil {
		return
	}
	gone := map[string][]string{} // root -> bridges
	for _, l := range links {
		root, ok := strings.CutPrefix(l.Attrs().Alias, bridgeAliasPrefix)
		if !ok || l.Type() != "bridge" || root == r.opts.root || !filepath.IsAbs(root) {
			continue
		}
		if _, err := os.Stat(filepath.Join(root, "networks")); errors.Is(err, fs.ErrNotExist) {
			gone[root] = append(gone[root], l.Attrs().Name)
		}
	}
	for root, bridges := range gone {
		m, err := network.New(network.Config{Table: nftTableFor(root), StateDir: filepath.Join(os.TempDir(), "berth-sweep")})
		if err != nil {
			continue
		}
		all := true
		for _, b := range bridges {
			if err := m.RemoveBridge(ctx, b); err != nil {
				all = false // still has endpoints: not idle
			}
		}
		if all {
			_ = m.NAT().Delete(ctx)
		}
	}
}

// storeHashOf is a short hash of a store root.
func storeHashOf(root string) string {
	h := sha256.Sum256([]byte(root))
	return hex.EncodeToString(h[:4])
}

func nftTableFor(root string) string {
	if root == DefaultRoot {
		return "berth"
	}
	return "berth-" + storeHashOf(root)
}

// removeNetwork removes a user-defined network.
func (r *Runtime) removeNetwork(ctx context.Context, rec *networkRecord) error {
	// Containers whose owner died still look attached: settle them
	// first (this takes their locks, which come before the network's).
	for _, c := range r.networkMembers()[rec.Name] {
		_, _ = r.reconcile(ctx, c.ID)
	}
	lk, err := r.store.LockName("net-" + rec.Name)
	if err != nil {
		return err
	}
	defer lk.Unlock()
	cur, err := r.readNetwork(rec.Name)
	if err != nil {
		return err
	}
	if cur.ID != rec.ID {
		return errdefs.New(errdefs.ErrNotFound, fmt.Sprintf("network %s not found", rec.ID))
	}
	if members := r.networkMembers()[rec.Name]; len(members) > 0 {
		var names []string
		for _, c := range members {
			names = append(names, c.Name)
		}
		return errdefs.New(errdefs.ErrConflict, fmt.Sprintf("error while removing network: network %s id %s has active endpoints (%s)",
			rec.Name, rec.ID[:12], strings.Join(names, ", ")))
	}
	m, err := r.netManager()
	if err != nil {
		return err
	}
	if err := m.RemoveBridge(ctx, cur.Bridge); err != nil {
		return fmt.Errorf("network %s: %w", rec.Name, err)
	}
	unlock, err := r.store.Lock()
	if err != nil {
		return err
	}
	defer unlock()
	if err := os.Remove(r.networkPath(rec.Name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("network %s: %w", rec.Name, err)
	}
	return os.RemoveAll(r.ipamDir(rec.Name))
}

// lockNetworks takes the locks of the user-defined networks among names,
// in order, and returns their release.
func (r *Runtime) lockNetworks(names []string) (func(), error) {
	names = slices.Clone(names)
	slices.Sort(names)
	names = slices.Compact(names)
	var held []*store.FileLock
	unlock := func() {
		for i := len(held) - 1; i >= 0; i-- {
			held[i].Unlock()
		}
	}
	for _, n := range names {
		if isPredefinedNetwork(n) {
			continue
		}
		lk, err := r.store.LockName("net-" + n)
		if err != nil {
			unlock()
			return nil, err
		}
		held = append(held, lk)
	}
	return unlock, nil
}

// lookupNetwork resolves a network of a container (name or ID) to its
// record: the default network is created on first use; host and none
// are not bridge networks and are ErrInvalid here.
func (r *Runtime) lookupNetwork(ctx context.Context, nameOrID string) (*networkRecord, error) {
	switch nameOrID {
	case "", "default", DefaultNetwork:
		return r.defaultNetwork(ctx)
	case "host", "none":
		return nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("network %s is not a bridge network", nameOrID))
	}
	return r.findNetworkRecord(nameOrID)
}
