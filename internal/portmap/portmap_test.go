package portmap

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-run/berth/internal/errdefs"
)

func pm(ip string, host, hostEnd, ctr uint16, proto string) PortMapping {
	var a netip.Addr
	if ip != "" {
		a = netip.MustParseAddr(ip)
	}
	return PortMapping{HostIP: a, HostPort: host, HostPortEnd: hostEnd, ContainerPort: ctr, Protocol: proto}
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		spec string
		want []PortMapping
	}{
		{"80", []PortMapping{pm("", 0, 0, 80, "tcp")}},
		{"80/udp", []PortMapping{pm("", 0, 0, 80, "udp")}},
		{"80/UDP", []PortMapping{pm("", 0, 0, 80, "udp")}},
		{"80/sctp", []PortMapping{pm("", 0, 0, 80, "sctp")}},
		{"8080:80", []PortMapping{pm("", 8080, 0, 80, "tcp")}},
		{"0:80", []PortMapping{pm("", 0, 0, 80, "tcp")}},
		{":80", []PortMapping{pm("", 0, 0, 80, "tcp")}},
		{"8080:80/udp", []PortMapping{pm("", 8080, 0, 80, "udp")}},
		{"127.0.0.1:8080:80", []PortMapping{pm("127.0.0.1", 8080, 0, 80, "tcp")}},
		{"0.0.0.0:8080:80", []PortMapping{pm("0.0.0.0", 8080, 0, 80, "tcp")}},
		{"127.0.0.1::80", []PortMapping{pm("127.0.0.1", 0, 0, 80, "tcp")}},
		{"127.0.0.1::80/udp", []PortMapping{pm("127.0.0.1", 0, 0, 80, "udp")}},
		{"[::1]:8080:80", []PortMapping{pm("::1", 8080, 0, 80, "tcp")}},
		{"[::1]::80", []PortMapping{pm("::1", 0, 0, 80, "tcp")}},
		{"::1:8080:80", []PortMapping{pm("::1", 8080, 0, 80, "tcp")}},
		{"[::]:8080:80/udp", []PortMapping{pm("::", 8080, 0, 80, "udp")}},
		{"[::ffff:127.0.0.1]:8080:80", []PortMapping{pm("127.0.0.1", 8080, 0, 80, "tcp")}},
		{"8000-8002:80-82", []PortMapping{
			pm("", 8000, 0, 80, "tcp"), pm("", 8001, 0, 81, "tcp"), pm("", 8002, 0, 82, "tcp")}},
		{"127.0.0.1:8000-8001:80-81/udp", []PortMapping{
			pm("127.0.0.1", 8000, 0, 80, "udp"), pm("127.0.0.1", 8001, 0, 81, "udp")}},
		{"8000-8010:80", []PortMapping{pm("", 8000, 8010, 80, "tcp")}},
		{"80-82", []PortMapping{pm("", 0, 0, 80, "tcp"), pm("", 0, 0, 81, "tcp"), pm("", 0, 0, 82, "tcp")}},
		{"127.0.0.1::80-81", []PortMapping{pm("127.0.0.1", 0, 0, 80, "tcp"), pm("127.0.0.1", 0, 0, 81, "tcp")}},
		{"65535:65535", []PortMapping{pm("", 65535, 0, 65535, "tcp")}},
		{"8080-8080:80", []PortMapping{pm("", 8080, 0, 80, "tcp")}},
	} {
		got, err := Parse(tc.spec)
		if assert.NoError(t, err, tc.spec) {
			assert.Equal(t, tc.want, got, tc.spec)
		}
	}
}

func TestParseInvalid(t *testing.T) {
	for _, spec := range []string{
		"",
		"0",
		"80/icmp",
		"8080:",
		"8080:/tcp",
		"abc",
		"80a",
		"-80",
		"+80",
		"65536",
		"8080:65536",
		"8000-8010:80-81",   // lengths differ
		"8000:80-81",        // one host port, a container range
		"8010-8000:80",      // reversed
		"0-10:80",           // range from 0
		"80-",               // open range
		"1.2.3.4:80",        // an address where a host port belongs
		"1.2.3:8080:80",     // bad address
		"localhost:8080:80", // names are not resolved
		"[127.0.0.1]:8080:80",
		"[::1:8080:80",
		"fe80::1%eth0:8080:80",
		"[::1]:8080:80/",
		"80/tcp/udp",
		" 80",
	} {
		got, err := Parse(spec)
		assert.ErrorIs(t, err, errdefs.ErrInvalid, "%q gave %v", spec, got)
		if err != nil {
			assert.Contains(t, err.Error(), "invalid port spec", spec)
			assert.Contains(t, err.Error(), spec, "the message quotes the input")
		}
	}
}

