package berth

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// CommitOption configures Container.Commit.
type CommitOption func(*commitOptions)

type commitOptions struct {
	message, author string
	changes         []string
	noPause         bool
}

// CommitMessage sets the comment of the new history entry (docker commit
// -m). Default: none.
func CommitMessage(msg string) CommitOption { return func(o *commitOptions) { o.message = msg } }

// CommitAuthor sets the image's author (docker commit -a). Default: none.
func CommitAuthor(author string) CommitOption { return func(o *commitOptions) { o.author = author } }

// CommitChanges applies Dockerfile instructions to the new image's
// config, as `docker commit --change` (see WithChanges for the
// instructions). Default: none.
func CommitChanges(changes ...string) CommitOption {
	return func(o *commitOptions) { o.changes = append(o.changes, changes...) }
}

// CommitPause says whether a running container is paused while its
// changes are read (docker commit --pause). Default: true.
func CommitPause(pause bool) CommitOption { return func(o *commitOptions) { o.noPause = !pause } }

// Commit makes a new image of the container's changes, as `docker
// commit`: one new layer (the container's own changes, read from its
// overlay upper directory) on top of its image's layers, which are shared,
// not copied: the new manifest lists their blobs as they are, and the new
// layer's directory sits on theirs. The image's config is the container's
// (command, entrypoint, environment, working directory, user, exposed
// ports, volumes, labels, stop signal), with the changes applied, and a
// history entry that records the container's command, the author and the
// message. A container without changes gets no new layer, only the
// history entry (marked empty), as in docker.
//
// ref ("name[:tag]") names the image; empty makes a dangling image. A tag
// that named another image moves to the new one, leaving the old image
// dangling (<none>:<none>) unless other tags name it. A malformed ref or
// change is refused before anything is read or paused.
func (c *Container) Commit(ctx context.Context, ref string, opts ...CommitOption) (*Image, error) {
	var o commitOptions
	for _, opt := range opts {
		opt(&o)
	}
	return c.commit(ctx, ref, o)
}

// commitConfig is the image config docker keeps for a container: the
// image's, with what the spec overrides (docker's create-time merge).
func (c *Container) commitConfig(im *Image) ocispec.ImageConfig {
	spec := c.rec.Spec
	ic := im.config.Config
	cfg := ocispec.ImageConfig{
		User:        firstNonEmpty(spec.User, ic.User),
		WorkingDir:  firstNonEmpty(spec.WorkingDir, ic.WorkingDir),
		StopSignal:  firstNonEmpty(spec.StopSignal, ic.StopSignal),
		Entrypoint:  slices.Clone(ic.Entrypoint),
		Cmd:         slices.Clone(ic.Cmd),
		ArgsEscaped: ic.ArgsEscaped,
	}
	if spec.Entrypoint != nil {
		cfg.Entrypoint, cfg.Cmd, cfg.ArgsEscaped = slices.Clone(spec.Entrypoint), nil, false
		if len(cfg.Entrypoint) == 1 && cfg.Entrypoint[0] == "" {
			cfg.Entrypoint = nil
		}
	}
	if len(spec.Cmd) > 0 {
		cfg.Cmd, cfg.ArgsEscaped = slices.Clone(spec.Cmd), false
	}
	// Env: the spec's entries, then the image's that they do not set.
	cfg.Env = slices.Clone(spec.Env)
	for _, e := range ic.Env {
		k, _, _ := strings.Cut(e, "=")
		if !slices.ContainsFunc(spec.Env, func(s string) bool { sk, _, _ := strings.Cut(s, "="); return sk == k }) {
			cfg.Env = append(cfg.Env, e)
		}
	}
	if len(ic.ExposedPorts) > 0 || len(spec.Ports) > 0 {
		cfg.ExposedPorts = maps.Clone(ic.ExposedPorts)
		if cfg.ExposedPorts == nil {
			cfg.ExposedPorts = map[string]struct{}{}
		}
		for _, p := range spec.Ports {
			cfg.ExposedPorts[fmt.Sprintf("%d/%s", p.ContainerPort, protoOr(p.Protocol))] = struct{}{}
		}
	}
	cfg.Volumes = maps.Clone(ic.Volumes)
	for _, m := range spec.Mounts {
		if m.Type == MountTypeVolume && m.Source == "" { // an anonymous volume (-v /data)
			if cfg.Volumes == nil {
				cfg.Volumes = map[string]struct{}{}
			}
			cfg.Volumes[m.Target] = struct{}{}
		}
	}
	if labels := c.labels(); len(labels) > 0 {
		cfg.Labels = labels
	}
	return cfg
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
