// Package torture is berth's reliability suite: SIGKILLs at random points
// of every operation that changes the store, each followed by a
// consistency check, a leak audit and the same operation again; a
// thousand `run --rm` with a leak audit at the end; and processes racing
// on one store. Its tests (go test ./internal/torture, `make torture` for
// the full run) re-execute the test binary as workers.
//
// The leak audit (Snapshot, Diff) reads the kernel's and the store's
// state directly: /proc/self/mountinfo, the cgroup directories, netlink
// links and addresses, nftables chains, sets and map elements, the IPAM
// lease files, /proc for processes and /proc/self/fd, and the files under
// the store — never the output of a command.
package torture

import (
	"fmt"
	"sort"
	"strings"
)

// Scope is what an audit looks at: one store, its containers' cgroup
// parent, and the network namespace of the calling thread.
type Scope struct {
	Root, RunRoot string
	// CgroupParent is the store's cgroup parent (berth.WithCgroupParent),
	// relative to the calling process's own cgroup: every directory below
	// it in every hierarchy is listed.
	CgroupParent string
}

// Snapshot is the state an audit compares: each field is a sorted list
// of things that exist, except FDs.
type Snapshot struct {
	Mounts    []string // mount points under Root and RunRoot
	Cgroups   []string // "controller:path" below CgroupParent
	Links     []string // "name kind alias" of the network namespace's links
	Addrs     []string // "link addr" of its addresses
	Nft       []string // "table", "table/chain", "table/set", "table/set:key" of every nftables table
	Leases    []string // "network addr container" of every IPAM lease file under Root/networks
	Processes []string // "pid comm" of the descendants of this process and the processes in CgroupParent
	Files     []string // paths below Root and RunRoot (see Snapshot's doc for what is summarised)
	FDs       int      // open file descriptors of this process
	FDLinks   []string // what they are (/proc/self/fd links), sorted
}

// Leak is one difference between two snapshots.
type Leak struct {
	Kind string // "mount", "cgroup", "link", "addr", "nft", "lease", "process", "file", "fd"
	What string
}

func (l Leak) String() string { return l.Kind + ": " + l.What }

// Diff lists what after has that before had not (and a higher fd
// count). ignore, when not nil, drops leaks it matches.
func Diff(before, after *Snapshot, ignore func(Leak) bool) []Leak {
	var out []Leak
	add := func(kind string, b, a []string) {
		have := make(map[string]bool, len(b))
		for _, s := range b {
			have[s] = true
		}
		for _, s := range a {
			if !have[s] {
				l := Leak{Kind: kind, What: s}
				if ignore == nil || !ignore(l) {
					out = append(out, l)
				}
			}
		}
	}
	add("mount", before.Mounts, after.Mounts)
	add("cgroup", before.Cgroups, after.Cgroups)
	add("link", before.Links, after.Links)
	add("addr", before.Addrs, after.Addrs)
	add("nft", before.Nft, after.Nft)
	add("lease", before.Leases, after.Leases)
	add("process", before.Processes, after.Processes)
	add("file", before.Files, after.Files)
	if after.FDs > before.FDs {
		l := Leak{Kind: "fd", What: fmt.Sprintf("%d open, %d before; new: %v", after.FDs, before.FDs, newLinks(before.FDLinks, after.FDLinks))}
		if ignore == nil || !ignore(l) {
			out = append(out, l)
		}
	}
	return out
}

// Summary is a one-line count of a snapshot, for logs.
func (s *Snapshot) Summary() string {
	return fmt.Sprintf("%d mounts, %d cgroups, %d links, %d addresses, %d nft objects, %d leases, %d processes, %d files, %d fds",
		len(s.Mounts), len(s.Cgroups), len(s.Links), len(s.Addrs), len(s.Nft), len(s.Leases), len(s.Processes), len(s.Files), s.FDs)
}

func sorted(s []string) []string {
	sort.Strings(s)
	return s
}

// summarised lists the store directories whose contents Snapshot lists
// one level deep only (content-addressed data, many files per entry).
var summarised = map[string]bool{"blobs/sha256": true, "layers": true}

// opaque are directories whose contents Snapshot does not list: a
// container's file systems and a volume's data.
var opaque = map[string]bool{"rootfs": true, "upper": true, "work": true, "_data": true}

// skipped are store files that change without leaking anything.
func skipped(rel string) bool {
	return rel == "events.log" || rel == "events.log.1" || strings.HasPrefix(rel, "monitor")
}

// newLinks lists the fd links of after that are not in before (as
// multisets).
func newLinks(before, after []string) []string {
	n := map[string]int{}
	for _, l := range before {
		n[l]++
	}
	var out []string
	for _, l := range after {
		if n[l] > 0 {
			n[l]--
			continue
		}
		out = append(out, l)
	}
	return out
}