func TestParseAll(t *testing.T) {
	got, err := ParseAll([]string{"8080:80", "53/udp"})
	require.NoError(t, err)
	assert.Equal(t, []PortMapping{pm("", 8080, 0, 80, "tcp"), pm("", 0, 0, 53, "udp")}, got)
	_, err = ParseAll([]string{"8080:80", "x"})
	assert.ErrorIs(t, err, errdefs.ErrInvalid)
}

func TestPublishAll(t *testing.T) {
	got, err := PublishAll([]string{"80/tcp", "53/udp", "9000", "7000-7001/tcp"})
	require.NoError(t, err)
	assert.Equal(t, []PortMapping{
		pm("", 0, 0, 80, "tcp"), pm("", 0, 0, 53, "udp"), pm("", 0, 0, 9000, "tcp"),
		pm("", 0, 0, 7000, "tcp"), pm("", 0, 0, 7001, "tcp"),
	}, got)
	for _, bad := range []string{"80/icmp", "x/tcp", "0/tcp", ""} {
		_, err := PublishAll([]string{bad})
		assert.ErrorIs(t, err, errdefs.ErrInvalid, bad)
	}
}

func TestString(t *testing.T) {
	assert.Equal(t, "0.0.0.0:8080->80/tcp", pm("", 8080, 0, 80, "tcp").String())
	assert.Equal(t, "127.0.0.1:8080->80/udp", pm("127.0.0.1", 8080, 0, 80, "udp").String())
	assert.Equal(t, "[::1]:8080->80/tcp", pm("::1", 8080, 0, 80, "tcp").String())
	assert.Equal(t, "0.0.0.0:8000-8010->80/tcp", pm("", 8000, 8010, 80, "tcp").String())
}

func TestSpecRoundTrip(t *testing.T) {
	for _, spec := range []string{"80", "8080:80/udp", "127.0.0.1::80", "[::1]:8080:80", "8000-8010:80", "0.0.0.0:1:2/sctp"} {
		ms, err := Parse(spec)
		require.NoError(t, err)
		for _, m := range ms {
			again, err := Parse(m.Spec())
			require.NoError(t, err, m.Spec())
			assert.Equal(t, []PortMapping{m}, again)
		}
	}
}

func FuzzParsePort(f *testing.F) {
	for _, s := range []string{
		"80", "8080:80", "127.0.0.1:8080:80/udp", "127.0.0.1::80", "[::1]:8080:80",
		"::1:8080:80", "8000-8010:80-90", "8000-8010:80", "80-90/sctp", "0:80", "x", "[", ":", "::",
		"1-2-3", "65535-1:1", "[::ffff:1.2.3.4]:1:1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		ms, err := Parse(spec)
		if err != nil {
			if !strings.Contains(err.Error(), "invalid port spec") {
				t.Fatalf("%q: unclassified error %v", spec, err)
			}
			return
		}
		if len(ms) == 0 || len(ms) > 65535 {
			t.Fatalf("%q: %d mappings", spec, len(ms))
		}
		for _, m := range ms {
			switch {
			case m.ContainerPort == 0:
				t.Fatalf("%q: container port 0", spec)
			case m.Protocol != TCP && m.Protocol != UDP && m.Protocol != SCTP:
				t.Fatalf("%q: protocol %q", spec, m.Protocol)
			case m.HostPortEnd != 0 && (m.HostPort == 0 || m.HostPortEnd <= m.HostPort):
				t.Fatalf("%q: bad host range %d-%d", spec, m.HostPort, m.HostPortEnd)
			case m.HostIP.IsValid() && (m.HostIP.Zone() != "" || m.HostIP.Is4In6()):
				t.Fatalf("%q: host ip %v", spec, m.HostIP)
			}
			again, err := Parse(m.Spec())
			if err != nil || len(again) != 1 || again[0] != m {
				t.Fatalf("%q: mapping %+v formats as %q which parses as %+v, %v", spec, m, m.Spec(), again, err)
			}
		}
	})
}
