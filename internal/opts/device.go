package opts

import (
	"path"
	"strings"

	"github.com/berth-run/berth/internal/oci"
)

func validDeviceMode(mode string) bool {
	if mode == "" || len(mode) > 3 {
		return false
	}
	for i, c := range mode {
		if !strings.ContainsRune("rwm", c) || strings.ContainsRune(mode[:i], c) {
			return false
		}
	}
	return true
}

// ParseDevice parses docker's --device: /dev/host[:/dev/container][:perms],
// where perms combines r, w and m (default rwm) and the container path
// defaults to the host path. Both paths must be absolute.
func ParseDevice(s string) (oci.DeviceMapping, error) {
	parts := strings.Split(s, ":")
	d := oci.DeviceMapping{CgroupPermissions: "rwm"}
	switch len(parts) {
	case 1:
		d.PathOnHost = parts[0]
	case 2:
		d.PathOnHost = parts[0]
		if validDeviceMode(parts[1]) {
			d.CgroupPermissions = parts[1]
		} else {
			d.PathInContainer = parts[1]
		}
	case 3:
		d.PathOnHost, d.PathInContainer, d.CgroupPermissions = parts[0], parts[1], parts[2]
		if !validDeviceMode(d.CgroupPermissions) {
			return oci.DeviceMapping{}, invalidf("invalid device mode %q in %q (a combination of r, w and m)", parts[2], s)
		}
	default:
		return oci.DeviceMapping{}, invalidf("invalid device specification: %q", s)
	}
	if d.PathInContainer == "" {
		d.PathInContainer = d.PathOnHost
	}
	if !path.IsAbs(d.PathOnHost) {
		return oci.DeviceMapping{}, invalidf("device %q: %q is not an absolute path", s, d.PathOnHost)
	}
	if !path.IsAbs(d.PathInContainer) {
		return oci.DeviceMapping{}, invalidf("device %q: %q is not an absolute path", s, d.PathInContainer)
	}
	d.PathInContainer = path.Clean(d.PathInContainer)
	return d, nil
}
