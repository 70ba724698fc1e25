//go:build !linux

package berth

import "context"

// repairContainers has nothing to repair where containers cannot run.
func (r *Runtime) repairContainers(context.Context) error { return nil }
