//go:build !linux

package torture

import "errors"

// Take snapshots what exists in scope now (Linux only).
func Take(Scope) (*Snapshot, error) {
	return nil, errors.New("torture: audit: not supported on this OS")
}

// FDCount is the number of open file descriptors of this process (Linux only).
func FDCount() (int, error) { return 0, errors.New("torture: not supported on this OS") }
