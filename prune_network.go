package berth

import "context"

// pruneNetworks removes the networks no container uses, for Prune. Until
// user-defined networks land (network.go), there is none to remove.
func (r *Runtime) pruneNetworks(ctx context.Context, filters []string) ([]string, error) {
	return nil, ctx.Err()
}
