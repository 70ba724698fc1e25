package opts

import "github.com/berth-run/berth/internal/oci"

// ParseCapabilities normalizes docker --cap-add/--cap-drop names ("net_admin",
// "CAP_SYS_ADMIN", "all") to their canonical form ("CAP_NET_ADMIN",
// "ALL"); an unknown name is ErrInvalid. Whether the caller itself has a
// capability is checked later, by oci.Generate.
func ParseCapabilities(names []string) ([]string, error) {
	out := make([]string, 0, len(names))
	for _, n := range names {
		c, err := oci.NormalizeCapability(n)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}
