package berth

import "context"

// pruneNetworks removes the networks no container uses, for Prune.
func (r *Runtime) pruneNetworks(ctx context.Context, filters []string) ([]string, error) {
	return r.PruneNetworks(ctx, filters...)
}
