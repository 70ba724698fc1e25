//go:build !linux

package portmap

import (
	"context"
	"net/netip"

	"github.com/berth-run/berth/internal/errdefs"
)

func (t *Table) ensureBridge(string, netip.Prefix, bool) error {
	return errdefs.ErrNotSupported
}
func (t *Table) removeBridge(string) error       { return errdefs.ErrNotSupported }
func (t *Table) delete() error                   { return errdefs.ErrNotSupported }
func (t *Table) inUse() ([]portKey, error)       { return nil, errdefs.ErrNotSupported }
func (t *Table) ports(string) ([]Binding, error) { return nil, errdefs.ErrNotSupported }
func (t *Table) unpublish(string, string) error  { return errdefs.ErrNotSupported }
func (t *Table) publish(context.Context, string, string, netip.Addr, []PortMapping) ([]PortMapping, error) {
	return nil, errdefs.ErrNotSupported
}
