// Package ipam hands out the addresses of one berth network to containers,
// safely across processes.
//
// A Pool keeps its state in a directory the caller chooses (berth uses
// <root>/networks/<name>.ipam/): a lock file and leases.json. Every
// operation takes an flock on the lock file, reads the state, and writes it
// back atomically (temp file + rename), so any number of processes sharing a
// store allocate distinct addresses and a crash never leaves a torn file.
// The file is not fsynced: leases only matter while containers run, and a
// power loss ends them all; after such a crash the worst case is a lease
// that the store's repair releases.
//
// Allocation is round-robin, like CNI's host-local plugin: the next address
// after the last one handed out, wrapping around, so an address released a
// moment ago is not reused at once (stale ARP entries and conntrack state of
// the previous holder have time to expire).
package ipam

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net/netip"
	"os"
	"path/filepath"
	"slices"

	"github.com/berth-run/berth/internal/errdefs"
	"github.com/berth-run/berth/internal/network/lockfile"
)

const (
	lockName  = "lock"
	stateName = "leases.json"
)

// Pool allocates addresses from one subnet. It holds no open files; each
// method locks, reads and writes the state directory.
type Pool struct {
	dir     string
	subnet  netip.Prefix
	gateway netip.Addr
}

// Lease is one allocated address.
type Lease struct {
	Addr        netip.Addr `json:"addr"`
	ContainerID string     `json:"container"`
}

// state is the on-disk form of a pool (leases.json).
type state struct {
	Subnet netip.Prefix `json:"subnet"`
	// Last is the address most recently handed out by Allocate; the next
	// search starts after it.
	Last   netip.Addr `json:"last,omitzero"`
	Leases []Lease    `json:"leases"`
}

// Open returns the pool of subnet whose state lives in dir. gateway, if
// valid, is never handed out. The directory is created on first use.
func Open(dir string, subnet netip.Prefix, gateway netip.Addr) (*Pool, error) {
	if dir == "" {
		return nil, errdefs.New(errdefs.ErrInvalid, "ipam: empty state directory")
	}
	if err := checkSubnet(subnet); err != nil {
		return nil, err
	}
	if gateway.IsValid() && !subnet.Contains(gateway) {
		return nil, errdefs.New(errdefs.ErrInvalid,
			fmt.Sprintf("ipam: gateway %s is outside subnet %s", gateway, subnet))
	}
	return &Pool{dir: dir, subnet: subnet, gateway: gateway}, nil
}

// checkSubnet accepts canonical IPv4 subnets of at least 4 addresses and
// IPv6 subnets of at least 4 addresses.
func checkSubnet(subnet netip.Prefix) error {
	switch {
	case !subnet.IsValid():
		return errdefs.New(errdefs.ErrInvalid, "ipam: invalid subnet")
	case subnet.Addr().Zone() != "":
		return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("ipam: subnet %s has a zone", subnet))
	case subnet != subnet.Masked():
		return errdefs.New(errdefs.ErrInvalid,
			fmt.Sprintf("ipam: subnet %s has host bits set (did you mean %s?)", subnet, subnet.Masked()))
	case subnet.Addr().BitLen()-subnet.Bits() < 2:
		return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("ipam: subnet %s is too small", subnet))
	}
	return nil
}

// Subnet returns the pool's subnet.
func (p *Pool) Subnet() netip.Prefix { return p.subnet }

// Gateway returns the pool's gateway (the zero Addr if none).
func (p *Pool) Gateway() netip.Addr { return p.gateway }

// Allocate gives containerID an address: its existing lease if it has one
// (so a retried Allocate is harmless), otherwise the next free address after
// the last one handed out. The network address, the IPv4 broadcast address
// and the gateway are never handed out. A full pool is an ErrConflict error.
// The result carries the subnet's prefix length.
func (p *Pool) Allocate(ctx context.Context, containerID string) (netip.Prefix, error) {
	if err := checkID(containerID); err != nil {
		return netip.Prefix{}, err
	}
	var got netip.Addr
	err := p.update(ctx, func(st *state) (bool, error) {
		if l, ok := st.find(containerID); ok {
			got = l.Addr
			return false, nil
		}
		a, err := p.next(st)
		if err != nil {
			return false, err
		}
		st.Leases = append(st.Leases, Lease{Addr: a, ContainerID: containerID})
		st.Last = a
		got = a
		return true, nil
	})
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(got, p.subnet.Bits()), nil
}

// Reserve gives containerID the address addr (a static --ip). addr must be a
// usable host address of the subnet (ErrInvalid otherwise); if another
// container holds it, or containerID already holds a different address, the
// error is ErrConflict. Reserving the lease a container already has is a
// no-op.
func (p *Pool) Reserve(ctx context.Context, containerID string, addr netip.Addr) (netip.Prefix, error) {
	if err := checkID(containerID); err != nil {
		return netip.Prefix{}, err
	}
	addr = addr.Unmap()
	if err := p.usable(addr); err != nil {
		return netip.Prefix{}, err
	}
	err := p.update(ctx, func(st *state) (bool, error) {
		if l, ok := st.find(containerID); ok {
			if l.Addr == addr {
				return false, nil
			}
			return false, errdefs.New(errdefs.ErrConflict,
				fmt.Sprintf("ipam: container %s already has address %s in %s", containerID, l.Addr, p.subnet))
		}
		for _, l := range st.Leases {
			if l.Addr == addr {
				return false, errdefs.New(errdefs.ErrConflict,
					fmt.Sprintf("ipam: address %s is already in use by container %s", addr, l.ContainerID))
			}
		}
		st.Leases = append(st.Leases, Lease{Addr: addr, ContainerID: containerID})
		return true, nil
	})
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(addr, p.subnet.Bits()), nil
}

