package oci

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/berth-run/berth/internal/errdefs"
)

// maxUserFile bounds how much of the image's /etc/passwd or /etc/group is
// read: an image controls these files.
const maxUserFile = 16 << 20

// maxID is the largest uid or gid docker accepts (31 bits, for 32-bit
// compatibility).
const maxID = 1<<31 - 1

type passwdEntry struct {
	name     string
	uid, gid int
	home     string
}

type groupEntry struct {
	name    string
	gid     int
	members []string
}

// execUser is the resolved process identity.
type execUser struct {
	uid, gid int
	sgids    []int // supplementary groups (the user's groups in /etc/group)
	home     string
}

// field returns the i-th colon-separated field of line, or "".
func field(fields []string, i int) string {
	if i < len(fields) {
		return fields[i]
	}
	return ""
}

// atoi parses a numeric field the way the C library and moby/sys/user do:
// a malformed number reads as 0.
func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// parsePasswd reads passwd(5) lines: name:password:uid:gid:gecos:home:shell.
// Blank lines are skipped; every other line is an entry, even a short one.
func parsePasswd(data []byte) ([]passwdEntry, error) {
	var out []passwdEntry
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, maxUserFile)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		f := strings.Split(line, ":")
		out = append(out, passwdEntry{
			name: field(f, 0),
			uid:  atoi(field(f, 2)),
			gid:  atoi(field(f, 3)),
			home: field(f, 5),
		})
	}
	return out, sc.Err()
}

// parseGroup reads group(5) lines: name:password:gid:member,member. Blank
// lines and lines starting with # are skipped, as glibc does.
func parseGroup(data []byte) ([]groupEntry, error) {
	var out []groupEntry
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, maxUserFile)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.Split(line, ":")
		g := groupEntry{name: field(f, 0), gid: atoi(field(f, 2))}
		if m := field(f, 3); m != "" {
			g.members = strings.Split(m, ",")
		}
		out = append(out, g)
	}
	return out, sc.Err()
}

// numericID parses a uid or gid given by the user. ok is false for a name.
func numericID(s string) (id int, ok bool, err error) {
	if s == "" {
		return 0, false, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		if errors.Is(err, strconv.ErrRange) {
			return 0, true, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("id %s: uids and gids must be in range 0-%d", s, maxID))
		}
		return 0, false, nil
	}
	if n < 0 || n > maxID {
		return 0, true, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("id %s: uids and gids must be in range 0-%d", s, maxID))
	}
	return n, true, nil
}

// resolveUser resolves a docker user spec against the image's passwd and
// group files (nil when absent), following moby/sys/user GetExecUser, which
// docker and runc use:
//
//   - "" is uid 0 looked up in passwd (its gid, home and groups);
//   - a name must be in passwd; a number need not be (gid 0, home "/");
//   - a user found in passwd gets its gid, home, and the groups that list
//     it as a member, unless a group is given explicitly;
//   - an explicit group ("user:group") must be in group unless numeric, and
//     then there are no supplementary groups.
//
// Fields after a second colon are ignored, as docker does.
func resolveUser(spec string, passwd, group []byte) (execUser, error) {
	u := execUser{home: "/"}
	parts := strings.Split(spec, ":")
	userArg, groupArg := field(parts, 0), field(parts, 1)

	uidArg, isUID, err := numericID(userArg)
	if err != nil {
		return u, err
	}
	gidArg, isGID, err := numericID(groupArg)
	if err != nil {
		return u, err
	}

	users, err := parsePasswd(passwd)
	if err != nil {
		return u, errdefs.Wrap(errdefs.ErrInvalid, "reading the image's /etc/passwd", err)
	}
	var matched *passwdEntry
	for i := range users {
		p := &users[i]
		var hit bool
		switch {
		case userArg == "":
			hit = p.uid == 0
		case isUID:
			hit = p.uid == uidArg
		default:
			hit = p.name == userArg
		}
		if hit {
			matched = p
			break
		}
	}
	switch {
	case matched != nil:
		u.uid, u.gid, u.home = matched.uid, matched.gid, matched.home
	case userArg == "":
		// root without a passwd entry: uid 0, gid 0, home "/".
	case isUID:
		u.uid = uidArg
	default:
		return u, errdefs.New(errdefs.ErrNotFound, fmt.Sprintf("unable to find user %s: no matching entries in passwd file", userArg))
	}

	if groupArg == "" && matched == nil {
		return u, nil
	}
	groups, err := parseGroup(group)
	if err != nil {
		return u, errdefs.Wrap(errdefs.ErrInvalid, "reading the image's /etc/group", err)
	}
	if groupArg != "" {
		found := false
		for _, g := range groups {
			if (isGID && g.gid == gidArg) || (!isGID && g.name == groupArg) {
				u.gid, found = g.gid, true
				break
			}
		}
		if !found {
			if !isGID {
				return u, errdefs.New(errdefs.ErrNotFound, fmt.Sprintf("unable to find group %s: no matching entries in group file", groupArg))
			}
			u.gid = gidArg
		}
		return u, nil
	}
	for _, g := range groups {
		if slices.Contains(g.members, matched.name) {
			u.sgids = append(u.sgids, g.gid)
		}
	}
	return u, nil
}

// additionalGroups resolves docker --group-add values: group names from
// the image's group file, or numbers (which need not be there).
func additionalGroups(names []string, group []byte) ([]int, error) {
	if len(names) == 0 {
		return nil, nil
	}
	groups, err := parseGroup(group)
	if err != nil {
		return nil, errdefs.Wrap(errdefs.ErrInvalid, "reading the image's /etc/group", err)
	}
	var out []int
	for _, name := range names {
		gid, isGID, err := numericID(name)
		if err != nil {
			return nil, err
		}
		found := false
		for _, g := range groups {
			if (isGID && g.gid == gid) || (!isGID && g.name == name) {
				if g.gid < 0 || g.gid > maxID {
					return nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("group %s: uids and gids must be in range 0-%d", name, maxID))
				}
				out = append(out, g.gid)
				found = true
				break
			}
		}
		if !found {
			if !isGID {
				return nil, errdefs.New(errdefs.ErrNotFound, fmt.Sprintf("unable to find group %s: no matching entries in group file", name))
			}
			out = append(out, gid)
		}
	}
	return out, nil
}
