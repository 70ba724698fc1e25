package berth

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berth-run/berth/internal/errdefs"
	"github.com/berth-run/berth/internal/proc"
	"github.com/berth-run/berth/internal/store"
)

// Container statuses, as docker names them.
const (
	StatusCreated    = "created"
	StatusRunning    = "running"
	StatusPaused     = "paused"
	StatusRestarting = "restarting"
	StatusRemoving   = "removing"
	StatusExited     = "exited"
	StatusDead       = "dead"
)

// containerRecord is what the store keeps about a container
// (containers/<id>/container.json). It changes only under the store lock.
type containerRecord struct {
	ID        string          `json:"id"`
	Name      string          `json:"name"`
	Created   time.Time       `json:"created"`
	Image     digest.Digest   `json:"image"`     // image ID
	ImageName string          `json:"imageName"` // as the user gave it
	Layers    []digest.Digest `json:"layers"`    // chain IDs, bottom first (the store reads this)
	Spec      Spec            `json:"spec"`
	Path      string          `json:"path"` // the process's argv[0] and args, for ps and inspect
	Args      []string        `json:"args"`
	// Mounts are the resolved mounts (volumes by host path).
	Mounts []MountPoint `json:"mounts,omitempty"`
	// MountSpecs are the mounts as resolved at create, which start
	// mounts and rm -v reads (container_mounts.go).
	MountSpecs []mountRecord `json:"mountSpecs,omitempty"`
	// Network is what the network setup recorded.
	Network *NetworkSettings `json:"network,omitempty"`
	// Extra is per-feature state that other files own (monitor, volumes).
	Extra map[string]string `json:"extra,omitempty"`
}

// containerState is the container's run state (containers/<id>/state.json),
// written by the process that owns the container's init (its parent).
type containerState struct {
	Status       string    `json:"status"`
	Init         proc.ID   `json:"init"`            // the container's PID 1, as seen from the host
	Owner        proc.ID   `json:"owner"`           // the parent of Init: the creating process or the monitor
	Detached     bool      `json:"detached"`        // owned by the monitor
	ExitCode     int       `json:"exitCode"`        // last exit code
	OOMKilled    bool      `json:"oomKilled"`       // the last exit was an OOM kill
	Error        string    `json:"error,omitempty"` // why the last start failed
	StartedAt    time.Time `json:"startedAt"`
	FinishedAt   time.Time `json:"finishedAt"`
	RestartCount int       `json:"restartCount"`
	// StoppedByUser records a stop or kill by a user, which the restart
	// policy honours (docker's "manually stopped").
	StoppedByUser bool `json:"stoppedByUser"`
	// PausedBy is the process that paused the container for an
	// operation (commit) and thaws it when done; zero for a user's
	// pause. Open thaws a container whose pauser died.
	PausedBy proc.ID `json:"pausedBy,omitzero"`
}

// MountPoint is a mount of a container as inspect shows it.
type MountPoint struct {
	Type        string
	Name        string `json:",omitempty"`
	Source      string
	Destination string
	Driver      string `json:",omitempty"`
	Mode        string
	RW          bool
	Propagation string
}

// NetworkSettings is the container's network configuration as set up.
type NetworkSettings struct {
	Mode     string                     `json:"mode"`            // bridge, none, host, container:ID, or a network name
	NetNS    string                     `json:"netns,omitempty"` // bind-mounted netns path
	Networks map[string]*EndpointConfig `json:"networks,omitempty"`
	Ports    []PortBinding              `json:"ports,omitempty"` // published, with host ports chosen
}

// EndpointConfig is the container's attachment to one network.
type EndpointConfig struct {
	NetworkID   string   `json:"networkID"`
	EndpointID  string   `json:"endpointID"`
	Gateway     string   `json:"gateway"`
	IPAddress   string   `json:"ipAddress"`
	IPPrefixLen int      `json:"ipPrefixLen"`
	MacAddress  string   `json:"macAddress"`
	Aliases     []string `json:"aliases,omitempty"`
	Interface   string   `json:"interface"`
	// IPAMAddress is the address asked for (--ip), kept across restarts.
	IPAMAddress string `json:"ipamAddress,omitempty"`
}

// Container is a container in the store. A Container is a handle: its
// methods read the current state from the store, so handles in different
// processes agree.
type Container struct {
	rt  *Runtime
	rec *containerRecord

	// owned is set in the process that runs the container's init (its
	// parent): the foreground caller or the monitor.
	owned *ownedContainer
}

// ID is the container's 64-hex-digit ID.
func (c *Container) ID() string { return c.rec.ID }

// Name is the container's name (without docker's leading "/").
func (c *Container) Name() string { return c.rec.Name }

// ImageID is the ID of the image the container was created from.
func (c *Container) ImageID() string { return c.rec.Image.String() }

// ImageName is the image as given when the container was created.
func (c *Container) ImageName() string { return c.rec.ImageName }

// Created is when the container was created.
func (c *Container) Created() time.Time { return c.rec.Created }

// Spec is the container's specification as given at creation.
func (c *Container) Spec() Spec { return c.rec.Spec }

