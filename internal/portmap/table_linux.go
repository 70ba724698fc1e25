package portmap

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/berth-run/berth/internal/errdefs"
	"github.com/berth-run/berth/internal/network/lockfile"
)

// Names of the table's objects (see the Table doc for the layout).
const (
	setBridges = "bridges"
	setMasq    = "masq"
	mapFwd     = "fwd"
	mapSnat    = "snat"
	mapHP4     = "hp4"
	mapHP6     = "hp6"
	mapAny     = "hpany"

	chainPrerouting  = "prerouting"
	chainOutput      = "output"
	chainPostrouting = "postrouting"
	chainForward     = "forward"
	chainHostports   = "hostports"
)

// objects is the table and its fixed sets and chains as google/nftables
// values, ready to be added to a batch.
type objects struct {
	table                                     *nftables.Table
	bridges, masq, fwd, snat, hp4, hp6, hpany *nftables.Set
	prerouting, output, postrouting, fwdCh    *nftables.Chain
	hostports                                 *nftables.Chain
}

func (t *Table) objects() *objects {
	tb := &nftables.Table{Name: t.name, Family: nftables.TableFamilyINet}
	hpKey := func(addr nftables.SetDatatype) nftables.SetDatatype {
		return nftables.MustConcatSetType(addr, nftables.TypeInetProto, nftables.TypeInetService)
	}
	// Explicit set IDs (unique within a batch) keep google/nftables from
	// using its package-global ID counter.
	vmap := func(id uint32, name string, key nftables.SetDatatype, concat bool) *nftables.Set {
		return &nftables.Set{Table: tb, ID: id, Name: name, KeyType: key, DataType: nftables.TypeVerdict,
			IsMap: true, Concatenation: concat}
	}
	// Interface names are strings, which nft keeps in host byte order;
	// saying so lets `nft list` print them.
	ifnameSet := func(id uint32, name string) *nftables.Set {
		return &nftables.Set{Table: tb, ID: id, Name: name, KeyType: nftables.TypeIFName,
			KeyByteOrder: binaryutil.NativeEndian}
	}
	ifnameMap := func(id uint32, name string) *nftables.Set {
		s := vmap(id, name, nftables.TypeIFName, false)
		s.KeyByteOrder = binaryutil.NativeEndian
		return s
	}
	accept := nftables.ChainPolicyAccept
	base := func(name string, typ nftables.ChainType, hook *nftables.ChainHook, prio *nftables.ChainPriority) *nftables.Chain {
		return &nftables.Chain{Table: tb, Name: name, Type: typ, Hooknum: hook, Priority: prio, Policy: &accept}
	}
	return &objects{
		table:       tb,
		bridges:     ifnameSet(1, setBridges),
		masq:        ifnameSet(2, setMasq),
		fwd:         ifnameMap(3, mapFwd),
		snat:        ifnameMap(7, mapSnat),
		hp4:         vmap(4, mapHP4, hpKey(nftables.TypeIPAddr), true),
		hp6:         vmap(5, mapHP6, hpKey(nftables.TypeIP6Addr), true),
		hpany:       vmap(6, mapAny, hpKey(nftables.TypeNFProto), true),
		prerouting:  base(chainPrerouting, nftables.ChainTypeNAT, nftables.ChainHookPrerouting, nftables.ChainPriorityNATDest),
		output:      base(chainOutput, nftables.ChainTypeNAT, nftables.ChainHookOutput, nftables.ChainPriorityNATDest),
		postrouting: base(chainPostrouting, nftables.ChainTypeNAT, nftables.ChainHookPostrouting, nftables.ChainPriorityNATSource),
		fwdCh:       base(chainForward, nftables.ChainTypeFilter, nftables.ChainHookForward, nftables.ChainPriorityFilter),
		hostports:   &nftables.Chain{Table: tb, Name: chainHostports},
	}
}

func (o *objects) set(name string) *nftables.Set {
	switch name {
	case mapHP4:
		return o.hp4
	case mapHP6:
		return o.hp6
	default:
		return o.hpany
	}
}

// addSkeleton queues the creation of the table and its sets, and of the
// base chains not in have (the table's existing chains). Re-adding an
// existing chain is not free: the kernel then waits for an RCU grace
// period (~10 ms) before it answers, as it does for every deletion but
// of rules.
func (o *objects) addSkeleton(c *nftables.Conn, have map[string]bool) error {
	c.AddTable(o.table)
	for _, s := range []*nftables.Set{o.bridges, o.masq, o.fwd, o.snat, o.hp4, o.hp6, o.hpany} {
		if err := c.AddSet(s, nil); err != nil {
			return err
		}
	}
	for _, ch := range []*nftables.Chain{o.hostports, o.prerouting, o.output, o.postrouting, o.fwdCh} {
		if !have[ch.Name] {
			c.AddChain(ch)
		}
	}
	return nil
}

