package opts

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-run/berth/internal/errdefs"
	"github.com/berth-run/berth/internal/oci"
)

func TestParseMemory(t *testing.T) {
	// docker's go-units RAMInBytes cases
	for in, want := range map[string]int64{
		"32": 32, "32b": 32, "32B": 32, "32k": 32 << 10, "32K": 32 << 10, "32kb": 32 << 10,
		"32Kb": 32 << 10, "32kib": 32 << 10, "32KiB": 32 << 10, "32Mb": 32 << 20, "32Gb": 32 << 30,
		"32Tb": 32 << 40, "32PB": 32 << 50, "32m": 32 << 20, "1g": 1 << 30, "512k": 512 << 10,
		"1024b": 1024, "1.5g": 1610612736, "0.5m": 524288, "32.3": 32, "32 mb": 32 << 20,
		"32 ": 32, "0": 0, ".5k": 512, "1.k": 1024, "8p": 8 << 50,
	} {
		got, err := ParseMemory(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, in := range []string{
		"", "hello", "-32", "-1", " 32 ", "32bm", "32bb", "32mib32", "32m ", "32.3.3", "32kbb",
		"m", ".", "1e3", "0x10", "32 mb b", "1_000", "8192p", "NaN", "Inf", "32mi", "32mbi",
	} {
		_, err := ParseMemory(in)
		assert.ErrorIs(t, err, errdefs.ErrInvalid, "%q", in)
	}
	n, err := ParseMemorySwap("-1")
	require.NoError(t, err)
	assert.Equal(t, int64(-1), n)
	n, err = ParseMemorySwap("1g")
	require.NoError(t, err)
	assert.Equal(t, int64(1<<30), n)
	_, err = ParseMemorySwap("-2")
	assert.ErrorIs(t, err, errdefs.ErrInvalid)
}

func TestParseCPUs(t *testing.T) {
	for in, want := range map[string]int64{
		"1": 1e9, "1.5": 15e8, "0.01": 1e7, ".5": 5e8, "2.": 2e9, "0.000000001": 1,
		"1.000000000000": 1e9, "16": 16e9,
	} {
		got, err := ParseCPUs(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, in := range []string{"", "-1", "abc", "1.0000000001", "1e3", "99999999999", "1,5"} {
		_, err := ParseCPUs(in)
		assert.ErrorIs(t, err, errdefs.ErrInvalid, "%q", in)
	}
}

func TestParseUlimit(t *testing.T) {
	for in, want := range map[string]oci.Ulimit{
		"nofile=1024:2048": {Name: "nofile", Soft: 1024, Hard: 2048},
		"nproc=512":        {Name: "nproc", Soft: 512, Hard: 512},
		"core=0:-1":        {Name: "core", Soft: 0, Hard: oci.RlimitInfinity},
		"memlock=-1":       {Name: "memlock", Soft: oci.RlimitInfinity, Hard: oci.RlimitInfinity},
		"rtprio=99:99":     {Name: "rtprio", Soft: 99, Hard: 99},
	} {
		got, err := ParseUlimit(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, in := range []string{"nofile", "nofile=", "files=1", "nofile=1:2:3", "nofile=2048:1024", "nofile=-1:1024", "nofile=abc", "nofile=-2", "as=1", "NOFILE=1"} {
		_, err := ParseUlimit(in)
		assert.ErrorIs(t, err, errdefs.ErrInvalid, in)
	}
}

func TestParseEnv(t *testing.T) {
	lookup := func(k string) (string, bool) {
		v, ok := map[string]string{"HOME": "/root", "EMPTY": ""}[k]
		return v, ok
	}
	for in, want := range map[string]string{
		"A=1": "A=1", "A=": "A=", "A=b=c": "A=b=c", "HOME": "HOME=/root", "EMPTY": "EMPTY=", "UNSET": "UNSET",
	} {
		got, err := ParseEnv(in, lookup)
		require.NoError(t, err)
		assert.Equal(t, want, got, in)
	}
	_, err := ParseEnv("=x", lookup)
	assert.ErrorIs(t, err, errdefs.ErrInvalid)
}

func TestParseEnvFile(t *testing.T) {
	lookup := func(k string) (string, bool) {
		v, ok := map[string]string{"FROM_HOST": "hostval"}[k]
		return v, ok
	}
	file := "\uFEFF# comment\n" +
		"\n" +
		"A=1\n" +
		"   B=  spaced value  \n" +
		"C=\"quoted\"\n" +
		"D='single' # not a comment\n" +
		"FROM_HOST\n" +
		"NOT_SET\n" +
		"\t# indented comment\n" +
		"E=a=b\n" +
		"F=\n" +
		"G=$HOME\n"
	got, err := ParseEnvFile(strings.NewReader(file), lookup)
	require.NoError(t, err)
	assert.Equal(t, []string{
		"A=1", "B=  spaced value  ", `C="quoted"`, "D='single' # not a comment",
		"FROM_HOST=hostval", "E=a=b", "F=", "G=$HOME",
	}, got)

	for _, bad := range []string{"=value\n", "MY VAR=1\n", "A\tB=1\n", "A=\xff\n"} {
		_, err := ParseEnvFile(strings.NewReader(bad), lookup)
		assert.ErrorIs(t, err, errdefs.ErrInvalid, "%q", bad)
	}
	// a label file: names without = are dropped, later lines win
	labels, err := ParseLabelFile(strings.NewReader("a=1\nb\nc=x y\na=2\n"))
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"a": "2", "c": "x y"}, labels)
}

func TestParseLabel(t *testing.T) {
	for in, want := range map[string][2]string{
		"a=b": {"a", "b"}, "a": {"a", ""}, "a=": {"a", ""}, " a=b c": {"a", "b c"},
		"com.example.x=y=z": {"com.example.x", "y=z"},
	} {
		k, v, err := ParseLabel(in)
		require.NoError(t, err)
		assert.Equal(t, want, [2]string{k, v}, in)
	}
	for _, in := range []string{"", "=b", " =b", "a b=c"} {
		_, _, err := ParseLabel(in)
		assert.ErrorIs(t, err, errdefs.ErrInvalid, in)
	}
}

func TestParseExtraHost(t *testing.T) {
	for in, want := range map[string]ExtraHost{
		"db:10.0.0.2":           {"db", "10.0.0.2"},
		"db=10.0.0.2":           {"db", "10.0.0.2"},
		"v6:2001:db8::1":        {"v6", "2001:db8::1"},
		"v6=[::1]":              {"v6", "::1"},
		"gw:host-gateway":       {"gw", "host-gateway"},
		"my.host.local:1.2.3.4": {"my.host.local", "1.2.3.4"},
	} {
		got, err := ParseExtraHost(in)
		require.NoError(t, err)
		assert.Equal(t, want, got, in)
	}
	for _, in := range []string{"db", ":1.2.3.4", "db:", "db:not-an-ip", "db:1.2.3.4.5", "d b:1.2.3.4"} {
		_, err := ParseExtraHost(in)
		assert.ErrorIs(t, err, errdefs.ErrInvalid, in)
	}
}

func TestParseSecurityOpts(t *testing.T) {
	o, err := ParseSecurityOpts([]string{"no-new-privileges", "seccomp=unconfined", "apparmor=unconfined", "label=disable", "label:type:x"})
	require.NoError(t, err)
	assert.True(t, o.NoNewPrivileges)
	assert.Equal(t, "unconfined", o.Seccomp)
	assert.Equal(t, "unconfined", o.AppArmor)
	assert.Equal(t, []string{"disable", "type:x"}, o.Labels)

	o, err = ParseSecurityOpts([]string{"no-new-privileges=true", "no-new-privileges:false", "seccomp=/etc/p.json", "systempaths=unconfined", "writable-cgroups=true"})
	require.NoError(t, err)
	assert.False(t, o.NoNewPrivileges)
	assert.Equal(t, "/etc/p.json", o.Seccomp)
	assert.True(t, o.SystemPathsUnconfined)
	assert.True(t, *o.WritableCgroups)

	o, err = ParseSecurityOpts([]string{"seccomp=profile.json"})
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(o.Seccomp, "/") && strings.HasSuffix(o.Seccomp, "/profile.json"))

	for _, bad := range []string{"no-new-privileges=maybe", "seccomp", "seccomp=", "bogus=1", "systempaths=confined", "nonsense"} {
		_, err := ParseSecurityOpts([]string{bad})
		assert.ErrorIs(t, err, errdefs.ErrInvalid, bad)
	}
}

func TestParseCapabilities(t *testing.T) {
	got, err := ParseCapabilities([]string{"net_admin", "CAP_SYS_PTRACE", "all"})
	require.NoError(t, err)
	assert.Equal(t, []string{"CAP_NET_ADMIN", "CAP_SYS_PTRACE", "ALL"}, got)
	_, err = ParseCapabilities([]string{"NET_FOO"})
	assert.ErrorIs(t, err, errdefs.ErrInvalid)
	assert.Contains(t, err.Error(), "NET_FOO")
}

func TestParseDevice(t *testing.T) {
	for in, want := range map[string]oci.DeviceMapping{
		"/dev/fuse":              {PathOnHost: "/dev/fuse", PathInContainer: "/dev/fuse", CgroupPermissions: "rwm"},
		"/dev/sda:/dev/xvda":     {PathOnHost: "/dev/sda", PathInContainer: "/dev/xvda", CgroupPermissions: "rwm"},
		"/dev/sda:r":             {PathOnHost: "/dev/sda", PathInContainer: "/dev/sda", CgroupPermissions: "r"},
		"/dev/sda:/dev/xvda:rw":  {PathOnHost: "/dev/sda", PathInContainer: "/dev/xvda", CgroupPermissions: "rw"},
		"/dev/snd:/dev/snd/:mwr": {PathOnHost: "/dev/snd", PathInContainer: "/dev/snd", CgroupPermissions: "mwr"},
	} {
		got, err := ParseDevice(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, in := range []string{"", "dev/sda", "/dev/sda:xvda", "/dev/sda:/dev/xvda:rwx", "/dev/sda:/dev/xvda:rr", "/dev/a:/dev/b:r:w", "/dev/a:rw:rwm", ":/dev/b"} {
		_, err := ParseDevice(in)
		assert.ErrorIs(t, err, errdefs.ErrInvalid, "%q", in)
	}
}

func TestParseRestartPolicy(t *testing.T) {
	for in, want := range map[string]RestartPolicy{
		"": {Name: "no"}, "no": {Name: "no"}, "always": {Name: "always"}, "unless-stopped": {Name: "unless-stopped"},
		"on-failure": {Name: "on-failure"}, "on-failure:5": {Name: "on-failure", MaxRetries: 5}, "on-failure:0": {Name: "on-failure"},
	} {
		got, err := ParseRestartPolicy(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, in := range []string{"sometimes", ":3", "on-failure:x", "on-failure:-1", "always:3", "no:1", "unless-stopped:2"} {
		_, err := ParseRestartPolicy(in)
		assert.ErrorIs(t, err, errdefs.ErrInvalid, in)
	}
}

func TestParseDurations(t *testing.T) {
	d, err := ParseDuration("1m30s")
	require.NoError(t, err)
	assert.Equal(t, 90*time.Second, d)
	d, err = ParseDuration("10")
	require.NoError(t, err)
	assert.Equal(t, 10*time.Second, d)
	for _, in := range []string{"", "-1s", "-5", "ten", "10x"} {
		_, err := ParseDuration(in)
		assert.ErrorIs(t, err, errdefs.ErrInvalid, in)
	}
	n, err := ParseStopTimeout("-1")
	require.NoError(t, err)
	assert.Equal(t, -1, n)
	n, err = ParseStopTimeout("30")
	require.NoError(t, err)
	assert.Equal(t, 30, n)
	for _, in := range []string{"-2", "1.5", "30s", ""} {
		_, err := ParseStopTimeout(in)
		assert.ErrorIs(t, err, errdefs.ErrInvalid, in)
	}
}
