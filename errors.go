package berth

import "github.com/berth-run/berth/internal/errdefs"

// The kinds of error berth reports. Every error berth returns that has a
// kind wraps one of these; match them with errors.Is:
//
//	if errors.Is(err, berth.ErrNotFound) { ... }
//
// Errors from the kernel stay matchable too (errors.Is(err, unix.EBUSY)).
var (
	// ErrNotFound: no such image, container, volume, network or layer.
	ErrNotFound = errdefs.ErrNotFound
	// ErrConflict: a name in use, an image used by a container, a volume
	// in use, a port already taken.
	ErrConflict = errdefs.ErrConflict
	// ErrInvalid: malformed input (references, port specs, sizes, specs,
	// hostile layers).
	ErrInvalid = errdefs.ErrInvalid
	// ErrNotRunning: the container must be running (or paused) for this.
	ErrNotRunning = errdefs.ErrNotRunning
	// ErrNotSupported: not supported on this platform or configuration.
	ErrNotSupported = errdefs.ErrNotSupported
	// ErrCorrupt: data does not match its digest or cannot be read.
	ErrCorrupt = errdefs.ErrCorrupt
	// ErrUnauthorized: a registry refused the credentials.
	ErrUnauthorized = errdefs.ErrUnauthorized
)
