package berth

import "time"

// The monitor of detached containers.
//
// One monitor process per store runs every container started with
// WithDetach: it is their parent, owns their standard streams (pipes or
// the terminal's master), writes their logs, records their exits, applies
// their restart policies, serves attach and resize on a unix socket in
// the run root, and kills and removes the DieWithCreator containers whose
// creator died. It is the calling program re-executed (/proc/self/exe)
// with an environment marker, which this package's init() recognises
// (monitor_linux.go); it starts on demand, in a session of its own, and
// exits once it has had nothing to watch for monitorIdle. The protocol is
// in internal/shim.

// WithDetach runs the container under the store's monitor instead of in
// this process, as `docker run -d` and `docker start` do: Run and Start
// return once the container's process runs, the container outlives this
// process, its output goes to its log (see Logs, and Attach to connect
// to its streams) and its restart policy applies. It cannot be combined
// with WithStdin, WithStdout or WithStderr (use Attach). Default: this
// process runs the container, which dies with it.
func WithDetach() RunOption { return func(o *runOptions) { o.detach = true } }

// The monitor's environment marker and its arguments.
const (
	monitorEnv        = "_BERTH_MONITOR"         // "1": this process is a monitor
	monitorRootEnv    = "_BERTH_MONITOR_ROOT"    // the store's root
	monitorRunRootEnv = "_BERTH_MONITOR_RUNROOT" // its run root
	monitorSockEnv    = "_BERTH_MONITOR_SOCKET"  // the socket to listen on
)

// The monitor inherits the lock it holds for its life as fd 3, and the
// pipe on which it reports that it listens as fd 4.
const (
	monitorLockFd  = 3
	monitorReadyFd = 4
)

// monitorIdle is how long a monitor with nothing to watch and no client
// waits before it exits.
const monitorIdle = 3 * time.Second
