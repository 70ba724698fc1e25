package berth

import "context"

// Pause freezes every process of the running container (docker pause,
// through the cgroup freezer); the container's status becomes "paused".
// A container that is not running is an ErrNotRunning error, one already
// paused an ErrConflict error, as in docker.
func (c *Container) Pause(ctx context.Context) error { return c.pause(ctx) }

// Unpause lets the processes of a paused container run again (docker
// unpause). A container that is not paused is an ErrConflict error.
func (c *Container) Unpause(ctx context.Context) error { return c.unpause(ctx) }
