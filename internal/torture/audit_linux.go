package torture

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/google/nftables"
	"github.com/moby/sys/mountinfo"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Take snapshots what exists in scope now.
func Take(scope Scope) (*Snapshot, error) {
	s := &Snapshot{}
	var err error
	if s.Mounts, err = mountsUnder(scope.Root, scope.RunRoot); err != nil {
		return nil, err
	}
	dirs, err := cgroupDirs(scope.CgroupParent)
	if err != nil {
		return nil, err
	}
	for _, d := range dirs {
		s.Cgroups = append(s.Cgroups, d.name)
	}
	sorted(s.Cgroups)
	if s.Links, s.Addrs, err = netlinkState(); err != nil {
		return nil, err
	}
	if s.Nft, err = nftState(); err != nil {
		return nil, err
	}
	if s.Leases, err = ipamLeases(filepath.Join(scope.Root, "networks")); err != nil {
		return nil, err
	}
	if s.Processes, err = processes(dirs); err != nil {
		return nil, err
	}
	if s.Files, err = files(scope.Root, scope.RunRoot); err != nil {
		return nil, err
	}
	if s.FDs, err = FDCount(); err != nil {
		return nil, err
	}
	if ents, err := os.ReadDir("/proc/self/fd"); err == nil {
		for _, e := range ents {
			if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil {
				if strings.HasPrefix(l, "socket:") {
					l += socketKind(e.Name())
				}
				s.FDLinks = append(s.FDLinks, l)
			}
		}
		sorted(s.FDLinks)
	}
	return s, nil
}

// FDCount is the number of open file descriptors of this process.
func FDCount() (int, error) {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0, err
	}
	return len(ents) - 1, nil // the directory's own fd
}

func mountsUnder(dirs ...string) ([]string, error) {
	var out []string
	for _, d := range dirs {
		ms, err := mountinfo.GetMounts(mountinfo.PrefixFilter(d))
		if err != nil {
			return nil, fmt.Errorf("mountinfo: %w", err)
		}
		for _, m := range ms {
			out = append(out, m.Mountpoint+" "+m.FSType)
		}
	}
	return sorted(out), nil
}

// cgroupDir is one directory at or below the cgroup parent.
type cgroupDir struct {
	name string // "controllers:relative path"
	path string // absolute
}

// cgroupDirs lists, in every hierarchy this process is in, the
// directories below parent (relative to this process's cgroup).
func cgroupDirs(parent string) ([]cgroupDir, error) {
	if parent == "" {
		return nil, nil
	}
	own, err := ownCgroups()
	if err != nil {
		return nil, err
	}
	ms, err := mountinfo.GetMounts(mountinfo.FSTypeFilter("cgroup", "cgroup2"))
	if err != nil {
		return nil, fmt.Errorf("mountinfo: %w", err)
	}
	var out []cgroupDir
	seen := map[string]bool{}
	for _, m := range ms {
		key := "" // the /proc/self/cgroup key of this hierarchy
		if m.FSType == "cgroup2" {
			key = ""
		} else {
			var ctrls []string
			for _, o := range strings.Split(m.VFSOptions, ",") {
				switch o {
				case "rw", "ro", "nosuid", "nodev", "noexec", "relatime", "xattr", "clone_children", "noprefix":
				default:
					if !strings.HasPrefix(o, "release_agent=") {
						ctrls = append(ctrls, o)
					}
				}
			}
			key = strings.Join(ctrls, ",")
		}
		ownPath, ok := own[key]
		if !ok {
			continue
		}
		rel, ok := strings.CutPrefix(ownPath, m.Root)
		if !ok {
			continue
		}
		base := filepath.Join(m.Mountpoint, rel, parent)
		if seen[base] {
			continue
		}
		seen[base] = true
		label := key
		if label == "" {
			label = "unified"
		}
		_ = filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.IsDir() {
				return nil
			}
			r, _ := filepath.Rel(base, p)
			out = append(out, cgroupDir{name: label + ":" + r, path: p})
			return nil
		})
	}
	return out, nil
}

// ownCgroups maps the controller list of each hierarchy (as
// /proc/self/cgroup names it; "" for cgroup v2) to this process's path.
func ownCgroups() (map[string]string, error) {
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) == 3 {
			out[parts[1]] = parts[2]
		}
	}
	return out, sc.Err()
}

