package berth

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/berth-run/berth/internal/errdefs"
)

// ListOption configures Runtime.Containers.
type ListOption func(*listOptions)

type listOptions struct {
	running bool
	limit   int
	filters map[string][]string
}

// ListRunning keeps only running containers (paused and restarting ones
// included), as `docker ps` without -a. A "status" filter or ListLimit
// turns it off, as in docker. Default: every container.
func ListRunning() ListOption { return func(o *listOptions) { o.running = true } }

// ListLimit keeps the n most recently created containers (docker ps -n;
// -l is 1), in every state. Default: no limit.
func ListLimit(n int) ListOption { return func(o *listOptions) { o.limit = n } }

// ListFilter keeps the containers that match a docker ps --filter:
//
//	status    created, restarting, running, removing, paused, exited or dead
//	name      a regular expression matched against the name
//	id        an ID prefix (or regular expression)
//	label     "key" or "key=value"
//	ancestor  an image (name or ID): the container's image or one built on it
//	exited    an exit code (of a container that ran and exited)
//	before    a container: only those created before it
//	since     a container: only those created after it
//
// Several values of one key match any of them; different keys must all
// match. Bad keys and values are ErrInvalid errors from Containers.
// Default: no filter.
func ListFilter(key, value string) ListOption {
	return func(o *listOptions) {
		if o.filters == nil {
			o.filters = map[string][]string{}
		}
		o.filters[key] = append(o.filters[key], value)
	}
}

// containerFilter is a parsed set of ListFilters.
type containerFilter struct {
	status    map[string]bool
	names     []*regexp.Regexp
	ids       []*regexp.Regexp
	labels    []string
	ancestors []*Image
	ancestorF bool
	exited    map[int]bool
	before    *Container
	since     *Container
}

var validStatus = map[string]bool{StatusCreated: true, StatusRestarting: true, StatusRunning: true, StatusRemoving: true,
	StatusPaused: true, StatusExited: true, StatusDead: true}

func (r *Runtime) parseListFilters(ctx context.Context, f map[string][]string) (*containerFilter, error) {
	cf := &containerFilter{}
	invalid := func(k, v string) error {
		return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid filter '%s=%s'", k, v))
	}
	keys := make([]string, 0, len(f))
	for k := range f {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		for _, v := range f[k] {
			switch k {
			case "status":
				if !validStatus[v] {
					return nil, invalid(k, v)
				}
				if cf.status == nil {
					cf.status = map[string]bool{}
				}
				cf.status[v] = true
			case "name", "id":
				re, err := regexp.Compile(v)
				if err != nil {
					return nil, invalid(k, v)
				}
				if k == "name" {
					cf.names = append(cf.names, re)
				} else {
					cf.ids = append(cf.ids, re)
				}
			case "label":
				cf.labels = append(cf.labels, v)
			case "ancestor":
				cf.ancestorF = true
				if im, err := r.Image(ctx, v); err == nil {
					cf.ancestors = append(cf.ancestors, im)
				}
			case "exited":
				code, err := strconv.Atoi(v)
				if err != nil {
					return nil, invalid(k, v)
				}
				if cf.exited == nil {
					cf.exited = map[int]bool{}
				}
				cf.exited[code] = true
			case "before", "since":
				c, err := r.Container(ctx, v)
				if err != nil {
					return nil, err
				}
				if k == "before" {
					cf.before = c
				} else {
					cf.since = c
				}
			default:
				return nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid filter '%s'", k))
			}
		}
	}
	return cf, nil
}

// match reports whether container c, in state st, passes the filter.
func (cf *containerFilter) match(c *Container, st State) bool {
	rec := c.rec
	if cf.status != nil && !cf.status[st.Status] {
		return false
	}
	if len(cf.names) > 0 && !anyRegexp(cf.names, "/"+rec.Name) {
		return false
	}
	if len(cf.ids) > 0 && !anyRegexp(cf.ids, rec.ID) {
		return false
	}
	if !matchLabels(cf.labels, c.labels()) {
		return false
	}
	if cf.exited != nil && (st.Running || st.StartedAt.IsZero() || !cf.exited[st.ExitCode]) {
		return false
	}
	if cf.before != nil && !rec.Created.Before(cf.before.rec.Created) {
		return false
	}
	if cf.since != nil && !rec.Created.After(cf.since.rec.Created) {
		return false
	}
	if cf.ancestorF && !cf.descends(c) {
		return false
	}
	return true
}

func anyRegexp(res []*regexp.Regexp, s string) bool {
	for _, re := range res {
		if re.MatchString(s) {
			return true
		}
	}
	return false
}