// replaceBaseRules queues the flush and re-creation of the base chains'
// rules, so that any number of EnsureBridge calls leave exactly one copy.
func (o *objects) replaceBaseRules(c *nftables.Conn) {
	add := func(ch *nftables.Chain, e ...[]expr.Any) {
		c.AddRule(&nftables.Rule{Table: o.table, Chain: ch, Exprs: exprs(e...)})
	}
	for _, ch := range []*nftables.Chain{o.hostports, o.prerouting, o.output, o.postrouting, o.fwdCh} {
		c.FlushChain(ch)
	}
	add(o.hostports, dispatchHP4())
	add(o.hostports, dispatchHP6())
	add(o.hostports, dispatchAny())
	add(o.prerouting, matchFibLocal(), verdict(expr.VerdictJump, chainHostports))
	add(o.output, matchFibLocal(), verdict(expr.VerdictJump, chainHostports))

	// Into a bridge: its own source NAT rules (nat-<bridge>).
	add(o.postrouting, ifnameVmap(expr.MetaKeyOIFNAME, mapSnat))
	// Outbound NAT for containers of non-internal bridges.
	add(o.postrouting, matchIfnameIn(expr.MetaKeyIIFNAME, setMasq, false),
		matchIfnameIn(expr.MetaKeyOIFNAME, setBridges, true), masquerade())

	add(o.fwdCh, matchEstablished(), verdict(expr.VerdictAccept, ""))
	add(o.fwdCh, ifnameVmap(expr.MetaKeyIIFNAME, mapFwd))
	add(o.fwdCh, matchDNATed(), matchIfnameIn(expr.MetaKeyOIFNAME, setMasq, false), verdict(expr.VerdictAccept, ""))
	add(o.fwdCh, matchIfnameIn(expr.MetaKeyOIFNAME, setBridges, false), verdict(expr.VerdictDrop, ""))
}

// bridgeStamp is the comment on the first rule of a bridge's forward chain:
// the configuration its rules were made for.
func bridgeStamp(bridge string, subnet netip.Prefix, internal bool) string {
	return fmt.Sprintf("berth bridge=%s subnet=%s internal=%t", bridge, subnet, internal)
}

// natChain is the postrouting chain of bridge.
func natChain(bridge string) string { return "nat-" + bridge }

func newConn() (*nftables.Conn, error) {
	// No options: the netlink socket is opened, per Flush, in the network
	// namespace of the calling thread.
	c, err := nftables.New()
	if err != nil {
		return nil, fmt.Errorf("nftables: %w", err)
	}
	return c, nil
}

