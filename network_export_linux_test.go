package berth

import (
	"context"
	"errors"
	"os"
)

// NetworkTableName is the store's nftables table, for tests that check
// what is left in it.
func NetworkTableName(r *Runtime) string { return r.nftTableName() }

// NetnsDir is where the store's containers' network namespaces are
// bind-mounted.
func NetnsDir(r *Runtime) string { return r.store.RunPath("netns") }

// RemoveStoreNetworks removes every network of the store, the default one
// included, with its bridge, address pool and the store's nft table: what
// a test that ran containers on a scratch store must leave behind. The
// store's containers must be removed first.
func RemoveStoreNetworks(ctx context.Context, r *Runtime) error {
	m, err := r.netManager()
	if err != nil {
		return err
	}
	recs, err := r.networkRecords()
	if err != nil {
		return err
	}
	var errs []error
	for _, rec := range recs {
		errs = append(errs, m.RemoveBridge(ctx, rec.Bridge))
		if err := os.Remove(r.networkPath(rec.Name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
		errs = append(errs, os.RemoveAll(r.ipamDir(rec.Name)))
	}
	errs = append(errs, m.NAT().Delete(ctx))
	return errors.Join(errs...)
}
