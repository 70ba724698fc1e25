package berth

import (
	"context"
	"fmt"
	"os"

	"github.com/berth-run/berth/internal/errdefs"
	"github.com/berth-run/berth/internal/oci"
)

// resolveMounts turns the spec's mounts into host paths for the spec
// generator: bind sources are created when missing (as docker's -v does),
// tmpfs mounts pass through.
func (r *Runtime) resolveMounts(ctx context.Context, c *Container) ([]oci.Mount, error) {
	var out []oci.Mount
	for _, m := range c.rec.Spec.Mounts {
		om := oci.Mount{Destination: m.Target, ReadOnly: m.ReadOnly, Propagation: m.Propagation}
		switch m.Type {
		case MountTypeBind:
			if _, err := os.Stat(m.Source); err != nil {
				if !os.IsNotExist(err) || !m.CreateSource {
					return nil, errdefs.Wrap(errdefs.ErrInvalid, fmt.Sprintf("invalid mount config for type \"bind\": bind source path does not exist: %s", m.Source), nil)
				}
				if err := os.MkdirAll(m.Source, 0o755); err != nil {
					return nil, fmt.Errorf("create bind source %s: %w", m.Source, err)
				}
			}
			om.Type, om.Source = oci.MountBind, m.Source
		case MountTypeTmpfs:
			om.Type, om.TmpfsSize, om.TmpfsMode, om.Options = oci.MountTmpfs, m.TmpfsSize, os.FileMode(m.TmpfsMode), m.Options
		case MountTypeVolume:
			src, err := r.volumePath(ctx, c, m)
			if err != nil {
				return nil, err
			}
			om.Type, om.Source = oci.MountVolume, src
		default:
			return nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("unknown mount type %q", m.Type))
		}
		out = append(out, om)
	}
	return out, nil
}

// volumePath resolves a volume mount to its host directory.
func (r *Runtime) volumePath(ctx context.Context, c *Container, m Mount) (string, error) {
	return "", errdefs.New(errdefs.ErrNotSupported, "named and anonymous volumes are not supported yet")
}

// removeAnonymousVolumes removes the anonymous volumes of a removed
// container (docker rm -v).
func (r *Runtime) removeAnonymousVolumes(ctx context.Context, rec *containerRecord) {}