// descends reports whether the container's image is one of the ancestors
// or was built on one: its layers start with all of an ancestor's.
func (cf *containerFilter) descends(c *Container) bool {
	for _, a := range cf.ancestors {
		if a.rec.ID == c.rec.Image {
			return true
		}
		al := a.rec.Layers
		if len(al) == 0 || len(al) > len(c.rec.Layers) {
			continue
		}
		if c.rec.Layers[len(al)-1] == al[len(al)-1].ChainID {
			return true
		}
	}
	return false
}

// labels are the container's labels: the image's, overridden by the
// spec's, as docker keeps them in the container's config.
func (c *Container) labels() map[string]string {
	out := map[string]string{}
	if im, err := c.rt.imageOfRecord(c.rec); err == nil {
		for k, v := range im.config.Config.Labels {
			out[k] = v
		}
	}
	for k, v := range c.rec.Spec.Labels {
		out[k] = v
	}
	return out
}

// Labels are the container's labels: the image's labels overridden by
// the spec's, as `docker inspect` shows them under Config.Labels.
func (c *Container) Labels() map[string]string { return c.labels() }

// filterContainers applies the list options to all, which is sorted
// newest first.
func (r *Runtime) filterContainers(ctx context.Context, all []*Container, opts []ListOption) ([]*Container, error) {
	var o listOptions
	for _, opt := range opts {
		opt(&o)
	}
	if !o.running && o.limit <= 0 && len(o.filters) == 0 {
		return all, nil
	}
	cf, err := r.parseListFilters(ctx, o.filters)
	if err != nil {
		return nil, err
	}
	runningOnly := o.running && o.limit <= 0 && cf.status == nil
	var out []*Container
	for _, c := range all {
		if o.limit > 0 && len(out) == o.limit {
			break
		}
		st, err := c.State(ctx)
		if err != nil {
			continue // removed meanwhile
		}
		if runningOnly && !st.Running && st.Status != StatusRestarting {
			continue
		}
		if cf.match(c, st) {
			out = append(out, c)
		}
	}
	return out, nil
}

// Ports are the container's published ports with the host ports chosen
// when it started (docker port), sorted by container port and protocol.
// A container that is not running, or has no network of its own, has
// none.
func (c *Container) Ports(ctx context.Context) ([]PortBinding, error) {
	rec, err := c.rt.readRecord(c.rec.ID)
	if err != nil {
		return nil, err
	}
	st, err := c.rt.reconcile(ctx, rec.ID)
	if err != nil {
		return nil, err
	}
	if rec.Network == nil || (st.Status != StatusRunning && st.Status != StatusPaused) {
		return nil, nil
	}
	out := append([]PortBinding(nil), rec.Network.Ports...)
	for i := range out {
		out[i].Protocol = protoOr(out[i].Protocol)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].ContainerPort != out[j].ContainerPort {
			return out[i].ContainerPort < out[j].ContainerPort
		}
		if out[i].Protocol != out[j].Protocol {
			return out[i].Protocol < out[j].Protocol
		}
		if out[i].HostIP != out[j].HostIP {
			return out[i].HostIP < out[j].HostIP
		}
		return out[i].HostPort < out[j].HostPort
	})
	return out, nil
}

// Size is the size of the container's own changes to its filesystem (the
// files it wrote, docker's SizeRw) and of its whole filesystem, image
// included (SizeRootFs), in bytes.
func (c *Container) Size(ctx context.Context) (rw, rootfs int64, err error) {
	if err := ctx.Err(); err != nil {
		return 0, 0, err
	}
	rw = dirSize(filepath.Join(c.rt.containerDir(c.rec.ID), "upper"))
	rootfs = rw
	for _, l := range c.rec.Layers {
		if rec, err := c.rt.store.GetLayer(l); err == nil {
			rootfs += rec.Size
		}
	}
	return rw, rootfs, nil
}

// commandLine is the container's command as docker's ps shows it:
// arguments that contain spaces in single quotes.
func commandLine(path string, args []string) string {
	parts := []string{path}
	for _, a := range args {
		if strings.Contains(a, " ") {
			a = "'" + a + "'"
		}
		parts = append(parts, a)
	}
	return strings.Join(parts, " ")
}

// CommandLine is the container's command as one string, the way `docker
// ps` shows it: the path and its arguments, those with spaces in single
// quotes ("sh -c 'exit 3'").
func (c *Container) CommandLine() string { return commandLine(c.rec.Path, c.rec.Args) }
