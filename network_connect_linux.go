package berth

import (
	"context"
	"fmt"
	"strings"

	"github.com/berth-run/berth/internal/errdefs"
	"github.com/berth-run/berth/internal/ipam"
	"github.com/berth-run/berth/internal/portmap"
)

// sharesNetns reports whether a network mode leaves the container without
// a network namespace of its own that berth manages.
func sharesNetns(mode string) bool {
	return mode == "host" || mode == "none" || strings.HasPrefix(mode, "container:")
}

// lockForNetworks takes the container's lock for a change of its
// networks and returns the release, its settled state and its record. A
// container without a network namespace of its own is ErrInvalid.
func (c *Container) lockForNetworks(ctx context.Context) (func(), *containerState, *containerRecord, error) {
	r, id := c.rt, c.rec.ID
	lk, err := r.lockContainer(id)
	if err != nil {
		return nil, nil, nil, err
	}
	st, err := r.reconcileLocked(ctx, id)
	var rec *containerRecord
	if err == nil {
		// c.rec is not updated: a handle's record may be read by the
		// goroutine that owns the container.
		rec, err = r.readRecord(id)
	}
	if err == nil {
		if mode := networkMode(&rec.Spec); sharesNetns(mode) {
			err = errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("container %s: the networks of a container in network mode %s cannot change", rec.Name, mode))
		}
	}
	if err != nil {
		lk.Unlock()
		return nil, nil, nil, err
	}
	return lk.Unlock, st, rec, nil
}

func (c *Container) connect(ctx context.Context, netName string, o connectOptions) error {
	r := c.rt
	id := c.rec.ID
	unlockCtr, st, rec, err := c.lockForNetworks(ctx)
	if err != nil {
		return err
	}
	defer unlockCtr()
	mode := networkMode(&rec.Spec)
	nrec, err := r.lookupNetwork(ctx, netName)
	if err != nil {
		return err
	}
	if isPredefinedNetwork(nrec.Name) && (len(o.aliases) > 0 || o.ip != "") {
		return errdefs.New(errdefs.ErrInvalid, "network-scoped aliases and fixed addresses are supported only on user-defined networks")
	}
	if rec.Network != nil && rec.Network.Networks[nrec.Name] != nil {
		return errdefs.New(errdefs.ErrConflict, fmt.Sprintf("endpoint with name %s already exists in network %s", rec.Name, nrec.Name))
	}
	p := endpointPlan{net: nrec, aliases: o.aliases}
	if o.ip != "" {
		if p.ip, err = parseIPv4(o.ip); err != nil {
			return err
		}
		if !nrec.Subnet.Contains(p.ip) {
			return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("address %s is not in network %s's subnet %s", p.ip, nrec.Name, nrec.Subnet))
		}
	}
	if st.Status != StatusRunning && st.Status != StatusPaused {
		// Recorded; the next start attaches it.
		primary, err := r.lookupNetwork(ctx, mode)
		if err != nil {
			return err
		}
		err = r.recordNetwork(id, func(cur *containerRecord) {
			if cur.Network == nil {
				cur.Network = &NetworkSettings{Mode: mode}
			}
			if len(cur.Network.Networks) == 0 {
				cur.Network.Networks = map[string]*EndpointConfig{primary.Name: {NetworkID: primary.ID,
					Aliases: cur.Spec.NetworkAliases, IPAMAddress: cur.Spec.IPAddress}}
			}
			cur.Network.Networks[nrec.Name] = &EndpointConfig{NetworkID: nrec.ID, Aliases: p.aliases, IPAMAddress: addrString(p.ip)}
		})
		if err != nil {
			return err
		}
		r.event(ctx, "network", "connect", nrec.ID, map[string]string{"name": nrec.Name, "type": nrec.Driver, "container": id})
		return nil
	}

	unlock, err := r.lockNetworks([]string{nrec.Name})
	if err != nil {
		return err
	}
	defer unlock()
	m, err := r.netManager()
	if err != nil {
		return err
	}
	ep, err := r.attachEndpoint(ctx, m, id, r.netnsPath(id), p, nil, false)
	if err != nil {
		return err
	}
	ec := endpointConfig(p, ep)
	err = r.recordNetwork(id, func(cur *containerRecord) {
		if cur.Network == nil {
			cur.Network = &NetworkSettings{Mode: mode, NetNS: r.netnsPath(id)}
		}
		if cur.Network.Networks == nil {
			cur.Network.Networks = map[string]*EndpointConfig{}
		}
		cur.Network.Networks[nrec.Name] = ec
		rec = cur
	})
	if err != nil {
		_ = m.Detach(context.WithoutCancel(ctx), id, nrec.Bridge)
		if pool, perr := ipam.Open(r.ipamDir(nrec.Name), nrec.Subnet, nrec.Gateway); perr == nil {
			_ = pool.Release(context.WithoutCancel(ctx), id)
		}
		return err
	}
	members := r.networkMembers()
	r.rewriteHosts(ctx, append([]*containerRecord{rec}, peersOf(rec, []string{nrec.Name}, members)...), members)
	r.event(ctx, "network", "connect", nrec.ID, map[string]string{"name": nrec.Name, "type": nrec.Driver, "container": id})
	return nil
}

func (c *Container) disconnect(ctx context.Context, netName string, force bool) error {
	r := c.rt
	id := c.rec.ID
	unlockCtr, st, rec, err := c.lockForNetworks(ctx)
	if err != nil {
		return err
	}
	defer unlockCtr()
	// The network may be gone already (force): then match the record.
	name, nrec := netName, (*networkRecord)(nil)
	if n, err := r.lookupNetwork(ctx, netName); err == nil {
		name, nrec = n.Name, n
	} else if !force {
		return err
	}
	var ep *EndpointConfig
	if rec.Network != nil {
		ep = rec.Network.Networks[name]
	}
	if ep == nil {
		return errdefs.New(errdefs.ErrNotFound, fmt.Sprintf("container %s is not connected to network %s", rec.Name, netName))
	}
	running := (st.Status == StatusRunning || st.Status == StatusPaused) && ep.IPAddress != ""
	var ports []PortBinding
	if running {
		unlock, err := r.lockNetworks([]string{name})
		if err != nil {
			return err
		}
		defer unlock()
		m, err := r.netManager()
		if err != nil {
			return err
		}
		if nrec != nil {
			if err := m.Detach(ctx, id, nrec.Bridge); err != nil && !force {
				return err
			}
			if pool, err := ipam.Open(r.ipamDir(name), nrec.Subnet, nrec.Gateway); err == nil {
				if err := pool.Release(context.WithoutCancel(ctx), id); err != nil && !force {
					return err
				}
			}
		}
		if bs, err := m.NAT().Ports(ctx, id); err == nil {
			var pms []portmap.PortMapping
			for _, b := range bs {
				pms = append(pms, b.PortMapping)
			}
			ports = portBindings(pms)
		}
	}
	err = r.recordNetwork(id, func(cur *containerRecord) {
		if cur.Network != nil {
			delete(cur.Network.Networks, name)
			if running {
				cur.Network.Ports = ports
			}
		}
		rec = cur
	})
	if err != nil {
		return err
	}
	if running && !isPredefinedNetwork(name) {
		members := r.networkMembers()
		r.rewriteHosts(ctx, append([]*containerRecord{rec}, peersOf(rec, []string{name}, members)...), members)
	}
	nid := ""
	if nrec != nil {
		nid = nrec.ID
	}
	r.event(ctx, "network", "disconnect", nid, map[string]string{"name": name, "type": NetworkDriverBridge, "container": id})
	return nil
}
