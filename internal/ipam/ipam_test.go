package ipam

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-run/berth/internal/errdefs"
)

// A test binary started with these variables set is a worker of
// TestAllocateManyProcesses: it allocates addresses and prints them.
const (
	workerDir    = "BERTH_IPAM_WORKER_DIR"
	workerPrefix = "BERTH_IPAM_WORKER_PREFIX"
	workerCount  = "BERTH_IPAM_WORKER_COUNT"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(workerDir); dir != "" {
		os.Exit(worker(dir, os.Getenv(workerPrefix), os.Getenv(workerCount)))
	}
	os.Exit(m.Run())
}

func worker(dir, prefix, count string) int {
	n, err := strconv.Atoi(count)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	p, err := Open(dir, netip.MustParsePrefix("10.77.0.0/24"), netip.MustParseAddr("10.77.0.1"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	for i := range n {
		a, err := p.Allocate(context.Background(), fmt.Sprintf("%s-%d", prefix, i))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Println(a.Addr())
	}
	return 0
}

func newPool(t *testing.T, subnet, gw string) *Pool {
	t.Helper()
	var g netip.Addr
	if gw != "" {
		g = netip.MustParseAddr(gw)
	}
	p, err := Open(t.TempDir(), netip.MustParsePrefix(subnet), g)
	require.NoError(t, err)
	return p
}

func TestAllocateSequenceAndRoundRobin(t *testing.T) {
	ctx := context.Background()
	p := newPool(t, "10.88.0.0/29", "10.88.0.1") // hosts .1-.6, gateway .1
	var got []string
	for _, id := range []string{"a", "b", "c"} {
		a, err := p.Allocate(ctx, id)
		require.NoError(t, err)
		got = append(got, a.String())
	}
	assert.Equal(t, []string{"10.88.0.2/29", "10.88.0.3/29", "10.88.0.4/29"}, got)

	// Idempotent for a container that already has a lease.
	a, err := p.Allocate(ctx, "b")
	require.NoError(t, err)
	assert.Equal(t, "10.88.0.3/29", a.String())

	// A released address is not handed out again at once.
	require.NoError(t, p.Release(ctx, "a"))
	a, err = p.Allocate(ctx, "d")
	require.NoError(t, err)
	assert.Equal(t, "10.88.0.5/29", a.String())
	a, err = p.Allocate(ctx, "e")
	require.NoError(t, err)
	assert.Equal(t, "10.88.0.6/29", a.String())
	// Wraps around, skipping the network address and the gateway, to the
	// released .2; never the broadcast .7.
	a, err = p.Allocate(ctx, "f")
	require.NoError(t, err)
	assert.Equal(t, "10.88.0.2/29", a.String())

	_, err = p.Allocate(ctx, "g")
	assert.ErrorIs(t, err, errdefs.ErrConflict)
	assert.ErrorContains(t, err, "no free address")

	leases, err := p.Leases(ctx)
	require.NoError(t, err)
	assert.Len(t, leases, 5)
	assert.Equal(t, Lease{Addr: netip.MustParseAddr("10.88.0.2"), ContainerID: "f"}, leases[0])
}

func TestReserve(t *testing.T) {
	ctx := context.Background()
	p := newPool(t, "10.88.0.0/24", "10.88.0.1")
	a, err := p.Reserve(ctx, "a", netip.MustParseAddr("10.88.0.2"))
	require.NoError(t, err)
	assert.Equal(t, "10.88.0.2/24", a.String())

	// Same again: no-op.
	_, err = p.Reserve(ctx, "a", netip.MustParseAddr("10.88.0.2"))
	require.NoError(t, err)

	_, err = p.Reserve(ctx, "b", netip.MustParseAddr("10.88.0.2"))
	assert.ErrorIs(t, err, errdefs.ErrConflict)
	assert.ErrorContains(t, err, "in use by container a")

	_, err = p.Reserve(ctx, "a", netip.MustParseAddr("10.88.0.9"))
	assert.ErrorIs(t, err, errdefs.ErrConflict)

	for _, bad := range []string{"10.88.0.0", "10.88.0.1", "10.88.0.255", "10.89.0.3"} {
		_, err = p.Reserve(ctx, "c", netip.MustParseAddr(bad))
		assert.ErrorIs(t, err, errdefs.ErrInvalid, bad)
	}

	// Dynamic allocation skips the reserved address.
	b, err := p.Allocate(ctx, "b")
	require.NoError(t, err)
	assert.Equal(t, "10.88.0.3/24", b.String())
}

func TestReleaseIdempotent(t *testing.T) {
	ctx := context.Background()
	p := newPool(t, "10.88.0.0/24", "10.88.0.1")
	require.NoError(t, p.Release(ctx, "nobody"))
	_, err := p.Allocate(ctx, "a")
	require.NoError(t, err)
	require.NoError(t, p.Release(ctx, "a"))
	require.NoError(t, p.Release(ctx, "a"))
	leases, err := p.Leases(ctx)
	require.NoError(t, err)
	assert.Empty(t, leases)
}

func TestIPv6Pool(t *testing.T) {
	ctx := context.Background()
	p := newPool(t, "fd00:88::/64", "fd00:88::1")
	a, err := p.Allocate(ctx, "a")
	require.NoError(t, err)
	assert.Equal(t, "fd00:88::2/64", a.String())
}

func TestOpenInvalid(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ subnet, gw string }{
		{"10.88.0.1/16", ""},
		{"10.88.0.0/31", ""},
		{"10.88.0.0/16", "10.89.0.1"},
	} {
		var gw netip.Addr
		if tc.gw != "" {
			gw = netip.MustParseAddr(tc.gw)
		}
		_, err := Open(dir, netip.MustParsePrefix(tc.subnet), gw)
		assert.ErrorIs(t, err, errdefs.ErrInvalid, tc.subnet)
	}
	_, err := Open("", netip.MustParsePrefix("10.88.0.0/16"), netip.Addr{})
	assert.ErrorIs(t, err, errdefs.ErrInvalid)
}

func TestSubnetMismatch(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	p, err := Open(dir, netip.MustParsePrefix("10.88.0.0/24"), netip.Addr{})
	require.NoError(t, err)
	_, err = p.Allocate(ctx, "a")
	require.NoError(t, err)
	q, err := Open(dir, netip.MustParsePrefix("10.99.0.0/24"), netip.Addr{})
	require.NoError(t, err)
	_, err = q.Allocate(ctx, "b")
	assert.ErrorIs(t, err, errdefs.ErrConflict)
	require.NoError(t, p.Release(ctx, "a"))
	// With no leases left the state is taken over by the new subnet.
	b, err := q.Allocate(ctx, "b")
	require.NoError(t, err)
	assert.Equal(t, "10.99.0.1/24", b.String())
}

func TestCorruptState(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(dir+"/"+stateName, []byte("{"), 0o600))
	p, err := Open(dir, netip.MustParsePrefix("10.88.0.0/24"), netip.Addr{})
	require.NoError(t, err)
	_, err = p.Allocate(context.Background(), "a")
	assert.ErrorIs(t, err, errdefs.ErrCorrupt)
}