func (t *Table) ensureBridge(bridge string, subnet netip.Prefix, internal bool) error {
	have, err := dumpChains(t.name)
	if err != nil {
		return fmt.Errorf("nft table %s: %w", t.name, err)
	}
	stamp := bridgeStamp(bridge, subnet, internal)
	if have[natChain(bridge)] && have[BridgeChain(bridge)] {
		// Both are made in the transaction that adds everything else
		// of the bridge; if the stamp on its first rule matches, the
		// bridge is set up as asked and nothing needs to change.
		rules, err := dumpRules(t.name, BridgeChain(bridge))
		if err != nil {
			return fmt.Errorf("nft table %s: %w", t.name, err)
		}
		if len(rules) > 0 && rules[0].comment == stamp {
			return nil
		}
	}
	c, err := newConn()
	if err != nil {
		return err
	}
	o := t.objects()
	if err := o.addSkeleton(c, have); err != nil {
		return err
	}
	o.replaceBaseRules(c)

	addChain := func(name string) *nftables.Chain {
		ch := &nftables.Chain{Table: o.table, Name: name}
		if !have[name] {
			c.AddChain(ch)
		}
		// Flushed even if it looked missing: another process may have
		// made it since, and its rules are replaced, not doubled.
		c.FlushChain(ch)
		return ch
	}
	br := addChain(BridgeChain(bridge))
	add := func(e ...[]expr.Any) {
		c.AddRule(&nftables.Rule{Table: o.table, Chain: br, Exprs: exprs(e...)})
	}
	c.AddRule(&nftables.Rule{Table: o.table, Chain: br, UserData: commentUserData(stamp),
		Exprs: exprs(matchIfname(expr.MetaKeyOIFNAME, bridge), verdict(expr.VerdictAccept, ""))})
	if internal {
		add(verdict(expr.VerdictDrop, ""))
	} else {
		add(matchDNATed(), verdict(expr.VerdictAccept, ""))
		add(matchIfnameIn(expr.MetaKeyOIFNAME, setBridges, false), verdict(expr.VerdictDrop, ""))
		add(verdict(expr.VerdictAccept, ""))
	}

	nat := addChain(natChain(bridge))
	// 127.0.0.1:port -> container: the source must be rewritten, or the
	// container would answer to its own loopback.
	c.AddRule(&nftables.Rule{Table: o.table, Chain: nat, Exprs: exprs(matchSaddrLoopback4(), masquerade())})
	// Hairpin: a container of this bridge reaching a published port of
	// the bridge (its own or a peer's) through a host address. The
	// answer must come back through the host to be un-DNATed. Matched
	// by subnet, not by input interface: with br_netfilter such frames
	// are bridged, and bridged frames have no input interface here.
	c.AddRule(&nftables.Rule{Table: o.table, Chain: nat, Exprs: exprs(matchDNATed(), matchSaddrPrefix(subnet), masquerade())})

	key := []nftables.SetElement{{Key: ifname(bridge)}}
	errs := []error{
		c.SetAddElements(o.bridges, key),
		c.SetAddElements(o.fwd, []nftables.SetElement{{Key: ifname(bridge),
			VerdictData: &expr.Verdict{Kind: expr.VerdictJump, Chain: BridgeChain(bridge)}}}),
		c.SetAddElements(o.snat, []nftables.SetElement{{Key: ifname(bridge),
			VerdictData: &expr.Verdict{Kind: expr.VerdictJump, Chain: natChain(bridge)}}}),
		c.SetAddElements(o.masq, key),
	}
	if internal {
		// Added and deleted in one batch: absent afterwards whether or
		// not it was there.
		errs = append(errs, c.SetDeleteElements(o.masq, key))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nft table %s: bridge %s: %w", t.name, bridge, err)
	}
	return nil
}

func (t *Table) removeBridge(bridge string) error {
	for attempt := 0; ; attempt++ {
		ok, err := chainExists(t.name, BridgeChain(bridge))
		if err != nil {
			return fmt.Errorf("nft table %s: %w", t.name, err)
		}
		if !ok {
			// The chain and the elements are added in one
			// transaction: without the chain there is nothing left.
			return nil
		}
		c, err := newConn()
		if err != nil {
			return err
		}
		o := t.objects()
		key := []nftables.SetElement{{Key: ifname(bridge)}}
		errs := []error{
			c.SetDeleteElements(o.fwd, key),
			c.SetAddElements(o.snat, []nftables.SetElement{{Key: ifname(bridge), // add+delete: absent either way
				VerdictData: &expr.Verdict{Kind: expr.VerdictJump, Chain: natChain(bridge)}}}),
			c.SetDeleteElements(o.snat, key),
			c.SetDeleteElements(o.bridges, key),
			c.SetAddElements(o.masq, key), // add+delete: absent either way
			c.SetDeleteElements(o.masq, key),
		}
		if err := errors.Join(errs...); err != nil {
			return err
		}
		for _, name := range []string{BridgeChain(bridge), natChain(bridge)} {
			ch := &nftables.Chain{Table: o.table, Name: name}
			c.AddChain(ch) // add+flush+delete: absent either way
			c.FlushChain(ch)
			c.DelChain(ch)
		}
		err = c.Flush()
		if err == nil {
			return nil
		}
		if errors.Is(err, unix.ENOENT) && attempt < 3 {
			continue // removed concurrently; look again
		}
		return fmt.Errorf("nft table %s: remove bridge %s: %w", t.name, bridge, err)
	}
}

func (t *Table) delete() error {
	c, err := newConn()
	if err != nil {
		return err
	}
	tb := &nftables.Table{Name: t.name, Family: nftables.TableFamilyINet}
	c.AddTable(tb) // add+delete: gone either way
	c.DelTable(tb)
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nft table %s: delete: %w", t.name, err)
	}
	return nil
}

