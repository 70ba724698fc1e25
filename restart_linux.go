package berth

import "context"

// cancelRestart turns a container waiting to be restarted into a
// stopped one, as a user's stop does: the monitor finds it no longer
// restarting when its delay ends. It reports whether the container was
// restarting.
func (r *Runtime) cancelRestart(ctx context.Context, id string) (bool, error) {
	lk, err := r.lockContainer(id)
	if err != nil {
		return false, err
	}
	defer lk.Unlock()
	st, err := r.readState(id)
	if err != nil {
		return false, err
	}
	if st.Status != StatusRestarting {
		return false, nil
	}
	st.Status = StatusExited
	st.StoppedByUser = true
	if err := r.writeState(id, st); err != nil {
		return false, err
	}
	return true, nil
}