func netlinkState() (links, addrs []string, err error) {
	ls, err := netlink.LinkList()
	if err != nil {
		return nil, nil, fmt.Errorf("netlink links: %w", err)
	}
	names := map[int]string{}
	for _, l := range ls {
		a := l.Attrs()
		names[a.Index] = a.Name
		links = append(links, strings.TrimSpace(a.Name+" "+l.Type()+" "+a.Alias))
	}
	as, err := netlink.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return nil, nil, fmt.Errorf("netlink addresses: %w", err)
	}
	for _, a := range as {
		addrs = append(addrs, names[a.LinkIndex]+" "+a.IPNet.String())
	}
	return sorted(links), sorted(addrs), nil
}

func nftState() ([]string, error) {
	c, err := nftables.New()
	if err != nil {
		return nil, fmt.Errorf("nftables: %w", err)
	}
	tables, err := c.ListTables()
	if err != nil {
		return nil, fmt.Errorf("nftables tables: %w", err)
	}
	var out []string
	for _, t := range tables {
		tn := fmt.Sprintf("%d/%s", t.Family, t.Name)
		out = append(out, tn)
		chains, err := c.ListChainsOfTableFamily(t.Family)
		if err != nil {
			return nil, fmt.Errorf("nftables chains: %w", err)
		}
		for _, ch := range chains {
			if ch.Table.Name == t.Name {
				out = append(out, tn+"/"+ch.Name)
			}
		}
		sets, err := c.GetSets(t)
		if err != nil {
			return nil, fmt.Errorf("nftables sets of %s: %w", tn, err)
		}
		for _, set := range sets {
			out = append(out, tn+"/"+set.Name)
			elems, err := c.GetSetElements(set)
			if err != nil {
				return nil, fmt.Errorf("nftables elements of %s/%s: %w", tn, set.Name, err)
			}
			for _, e := range elems {
				v := ""
				if e.VerdictData != nil && e.VerdictData.Chain != "" {
					v = " -> " + e.VerdictData.Chain
				}
				out = append(out, tn+"/"+set.Name+":"+hex.EncodeToString(e.Key)+v)
			}
		}
	}
	return sorted(out), nil
}

// ipamLeases reads every <name>.ipam/leases.json below dir.
func ipamLeases(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, nil
		}
		return nil, err
	}
	var out []string
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".ipam")
		if !ok || !e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name(), "leases.json"))
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		var st struct {
			Leases []struct {
				Addr      string `json:"addr"`
				Container string `json:"container"`
			} `json:"leases"`
		}
		if err := json.Unmarshal(b, &st); err != nil {
			return nil, fmt.Errorf("ipam %s: %w", name, err)
		}
		for _, l := range st.Leases {
			out = append(out, name+" "+l.Addr+" "+l.Container)
		}
	}
	return sorted(out), nil
}

// processes lists this process's descendants and the processes in the
// cgroup directories.
func processes(cgroups []cgroupDir) ([]string, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	self := os.Getpid()
	parent := map[int]int{}
	comm := map[int]string{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || end < 0 {
			continue
		}
		f := strings.Fields(s[end+1:])
		if len(f) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		parent[pid] = ppid
		comm[pid] = s[open+1 : end]
	}
	in := map[int]bool{}
	for pid := range parent {
		for p, n := parent[pid], 0; p > 0 && n < 64; p, n = parent[p], n+1 {
			if p == self {
				in[pid] = true
				break
			}
		}
	}
	for _, d := range cgroups {
		b, err := os.ReadFile(filepath.Join(d.path, "cgroup.procs"))
		if err != nil {
			continue
		}
		for _, line := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(line); err == nil && pid != self {
				in[pid] = true
			}
		}
	}
	var out []string
	for pid := range in {
		out = append(out, fmt.Sprintf("%d %s", pid, comm[pid]))
	}
	return sorted(out), nil
}

// files lists the paths below the roots, relative to them ("root/..." and
// "run/..."), summarising content-addressed directories.
func files(root, runRoot string) ([]string, error) {
	var out []string
	for label, dir := range map[string]string{"root": root, "run": runRoot} {
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				if os.IsNotExist(err) {
					return nil
				}
				return err
			}
			rel, _ := filepath.Rel(dir, p)
			if rel == "." || skipped(rel) {
				return nil
			}
			out = append(out, label+"/"+rel)
			if d.IsDir() && (summarised[filepath.Dir(rel)] || opaque[d.Name()] || filepath.Dir(rel) == "tmp") {
				return fs.SkipDir
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return sorted(out), nil
}

// socketKind describes the socket fd (a /proc/self/fd name): its domain
// and protocol (netlink's 0 is route, 12 netfilter).
func socketKind(name string) string {
	fd, err := strconv.Atoi(name)
	if err != nil {
		return ""
	}
	dom, err1 := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN)
	proto, err2 := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PROTOCOL)
	if err1 != nil || err2 != nil {
		return ""
	}
	return fmt.Sprintf(" domain %d protocol %d", dom, proto)
}
