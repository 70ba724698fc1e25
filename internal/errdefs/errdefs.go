// Package errdefs defines the kinds of error every berth package reports.
// The root package re-exports them (berth.ErrNotFound is errdefs.ErrNotFound),
// so internal packages can class their errors without importing the root.
//
// Wrap a kind where the failure happens, with the object's identity:
//
//	fmt.Errorf("image %q: %w", ref, errdefs.ErrNotFound)
//
// and match with errors.Is.
package errdefs

import "errors"

var (
	// ErrNotFound: the named object (image, container, volume, network,
	// layer, blob) does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict: the operation conflicts with the current state: a name
	// in use, an image used by a container, a volume in use.
	ErrConflict = errors.New("conflict")
	// ErrInvalid: the input is malformed: a reference, a port spec, a
	// memory size, a layer that would escape its directory.
	ErrInvalid = errors.New("invalid argument")
	// ErrNotRunning: the container is not running (or not paused) and the
	// operation needs it to be.
	ErrNotRunning = errors.New("container not running")
	// ErrNotSupported: the operation is not supported on this platform or
	// with this configuration.
	ErrNotSupported = errors.New("not supported")
	// ErrCorrupt: stored or received data does not match its digest or is
	// unreadable.
	ErrCorrupt = errors.New("corrupt data")
	// ErrUnauthorized: a registry refused the credentials.
	ErrUnauthorized = errors.New("unauthorized")
)

// Kind is an error that carries a kind and a message of its own, so that
// both errors.Is(err, ErrInvalid) and errors.Is(err, cause) hold.
type Kind struct {
	Kind  error // one of the Err* values above
	Msg   string
	Cause error // optional underlying error (for example a unix.Errno)
}

func (e *Kind) Error() string {
	if e.Cause != nil {
		return e.Msg + ": " + e.Cause.Error()
	}
	return e.Msg
}

// Unwrap lets errors.Is see both the kind and the cause.
func (e *Kind) Unwrap() []error {
	if e.Cause != nil {
		return []error{e.Kind, e.Cause}
	}
	return []error{e.Kind}
}

// New returns an error of the given kind with msg as its whole text.
func New(kind error, msg string) error { return &Kind{Kind: kind, Msg: msg} }

// Wrap returns an error of the given kind whose text is msg followed by the
// cause's text; errors.Is matches both kind and cause.
func Wrap(kind error, msg string, cause error) error {
	return &Kind{Kind: kind, Msg: msg, Cause: cause}
}