// Command is the container's process: the path and its arguments.
func (c *Container) Command() []string { return append([]string{c.rec.Path}, c.rec.Args...) }

func (r *Runtime) containerDir(id string) string { return r.store.ContainerDir(id) }

func (r *Runtime) readRecord(id string) (*containerRecord, error) {
	var rec containerRecord
	if err := store.ReadJSON(filepath.Join(r.containerDir(id), "container.json"), &rec); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, errdefs.New(errdefs.ErrNotFound, "no such container: "+shortOr(id))
		}
		return nil, err
	}
	return &rec, nil
}

func (r *Runtime) writeRecord(rec *containerRecord) error {
	return store.WriteJSON(filepath.Join(r.containerDir(rec.ID), "container.json"), rec, false)
}

func (r *Runtime) readState(id string) (*containerState, error) {
	var st containerState
	if err := store.ReadJSON(filepath.Join(r.containerDir(id), "state.json"), &st); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, errdefs.New(errdefs.ErrNotFound, "no such container: "+shortOr(id))
		}
		return nil, err
	}
	return &st, nil
}

func (r *Runtime) writeState(id string, st *containerState) error {
	return store.WriteJSON(filepath.Join(r.containerDir(id), "state.json"), st, false)
}

func shortOr(id string) string {
	if len(id) == 64 {
		return id[:12]
	}
	return id
}

// Container looks up a container by name, full ID or unique ID prefix.
func (r *Runtime) Container(ctx context.Context, nameOrID string) (*Container, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	id, err := r.resolveContainer(nameOrID)
	if err != nil {
		return nil, err
	}
	rec, err := r.readRecord(id)
	if err != nil {
		return nil, err
	}
	return &Container{rt: r, rec: rec}, nil
}

var hexPrefix = regexp.MustCompile(`^[a-f0-9]+$`)

// resolveContainer finds the ID nameOrID names: full ID, then name, then
// a unique ID prefix, as docker.
func (r *Runtime) resolveContainer(nameOrID string) (string, error) {
	if nameOrID == "" {
		return "", errdefs.New(errdefs.ErrInvalid, "container name or ID is empty")
	}
	ids, err := r.store.ContainerIDs()
	if err != nil {
		return "", err
	}
	for _, id := range ids {
		if id == nameOrID {
			return id, nil
		}
	}
	name := strings.TrimPrefix(nameOrID, "/")
	for _, id := range ids {
		if rec, err := r.readRecord(id); err == nil && rec.Name == name {
			return id, nil
		}
	}
	if hexPrefix.MatchString(nameOrID) {
		var found string
		for _, id := range ids {
			if strings.HasPrefix(id, nameOrID) {
				if found != "" {
					return "", errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("multiple IDs found with provided prefix: %s", nameOrID))
				}
				found = id
			}
		}
		if found != "" {
			return found, nil
		}
	}
	return "", errdefs.New(errdefs.ErrNotFound, "no such container: "+nameOrID)
}

// Containers lists the store's containers, newest first: all of them, or
// those the options select (see ListRunning, ListLimit, ListFilter).
func (r *Runtime) Containers(ctx context.Context, opts ...ListOption) ([]*Container, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ids, err := r.store.ContainerIDs()
	if err != nil {
		return nil, err
	}
	var out []*Container
	for _, id := range ids {
		rec, err := r.readRecord(id)
		if err != nil {
			continue // being created or removed
		}
		out = append(out, &Container{rt: r, rec: rec})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].rec.Created.After(out[j].rec.Created) })
	return r.filterContainers(ctx, out, opts)
}

var validName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// checkName validates a container name; the caller holds the store lock
// to check it is free.
func (r *Runtime) checkName(name string) error {
	if !validName.MatchString(name) {
		return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", name))
	}
	ids, err := r.store.ContainerIDs()
	if err != nil {
		return err
	}
	for _, id := range ids {
		if rec, err := r.readRecord(id); err == nil && rec.Name == name {
			return errdefs.New(errdefs.ErrConflict, fmt.Sprintf("the container name %q is already in use by container %q. You have to remove (or rename) that container to be able to reuse that name", "/"+name, id))
		}
	}
	return nil
}

// newID returns a random 64-hex-digit container ID that does not look
// like a number (docker avoids all-digit short IDs).
func newID() string {
	for {
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			panic(err)
		}
		id := hex.EncodeToString(b)
		if strings.Trim(id[:12], "0123456789") != "" {
			return id
		}
	}
}

// imageOfRecord reads the image a container was created from.
func (r *Runtime) imageOfRecord(rec *containerRecord) (*Image, error) {
	imrec, err := r.store.GetImage(rec.Image)
	if err != nil {
		return nil, fmt.Errorf("container %s: image %s: %w", rec.Name, rec.Image, err)
	}
	refs, err := r.store.Refs()
	if err != nil {
		return nil, err
	}
	return r.newImage(imrec, refs)
}

// networkMode is the spec's network mode with docker's default.
func networkMode(spec *Spec) string {
	if spec.Network == "" || spec.Network == "default" {
		return "bridge"
	}
	return spec.Network
}
