package portmap

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-run/berth/internal/errdefs"
)

func TestNewTable(t *testing.T) {
	_, err := NewTable("berth", "/tmp/x.lock")
	require.NoError(t, err)
	for _, bad := range []string{"", "has space", "semi;colon", string(make([]byte, 65))} {
		_, err := NewTable(bad, "/tmp/x.lock")
		assert.ErrorIs(t, err, errdefs.ErrInvalid, bad)
	}
	_, err = NewTable("berth", "")
	assert.ErrorIs(t, err, errdefs.ErrInvalid)
}

func TestKeyOverlaps(t *testing.T) {
	v4 := netip.MustParseAddr("10.88.0.2")
	v6 := netip.MustParseAddr("fd00::2")
	k := func(host string, ctr netip.Addr, proto string, port uint16) portKey {
		var h netip.Addr
		if host != "" {
			h = netip.MustParseAddr(host)
		}
		return keyFor(h, ctr, proto, port)
	}
	any := k("", v4, "tcp", 80)
	assert.True(t, any.any)
	assert.Equal(t, any, k("0.0.0.0", v4, "tcp", 80), "0.0.0.0 is all IPv4 addresses")
	for _, tc := range []struct {
		a, b portKey
		want bool
	}{
		{any, k("127.0.0.1", v4, "tcp", 80), true},
		{k("127.0.0.1", v4, "tcp", 80), k("127.0.0.1", v4, "tcp", 80), true},
		{k("127.0.0.1", v4, "tcp", 80), k("127.0.0.2", v4, "tcp", 80), false},
		{any, k("", v4, "udp", 80), false},
		{any, k("", v4, "tcp", 81), false},
		{any, k("", v6, "tcp", 80), false}, // different families
		{k("", v6, "tcp", 80), k("::1", v6, "tcp", 80), true},
	} {
		assert.Equal(t, tc.want, tc.a.overlaps(tc.b), "%v vs %v", tc.a, tc.b)
		assert.Equal(t, tc.want, tc.b.overlaps(tc.a), "%v vs %v", tc.b, tc.a)
	}
}

func TestRuleCommentRoundTrip(t *testing.T) {
	for _, b := range []Binding{
		{PortMapping: PortMapping{HostPort: 8080, ContainerPort: 80, Protocol: "tcp"},
			ContainerID: "abc", Bridge: "berth0", ContainerIP: netip.MustParseAddr("10.88.0.2")},
		{PortMapping: PortMapping{HostIP: netip.MustParseAddr("::1"), HostPort: 1, ContainerPort: 65535, Protocol: "udp"},
			ContainerID: "x.y-z_1", Bridge: "b", ContainerIP: netip.MustParseAddr("fd00::2")},
		{PortMapping: PortMapping{HostIP: netip.MustParseAddr("0.0.0.0"), HostPort: 5, ContainerPort: 6, Protocol: "sctp"},
			ContainerID: "c", Bridge: "b", ContainerIP: netip.MustParseAddr("10.0.0.1")},
	} {
		got, err := parseRuleComment(ruleComment(b))
		require.NoError(t, err)
		assert.Equal(t, b, got)
	}
	for _, bad := range []string{"", "other comment", "berth id=x", "berth id=x net=b proto=tcp hip=any hport=x cip=1.2.3.4 cport=1"} {
		_, err := parseRuleComment(bad)
		assert.Error(t, err, bad)
	}
}

func TestCheckMapping(t *testing.T) {
	v4 := netip.MustParseAddr("10.88.0.2")
	assert.NoError(t, checkMapping(PortMapping{ContainerPort: 80, Protocol: "tcp"}, v4))
	err := checkMapping(PortMapping{HostIP: netip.MustParseAddr("::1"), ContainerPort: 80, Protocol: "tcp"}, v4)
	assert.ErrorIs(t, err, errdefs.ErrNotSupported)
	for _, m := range []PortMapping{
		{Protocol: "tcp"},
		{ContainerPort: 80, Protocol: "icmp"},
		{HostPort: 10, HostPortEnd: 5, ContainerPort: 80, Protocol: "tcp"},
		{HostPortEnd: 5, ContainerPort: 80, Protocol: "tcp"},
	} {
		assert.ErrorIs(t, checkMapping(m, v4), errdefs.ErrInvalid, "%+v", m)
	}
}
