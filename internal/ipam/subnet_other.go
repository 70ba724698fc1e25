//go:build !linux

package ipam

import (
	"net/netip"

	"github.com/berth-run/berth/internal/errdefs"
)

func hostPrefixes() ([]netip.Prefix, error) { return nil, errdefs.ErrNotSupported }
