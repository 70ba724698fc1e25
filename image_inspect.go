package berth

import (
	"strings"
	"time"
)

// ImageInspect is an image's description in the shape of `docker image
// inspect` (field names and JSON keys as docker's), for programs and
// templates written against docker's.
type ImageInspect struct {
	ID            string `json:"Id"`
	RepoTags      []string
	RepoDigests   []string
	Parent        string
	Comment       string
	Created       string
	DockerVersion string
	Author        string
	Config        InspectConfig // docker uses one Config type for images and containers
	Architecture  string
	Variant       string `json:",omitempty"`
	Os            string
	Size          int64
	VirtualSize   int64 `json:",omitempty"`
	GraphDriver   GraphDriver
	RootFS        ImageInspectRootFS
	Metadata      ImageInspectMetadata
}

// GraphDriver names the storage driver and its directories, as docker's
// inspect shows them.
type GraphDriver struct {
	Name string
	Data map[string]string
}

// ImageInspectRootFS lists the layers' diffIDs.
type ImageInspectRootFS struct {
	Type   string
	Layers []string
}

// ImageInspectMetadata holds store-side facts.
type ImageInspectMetadata struct {
	LastTagTime string
}

// Inspect describes the image in the shape of `docker image inspect`.
func (im *Image) Inspect() ImageInspect {
	c := im.config
	out := ImageInspect{
		ID:           im.ID(),
		RepoTags:     nonNil(im.Tags()),
		RepoDigests:  nonNil(im.RepoDigests()),
		Created:      im.Created().Format(time.RFC3339Nano),
		Author:       c.Author,
		Architecture: c.Architecture,
		Variant:      c.Variant,
		Os:           c.OS,
		Size:         im.Size(),
		Config: InspectConfig{
			User:         c.Config.User,
			ExposedPorts: c.Config.ExposedPorts,
			Env:          c.Config.Env,
			Cmd:          c.Config.Cmd,
			Volumes:      c.Config.Volumes,
			WorkingDir:   c.Config.WorkingDir,
			Entrypoint:   c.Config.Entrypoint,
			Labels:       c.Config.Labels,
			StopSignal:   c.Config.StopSignal,
		},
		RootFS:   ImageInspectRootFS{Type: "layers"},
		Metadata: ImageInspectMetadata{LastTagTime: "0001-01-01T00:00:00Z"},
	}
	if n := len(c.History); n > 0 {
		out.Comment = c.History[n-1].Comment
	}
	var lowers []string
	for i := len(im.rec.Layers) - 1; i >= 0; i-- {
		lowers = append(lowers, im.rt.store.LayerDir(im.rec.Layers[i].ChainID))
	}
	out.GraphDriver = GraphDriver{Name: "overlay", Data: map[string]string{"LowerDir": strings.Join(lowers, ":")}}
	for _, d := range c.RootFS.DiffIDs {
		out.RootFS.Layers = append(out.RootFS.Layers, d.String())
	}
	return out
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
