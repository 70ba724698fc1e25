package runtime

import "github.com/berth-run/berth/cgroup"

// DefaultCgroups is the CgroupFactory used when none is given: berth's
// cgroup package, with OCI cgroupsPath semantics (absolute from the
// hierarchy roots, relative below the caller's own cgroup).
func DefaultCgroups(path string) (CgroupManager, error) {
	m, err := cgroup.New(path)
	if err != nil {
		return nil, err
	}
	return m, nil
}

// NoCgroups is a CgroupFactory that leaves the container in the caller's
// cgroups.
func NoCgroups(string) (CgroupManager, error) { return nil, nil }

func cgroupFactory(f CgroupFactory) CgroupFactory {
	if f == nil {
		return DefaultCgroups
	}
	return f
}

// stateCgroups is the factory for a loaded container: f when given, else
// the cgroup package below the creator's cgroup recorded in s.
func stateCgroups(f CgroupFactory, s *State) CgroupFactory {
	if f != nil || s.CgroupBase == "" {
		return cgroupFactory(f)
	}
	return func(path string) (CgroupManager, error) {
		m, err := cgroup.New(path, cgroup.WithOwnCgroup([]byte(s.CgroupBase)))
		if err != nil {
			return nil, err
		}
		return m, nil
	}
}
