package berth

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/vishvananda/netlink"

	"github.com/berth-run/berth/internal/ipam"
)

// The network half of Check: IPAM leases, veths and published ports
// against the containers that hold them.

// checkNetworks reports the addresses, veths (on the store's bridges, in
// the calling thread's network namespace) and published ports of
// containers that do not run or do not exist; the repair releases them
// as a container's teardown does.
func (c *checker) checkNetworks(ctx context.Context) error {
	r := c.r
	recs, err := r.networkRecords()
	if err != nil {
		return err
	}
	held := map[string][]string{} // container ID -> what it holds
	bridges := map[string]bool{r.defaultBridgeName(): true}
	for _, n := range recs {
		bridges[n.Bridge] = true
		if !n.Subnet.IsValid() {
			continue
		}
		pool, err := ipam.Open(r.ipamDir(n.Name), n.Subnet, n.Gateway)
		if err != nil {
			c.add("network "+n.Name, fmt.Sprintf("address pool cannot be opened: %v", err), nil)
			continue
		}
		leases, err := pool.Leases(ctx)
		if err != nil {
			c.add("network "+n.Name, fmt.Sprintf("address leases cannot be read: %v", err), nil)
			continue
		}
		for _, l := range leases {
			held[l.ContainerID] = append(held[l.ContainerID], fmt.Sprintf("address %s of network %s", l.Addr, n.Name))
		}
	}
	if links, err := netlink.LinkList(); err == nil {
		byIndex := map[int]string{}
		for _, l := range links {
			byIndex[l.Attrs().Index] = l.Attrs().Name
		}
		for _, l := range links {
			a := l.Attrs()
			if id, ok := strings.CutPrefix(a.Alias, "berth:"); ok && bridges[byIndex[a.MasterIndex]] {
				held[id] = append(held[id], fmt.Sprintf("veth %s on bridge %s", a.Name, byIndex[a.MasterIndex]))
			}
		}
	}
	if m, err := r.netManager(); err == nil {
		if bindings, err := m.NAT().InUse(ctx); err == nil {
			for _, b := range bindings {
				held[b.ContainerID] = append(held[b.ContainerID], fmt.Sprintf("published port %d/%s", b.HostPort, b.Protocol))
			}
		}
	}
	ids := make([]string, 0, len(held))
	for id := range held {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return err
		}
		c.checkNetworkHolder(ctx, id, held[id])
	}
	return nil
}

// checkNetworkHolder judges, under its lock, container id that holds
// network resources.
func (c *checker) checkNetworkHolder(ctx context.Context, id string, what []string) {
	r := c.r
	if len(id) != 64 || !hexPrefix.MatchString(id) {
		for _, w := range what {
			c.add("network", fmt.Sprintf("%s is held by %q, which is not a container ID", w, id), nil)
		}
		return
	}
	lk, err := r.lockContainer(id)
	if err != nil {
		return
	}
	defer lk.Unlock()
	st, err := r.readState(id)
	if err == nil && isLive(st.Status) {
		return
	}
	rec, rerr := r.readRecord(id)
	obj, why := "container "+id[:12], "which does not exist"
	if rerr == nil {
		obj, why = "container "+rec.Name, "which is "+st.Status
	}
	var once sync.Once
	var fixErr error
	release := func() error {
		once.Do(func() { fixErr = r.releaseNetworkOf(ctx, id, rec) })
		return fixErr
	}
	for _, w := range what {
		c.add(obj, fmt.Sprintf("holds %s, %s", w, why), release)
	}
}

// releaseNetworkOf releases what container id holds of the network: its
// teardown when it has a record, or its veths, ports, namespace and
// leases by ID when it does not. The caller holds the container lock.
func (r *Runtime) releaseNetworkOf(ctx context.Context, id string, rec *containerRecord) error {
	if rec != nil {
		r.teardownNetwork(ctx, &Container{rt: r, rec: rec})
		return nil
	}
	m, err := r.netManager()
	if err != nil {
		return err
	}
	errs := []error{m.Release(ctx, id, r.netnsPath(id))}
	recs, err := r.networkRecords()
	if err != nil {
		return err
	}
	for _, n := range recs {
		if !n.Subnet.IsValid() {
			continue
		}
		if pool, err := ipam.Open(r.ipamDir(n.Name), n.Subnet, n.Gateway); err == nil {
			errs = append(errs, pool.Release(ctx, id))
		}
	}
	return errors.Join(errs...)
}