// inUse reads every published port from the dispatch maps.
func (t *Table) inUse() ([]portKey, error) {
	var out []portKey
	for _, name := range []string{mapHP4, mapHP6, mapAny} {
		elems, err := dumpElements(t.name, name)
		if err != nil {
			return nil, fmt.Errorf("nft table %s: read %s: %w", t.name, name, err)
		}
		for _, e := range elems {
			k, ok := parseKey(name, e.key)
			if !ok {
				continue
			}
			k.owner = e.comment
			out = append(out, k)
		}
	}
	return out, nil
}

func (t *Table) publish(ctx context.Context, id, bridge string, cip netip.Addr, ports []PortMapping) ([]PortMapping, error) {
	lk, err := lockfile.Lock(ctx, t.lockPath)
	if err != nil {
		return nil, err
	}
	defer lk.Unlock()

	used, err := t.inUse()
	if err != nil {
		return nil, err
	}
	var eph struct {
		lo, hi   uint16
		reserved map[uint16]bool
		read     bool
	}
	resolved := make([]PortMapping, 0, len(ports))
	var keys []portKey
	for _, m := range ports {
		free := func(k portKey) (bool, error) {
			for _, u := range used {
				if u.overlaps(k) {
					if m.HostPort != 0 && m.HostPortEnd == 0 {
						return false, errdefs.New(errdefs.ErrConflict,
							fmt.Sprintf("host port %s is already published by container %s", k, u.owner))
					}
					return false, nil
				}
			}
			for _, u := range keys {
				if u.overlaps(k) {
					if m.HostPort != 0 && m.HostPortEnd == 0 {
						return false, errdefs.New(errdefs.ErrConflict,
							fmt.Sprintf("host port %s is requested twice", k))
					}
					return false, nil
				}
			}
			switch err := probe(k.proto, k.addr(), k.port); {
			case err == nil:
				return true, nil
			case errors.Is(err, errPortBusy) && m.HostPort != 0 && m.HostPortEnd == 0:
				return false, errdefs.New(errdefs.ErrConflict,
					fmt.Sprintf("host port %s is already in use on the host", k))
			case errors.Is(err, errPortBusy):
				return false, nil
			default:
				return false, err
			}
		}
		try := func(p uint16) (portKey, bool, error) {
			k := keyFor(m.HostIP, cip, m.Protocol, p)
			ok, err := free(k)
			return k, ok, err
		}

		var k portKey
		found := false
		switch {
		case m.HostPort != 0 && m.HostPortEnd == 0:
			if k, found, err = try(m.HostPort); err != nil {
				return nil, err
			}
		case m.HostPort != 0:
			for p := int(m.HostPort); p <= int(m.HostPortEnd) && !found; p++ {
				if k, found, err = try(uint16(p)); err != nil {
					return nil, err
				}
			}
			if !found {
				return nil, errdefs.New(errdefs.ErrConflict, fmt.Sprintf("no free host port in %d-%d for %s",
					m.HostPort, m.HostPortEnd, m))
			}
		default:
			if !eph.read {
				if eph.lo, eph.hi, err = ephemeralRange(); err != nil {
					return nil, err
				}
				eph.reserved, eph.read = reservedPorts(), true
			}
			n := int(eph.hi-eph.lo) + 1
			start := rand.IntN(n)
			for i := 0; i < n && !found; i++ {
				p := eph.lo + uint16((start+i)%n)
				if eph.reserved[p] {
					continue
				}
				if k, found, err = try(p); err != nil {
					return nil, err
				}
			}
			if !found {
				return nil, errdefs.New(errdefs.ErrConflict, fmt.Sprintf("no free host port in %d-%d for %s",
					eph.lo, eph.hi, m))
			}
		}
		keys = append(keys, k)
		r := m
		r.HostPort, r.HostPortEnd = k.port, 0
		resolved = append(resolved, r)
	}

	exists, err := chainExists(t.name, ContainerChain(id))
	if err != nil {
		return nil, fmt.Errorf("nft table %s: %w", t.name, err)
	}
	c, err := newConn()
	if err != nil {
		return nil, err
	}
	o := t.objects()
	// The maps are created by EnsureBridge; adding them again is free
	// and keeps Publish working on a table that was flushed.
	c.AddTable(o.table)
	for _, s := range []*nftables.Set{o.hp4, o.hp6, o.hpany} {
		if err := c.AddSet(s, nil); err != nil {
			return nil, err
		}
	}
	ch := &nftables.Chain{Table: o.table, Name: ContainerChain(id)}
	if !exists {
		c.AddChain(ch) // new chains are cheap, re-added ones are not
	}
	elems := map[string][]nftables.SetElement{}
	for i, k := range keys {
		b := Binding{PortMapping: resolved[i], ContainerID: id, Bridge: bridge, ContainerIP: cip}
		c.AddRule(&nftables.Rule{Table: o.table, Chain: ch, Exprs: dnatRule(k, b),
			UserData: commentUserData(ruleComment(b))})
		elems[k.mapName()] = append(elems[k.mapName()], nftables.SetElement{
			Key:         k.bytes(),
			VerdictData: &expr.Verdict{Kind: expr.VerdictGoto, Chain: ContainerChain(id)},
			Comment:     id,
		})
	}
	for name, es := range elems {
		if err := c.SetAddElements(o.set(name), es); err != nil {
			return nil, err
		}
	}
	if err := c.Flush(); err != nil {
		if errors.Is(err, unix.EEXIST) || errors.Is(err, unix.EBUSY) {
			return nil, errdefs.Wrap(errdefs.ErrConflict, fmt.Sprintf("nft table %s: publish ports of %s", t.name, id), err)
		}
		return nil, fmt.Errorf("nft table %s: publish ports of %s: %w", t.name, id, err)
	}
	return resolved, nil
}

