package berth

import "time"

// ShouldRestart is the restart policy's decision for an exit.
func ShouldRestart(p RestartPolicy, exitCode, restartCount int, stoppedByUser bool) bool {
	return shouldRestart(p, exitCode, restartCount, stoppedByUser)
}

// RestartDelays are the delays before the restarts that follow runs of
// the given lengths.
func RestartDelays(runs ...time.Duration) []time.Duration {
	var b restartBackoff
	out := make([]time.Duration, len(runs))
	for i, r := range runs {
		out[i] = b.next(r)
	}
	return out
}
