package berth

import "context"

// MonitorStatus reports the pid of the store's monitor (0: none runs) and
// the IDs of the containers it watches. It never starts a monitor.
func MonitorStatus(ctx context.Context, r *Runtime) (int, []string, error) {
	return r.monitorStatus(ctx)
}

// ShutdownMonitor makes the store's idle monitor exit and waits for it;
// a busy one is an ErrConflict.
func ShutdownMonitor(ctx context.Context, r *Runtime) error { return r.shutdownMonitor(ctx) }

// ContainerCgroupPath is the cgroup path container c is placed in,
// relative to the caller's own cgroup when relative.
func ContainerCgroupPath(c *Container) string { return c.rt.cgroupPath(&c.rec.Spec, c.rec.ID) }