func TestAllocateConcurrentGoroutines(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	var wg sync.WaitGroup
	addrs := make([]netip.Prefix, 40)
	errs := make([]error, 40)
	for i := range addrs {
		wg.Go(func() {
			// A Pool per goroutine, as separate processes would have.
			p, err := Open(dir, netip.MustParsePrefix("10.66.0.0/24"), netip.MustParseAddr("10.66.0.1"))
			if err == nil {
				addrs[i], err = p.Allocate(ctx, fmt.Sprint("c", i))
			}
			errs[i] = err
		})
	}
	wg.Wait()
	seen := map[netip.Prefix]bool{}
	for i, a := range addrs {
		require.NoError(t, errs[i])
		assert.False(t, seen[a], "duplicate %s", a)
		seen[a] = true
	}
}

// TestAllocateManyProcesses re-executes the test binary as 5 workers that
// allocate 10 addresses each from one pool at the same time.
func TestAllocateManyProcesses(t *testing.T) {
	dir := t.TempDir()
	const workers, each = 5, 10
	type result struct {
		out []byte
		err error
	}
	results := make([]result, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(),
				workerDir+"="+dir, workerPrefix+"="+fmt.Sprint("w", w), workerCount+"="+fmt.Sprint(each))
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				err = fmt.Errorf("worker %d: %w: %s", w, err, stderr.String())
			}
			results[w] = result{out, err}
		})
	}
	wg.Wait()
	seen := map[string]bool{}
	for _, r := range results {
		require.NoError(t, r.err)
		sc := bufio.NewScanner(bytes.NewReader(r.out))
		for sc.Scan() {
			a := sc.Text()
			assert.False(t, seen[a], "address %s handed out twice", a)
			seen[a] = true
		}
	}
	assert.Len(t, seen, workers*each)

	p, err := Open(dir, netip.MustParsePrefix("10.77.0.0/24"), netip.MustParseAddr("10.77.0.1"))
	require.NoError(t, err)
	leases, err := p.Leases(context.Background())
	require.NoError(t, err)
	assert.Len(t, leases, workers*each)
	for _, l := range leases {
		assert.True(t, seen[l.Addr.String()], "lease %v not reported by a worker", l)
	}
}

func TestLockHonoursContext(t *testing.T) {
	p := newPool(t, "10.88.0.0/24", "")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := p.Allocate(ctx, "a")
	// The first attempt may win the (free) lock; a cancelled ctx only
	// matters while waiting. Either outcome is fine, but no hang.
	if err != nil {
		assert.True(t, errors.Is(err, context.Canceled))
	}
}

func TestFreeSubnet(t *testing.T) {
	pp := func(s ...string) []netip.Prefix {
		var out []netip.Prefix
		for _, x := range s {
			out = append(out, netip.MustParsePrefix(x))
		}
		return out
	}
	got, err := FreeSubnet(nil, nil)
	require.NoError(t, err)
	assert.Equal(t, "10.88.0.0/16", got.String())

	got, err = FreeSubnet(pp("10.88.0.0/16"), pp("10.89.4.0/24", "192.0.2.0/24"))
	require.NoError(t, err)
	assert.Equal(t, "10.90.0.0/16", got.String())

	// A host route covering all of 10/8 moves the choice to 172.16/12.
	got, err = FreeSubnet(nil, pp("10.0.0.0/8", "172.16.0.0/16"))
	require.NoError(t, err)
	assert.Equal(t, "172.17.0.0/16", got.String())

	_, err = FreeSubnet(pp("10.0.0.0/8"), pp("172.16.0.0/12"))
	assert.ErrorIs(t, err, errdefs.ErrConflict)

	gw, err := Gateway(netip.MustParsePrefix("10.90.0.0/16"))
	require.NoError(t, err)
	assert.Equal(t, "10.90.0.1", gw.String())
}
