//go:build !linux

package archive

import "github.com/berth-run/berth/internal/errdefs"

func changes(upper string, lowers []string) ([]Change, error) {
	return nil, errdefs.New(errdefs.ErrNotSupported, "listing changes needs linux")
}
