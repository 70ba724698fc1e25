package berth

import "context"

// TopResult lists a container's processes the way `docker top` prints
// them: column titles, then one row of values per process.
type TopResult struct {
	Titles    []string
	Processes [][]string
}

// Top lists the processes of the running container, read from /proc for
// the processes of its cgroup (no ps is run). psArgs choose the columns
// as the ps options docker top passes on do: none or "-ef" gives docker's
// UID PID PPID C STIME TTY TIME CMD; "aux" gives USER PID %CPU %MEM VSZ
// RSS TTY STAT START TIME COMMAND; "-o LIST" or "-eo LIST" the columns
// named in LIST (pid, ppid, pgid, sid, uid, user, gid, group, comm, args,
// cmd, command, stat, state, time, etime, stime, start, tty, rss, vsz,
// nlwp, c, %cpu, pcpu, %mem, pmem, ni, pri). Other options are ErrInvalid
// errors. A container that is not running is an ErrNotRunning error.
func (c *Container) Top(ctx context.Context, psArgs ...string) (*TopResult, error) {
	return c.top(ctx, psArgs)
}
