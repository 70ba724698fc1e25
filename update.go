package berth

import "context"

// Update changes a container's limits and restart policy, as `docker
// update`. Only what is set changes: a zero field of Resources keeps the
// current value (PidsLimit -1 lifts the limit; MemorySwap -1 makes swap
// unlimited).
type Update struct {
	// Resources are the new cgroup limits: Memory, MemorySwap,
	// MemoryReservation, NanoCPUs, CPUShares, CPUPeriod, CPUQuota,
	// CpusetCpus, CpusetMems, PidsLimit and BlkioWeight.
	Resources Resources
	// RestartPolicy, when not nil, replaces the restart policy.
	RestartPolicy *RestartPolicy
}

// Update applies u to the container: to its cgroup at once when it runs
// (the kernel's limit files change), and to its record, so that later
// starts use the new values. Values are checked as at create; a bad
// value is an ErrInvalid error and changes nothing.
func (c *Container) Update(ctx context.Context, u Update) error { return c.update(ctx, u) }

// Rename gives the container a new name (docker rename). The name must
// be valid and free; renaming to the current name is an ErrInvalid
// error, as in docker.
func (c *Container) Rename(ctx context.Context, name string) error { return c.rename(ctx, name) }
