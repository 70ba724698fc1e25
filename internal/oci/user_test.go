package oci

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/berth-run/berth/internal/errdefs"
)

// TestResolveUser follows moby/sys/user GetExecUser's rules, which docker
// and runc use, against a busybox-like passwd and group.
func TestResolveUser(t *testing.T) {
	passwd, group := []byte(busyboxFiles["/etc/passwd"]), []byte(busyboxFiles["/etc/group"])
	for _, tc := range []struct {
		spec string
		want execUser
		kind error
		msg  string
	}{
		{spec: "", want: execUser{uid: 0, gid: 0, home: "/root", sgids: []int{10}}},
		{spec: "root", want: execUser{uid: 0, gid: 0, home: "/root", sgids: []int{10}}},
		{spec: "app", want: execUser{uid: 1000, gid: 1000, home: "/home/app", sgids: []int{100, 999}}},
		{spec: "1000", want: execUser{uid: 1000, gid: 1000, home: "/home/app", sgids: []int{100, 999}}},
		{spec: "1000:1000", want: execUser{uid: 1000, gid: 1000, home: "/home/app"}},
		{spec: "app:users", want: execUser{uid: 1000, gid: 100, home: "/home/app"}},
		{spec: "33:docker", want: execUser{uid: 33, gid: 999, home: "/var/www"}},
		{spec: "4242", want: execUser{uid: 4242, gid: 0, home: "/"}},
		{spec: "4242:4343", want: execUser{uid: 4242, gid: 4343, home: "/"}},
		{spec: "nobody:65534", want: execUser{uid: 65534, gid: 65534, home: "/home"}},
		{spec: ":5", want: execUser{uid: 0, gid: 5, home: "/root"}},
		{spec: "app:users:ignored", want: execUser{uid: 1000, gid: 100, home: "/home/app"}},
		{spec: "ghost", kind: errdefs.ErrNotFound, msg: "unable to find user ghost: no matching entries in passwd file"},
		{spec: "app:ghosts", kind: errdefs.ErrNotFound, msg: "unable to find group ghosts: no matching entries in group file"},
		{spec: "-1", kind: errdefs.ErrInvalid, msg: "range"},
		{spec: "99999999999", kind: errdefs.ErrInvalid, msg: "range"},
		{spec: "1:2147483648", kind: errdefs.ErrInvalid, msg: "range"},
	} {
		t.Run(tc.spec, func(t *testing.T) {
			got, err := resolveUser(tc.spec, passwd, group)
			if tc.kind != nil {
				require.ErrorIs(t, err, tc.kind)
				assert.Contains(t, err.Error(), tc.msg)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestResolveUserWithoutFiles(t *testing.T) {
	// scratch images: numeric ids work, names do not
	u, err := resolveUser("", nil, nil)
	require.NoError(t, err)
	assert.Equal(t, execUser{home: "/"}, u)
	u, err = resolveUser("1000:1000", nil, nil)
	require.NoError(t, err)
	assert.Equal(t, execUser{uid: 1000, gid: 1000, home: "/"}, u)
	_, err = resolveUser("app", nil, nil)
	assert.ErrorIs(t, err, errdefs.ErrNotFound)
	_, err = resolveUser("0:wheel", nil, nil)
	assert.ErrorIs(t, err, errdefs.ErrNotFound)
}

func TestParseUserFilesLikeLibc(t *testing.T) {
	// short, padded and malformed lines: a bad number reads as 0; the
	// first matching entry wins; comments only count in group.
	passwd := []byte("  \n  alice:x:1001:1001::/home/alice:/bin/sh  \nbob:x:abc:7\nalice:x:2002:2002::/other:/bin/sh\n")
	u, err := resolveUser("alice", passwd, nil)
	require.NoError(t, err)
	assert.Equal(t, execUser{uid: 1001, gid: 1001, home: "/home/alice"}, u)
	u, err = resolveUser("bob", passwd, nil)
	require.NoError(t, err)
	assert.Equal(t, execUser{uid: 0, gid: 7, home: ""}, u)

	groups, err := parseGroup([]byte("#x:x:1:alice\nstaff:x:50:alice,bob\nempty:x:51:\n"))
	require.NoError(t, err)
	assert.Equal(t, []groupEntry{{name: "staff", gid: 50, members: []string{"alice", "bob"}}, {name: "empty", gid: 51}}, groups)

	gids, err := additionalGroups([]string{"staff", "7", "empty"}, []byte("staff:x:50:\nempty:x:51:\n"))
	require.NoError(t, err)
	assert.Equal(t, []int{50, 7, 51}, gids)
}
