package berth

import (
	"github.com/berth-run/berth/cgroup"
	"github.com/berth-run/berth/internal/runtime"
)

// containerCgroup returns the manager of container rec's cgroup. Its path
// is relative to the cgroup of the process that created it, which the
// runtime recorded; any process — the CLI, the monitor, another test
// binary, wherever it sits in the cgroup tree — finds the same cgroup.
func (r *Runtime) containerCgroup(rec *containerRecord) (*cgroup.Manager, error) {
	if s, err := runtime.Load(r.store.ContainerRunDir(rec.ID)); err == nil && s.CgroupPath != "" {
		return stateCgroup(s)
	}
	return cgroup.New(r.cgroupPath(&rec.Spec, rec.ID))
}

// ownedCgroup is containerCgroup for the container this process runs:
// its runtime state is at hand, which spares reading state.json (the
// whole spec) again.
func (r *Runtime) ownedCgroup(oc *ownedContainer, rec *containerRecord) (*cgroup.Manager, error) {
	if s := oc.rc.State(); s.CgroupPath != "" {
		return stateCgroup(s)
	}
	return r.containerCgroup(rec)
}

// stateCgroup returns the manager of the cgroup runtime state s records
// (CgroupPath not empty).
func stateCgroup(s *runtime.State) (*cgroup.Manager, error) {
	var opts []cgroup.Option
	if s.CgroupBase != "" {
		opts = append(opts, cgroup.WithOwnCgroup([]byte(s.CgroupBase)))
	}
	return cgroup.New(s.CgroupPath, opts...)
}