// Release frees every address containerID holds. Releasing a container
// without a lease is not an error.
func (p *Pool) Release(ctx context.Context, containerID string) error {
	if containerID == "" {
		return errdefs.New(errdefs.ErrInvalid, "ipam: empty container id")
	}
	return p.update(ctx, func(st *state) (bool, error) {
		n := len(st.Leases)
		st.Leases = slices.DeleteFunc(st.Leases, func(l Lease) bool { return l.ContainerID == containerID })
		return len(st.Leases) != n, nil
	})
}

// Leases returns the current leases, ordered by address.
func (p *Pool) Leases(ctx context.Context) ([]Lease, error) {
	var out []Lease
	err := p.update(ctx, func(st *state) (bool, error) {
		out = slices.Clone(st.Leases)
		return false, nil
	})
	slices.SortFunc(out, func(a, b Lease) int { return a.Addr.Compare(b.Addr) })
	return out, err
}

func checkID(id string) error {
	if id == "" {
		return errdefs.New(errdefs.ErrInvalid, "ipam: empty container id")
	}
	return nil
}

// usable reports whether addr may be leased.
func (p *Pool) usable(addr netip.Addr) error {
	switch {
	case !p.subnet.Contains(addr):
		return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("ipam: address %s is outside subnet %s", addr, p.subnet))
	case addr == p.subnet.Addr():
		return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("ipam: address %s is the network address of %s", addr, p.subnet))
	case addr.Is4() && addr == lastAddr(p.subnet):
		return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("ipam: address %s is the broadcast address of %s", addr, p.subnet))
	case addr == p.gateway:
		return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("ipam: address %s is the gateway of %s", addr, p.subnet))
	}
	return nil
}

// next finds the first free address after st.Last, wrapping around.
func (p *Pool) next(st *state) (netip.Addr, error) {
	first := p.subnet.Addr().Next()
	last := lastAddr(p.subnet)
	if p.subnet.Addr().Is4() {
		last = last.Prev() // the broadcast address
	}
	taken := make(map[netip.Addr]bool, len(st.Leases)+1)
	for _, l := range st.Leases {
		taken[l.Addr] = true
	}
	if p.gateway.IsValid() {
		taken[p.gateway] = true
	}
	// A pool with as many leases as addresses is full; checking first keeps
	// a full /8 from costing a walk over 16M addresses.
	if size := poolSize(first, last); size.IsInt64() && int64(len(taken)) >= size.Int64() {
		return netip.Addr{}, errdefs.New(errdefs.ErrConflict, fmt.Sprintf("ipam: no free address in %s", p.subnet))
	}
	start := first
	if st.Last.IsValid() && p.subnet.Contains(st.Last) && st.Last.Compare(last) < 0 {
		start = st.Last.Next()
	}
	a := start
	for {
		if !taken[a] {
			return a, nil
		}
		if a == last {
			a = first
		} else {
			a = a.Next()
		}
		if a == start {
			return netip.Addr{}, errdefs.New(errdefs.ErrConflict, fmt.Sprintf("ipam: no free address in %s", p.subnet))
		}
	}
}

// poolSize is the number of addresses in [first, last].
func poolSize(first, last netip.Addr) *big.Int {
	f := new(big.Int).SetBytes(first.AsSlice())
	l := new(big.Int).SetBytes(last.AsSlice())
	return l.Sub(l, f).Add(l, big.NewInt(1))
}

// lastAddr is the highest address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

func (st *state) find(id string) (Lease, bool) {
	for _, l := range st.Leases {
		if l.ContainerID == id {
			return l, true
		}
	}
	return Lease{}, false
}

// update runs fn on the state under the pool's lock and writes the state
// back if fn reports a change.
func (p *Pool) update(ctx context.Context, fn func(*state) (bool, error)) error {
	lk, err := lockfile.Lock(ctx, filepath.Join(p.dir, lockName))
	if err != nil {
		return fmt.Errorf("ipam %s: %w", p.subnet, err)
	}
	defer lk.Unlock()
	// A writer killed between its temp file and the rename left the temp
	// file; under the lock every one is such a leftover.
	stale, _ := filepath.Glob(filepath.Join(p.dir, ".leases-*"))
	for _, f := range stale {
		_ = os.Remove(f)
	}
	st, err := p.load()
	if err != nil {
		return err
	}
	changed, err := fn(st)
	if err != nil || !changed {
		return err
	}
	return p.store(st)
}

func (p *Pool) load() (*state, error) {
	path := filepath.Join(p.dir, stateName)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &state{Subnet: p.subnet}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ipam: %w", err)
	}
	var st state
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, errdefs.Wrap(errdefs.ErrCorrupt, "ipam: "+path, err)
	}
	if st.Subnet != p.subnet {
		if len(st.Leases) > 0 {
			return nil, errdefs.New(errdefs.ErrConflict,
				fmt.Sprintf("ipam: %s holds leases of subnet %s, not %s", p.dir, st.Subnet, p.subnet))
		}
		st = state{Subnet: p.subnet}
	}
	return &st, nil
}

func (p *Pool) store(st *state) error {
	b, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("ipam: %w", err)
	}
	f, err := os.CreateTemp(p.dir, ".leases-*")
	if err != nil {
		return fmt.Errorf("ipam: %w", err)
	}
	tmp := f.Name()
	_, werr := f.Write(b)
	cerr := f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("ipam: write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, filepath.Join(p.dir, stateName)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("ipam: %w", err)
	}
	return nil
}
