package berth

import (
	"context"
	"time"
)

// Restart stops the container as Stop does (timeout nil: its stop
// timeout) and starts it again under the monitor, as `docker restart`.
// A container that is not running is just started.
func (c *Container) Restart(ctx context.Context, timeout *time.Duration) error {
	if err := c.Stop(ctx, timeout); err != nil {
		return err
	}
	if err := c.Start(ctx, WithDetach()); err != nil {
		return err
	}
	c.rt.event(ctx, "container", "restart", c.rec.ID, map[string]string{"name": c.rec.Name, "image": c.rec.ImageName})
	return nil
}

// Docker's restart delays: 100ms before the first restart, doubled at
// each further one up to a minute, back to 100ms after a run of 10
// seconds or more.
const (
	restartDelayMin   = 100 * time.Millisecond
	restartDelayMax   = time.Minute
	restartResetAfter = 10 * time.Second
)

// restartBackoff is one container's restart delay in the monitor.
type restartBackoff struct{ delay time.Duration }

// next is the delay before the restart that follows a run of ran.
func (b *restartBackoff) next(ran time.Duration) time.Duration {
	if ran >= restartResetAfter {
		b.delay = 0
	}
	switch {
	case b.delay == 0:
		b.delay = restartDelayMin
	case b.delay < restartDelayMax:
		b.delay *= 2
	}
	b.delay = min(b.delay, restartDelayMax)
	return b.delay
}

// shouldRestart applies docker's restart policy to an exit: a stop or
// kill by a user prevents any restart; always and unless-stopped restart
// otherwise; on-failure restarts a non-zero exit while fewer than
// MaximumRetryCount restarts happened (0: no bound).
func shouldRestart(p RestartPolicy, exitCode, restartCount int, stoppedByUser bool) bool {
	if stoppedByUser {
		return false
	}
	switch p.Name {
	case RestartAlways, RestartUnlessStopped:
		return true
	case RestartOnFailure:
		return exitCode != 0 && (p.MaximumRetryCount == 0 || restartCount < p.MaximumRetryCount)
	}
	return false
}