// commitChainRemoval sends c's batch, which deletes a chain, and closes
// c in the background. The commit itself is quick, but closing an
// nftables socket after a deletion waits for the kernel to free what the
// transaction deleted, one RCU grace period (~10 ms; nf_tables flushes its
// destroy work when a netfilter socket is released): not something the
// caller needs to wait for.
func (t *Table) commitChainRemoval(c *nftables.Conn) error {
	err := c.Flush()
	go func() { _ = c.CloseLasting() }()
	return err
}

func commentUserData(s string) []byte {
	b := append([]byte(s), 0)
	return append([]byte{0, byte(len(b))}, b...)
}

func (t *Table) ports(id string) ([]Binding, error) {
	rules, err := dumpRules(t.name, ContainerChain(id))
	if err != nil {
		return nil, fmt.Errorf("nft table %s: read ports of %s: %w", t.name, id, err)
	}
	var out []Binding
	for _, r := range rules {
		b, err := parseRuleComment(r.comment)
		if err != nil {
			continue // not ours
		}
		out = append(out, b)
	}
	return out, nil
}

func (t *Table) unpublish(id, bridge string) error {
	chain := ContainerChain(id)
	for attempt := 0; ; attempt++ {
		rules, err := dumpRules(t.name, chain)
		if err != nil {
			return fmt.Errorf("nft table %s: read ports of %s: %w", t.name, id, err)
		}
		var drop []ruleInfo
		var bindings []Binding
		for _, r := range rules {
			b, err := parseRuleComment(r.comment)
			if err != nil || (bridge != "" && b.Bridge != bridge) {
				continue
			}
			drop = append(drop, r)
			bindings = append(bindings, b)
		}
		whole := bridge == "" || len(drop) == len(rules)
		if len(drop) == 0 && whole {
			// No rules: the chain may still exist (empty).
			if ok, err := chainExists(t.name, chain); err != nil || !ok {
				return err
			}
		} else if len(drop) == 0 {
			return nil
		}

		var c *nftables.Conn
		if whole {
			// A lasting socket, opened here in the caller's namespace,
			// so that the commit can be sent from another goroutine.
			c, err = nftables.New(nftables.AsLasting())
			if err != nil {
				return fmt.Errorf("nftables: %w", err)
			}
		} else if c, err = newConn(); err != nil {
			return err
		}
		o := t.objects()
		ch := &nftables.Chain{Table: o.table, Name: chain}
		elems := map[string][]nftables.SetElement{}
		for _, b := range bindings {
			k := keyFor(b.HostIP, b.ContainerIP, b.Protocol, b.HostPort)
			elems[k.mapName()] = append(elems[k.mapName()], nftables.SetElement{Key: k.bytes()})
		}
		for name, es := range elems {
			if err := c.SetDeleteElements(o.set(name), es); err != nil {
				_ = c.CloseLasting()
				return err
			}
		}
		if whole {
			c.FlushChain(ch)
			c.DelChain(ch)
			err = t.commitChainRemoval(c)
		} else {
			for _, r := range drop {
				if err := c.DelRule(&nftables.Rule{Table: o.table, Chain: ch, Handle: r.handle}); err != nil {
					return err
				}
			}
			err = c.Flush()
		}
		if err == nil {
			return nil
		}
		if errors.Is(err, unix.ENOENT) && attempt < 3 {
			continue // removed concurrently; look again
		}
		return fmt.Errorf("nft table %s: unpublish ports of %s: %w", t.name, id, err)
	}
}
