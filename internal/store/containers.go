package store

import (
	"os"
	"path/filepath"

	"github.com/opencontainers/go-digest"
)

// ContainerDir is the directory of container id in the store.
func (s *Store) ContainerDir(id string) string { return filepath.Join(s.root, "containers", id) }

// ContainerRunDir is the run-time directory of container id.
func (s *Store) ContainerRunDir(id string) string { return filepath.Join(s.runRoot, "containers", id) }

// ContainerIDs lists the IDs of the containers in the store.
func (s *Store) ContainerIDs() ([]string, error) {
	ents, err := os.ReadDir(filepath.Join(s.root, "containers"))
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(ents))
	for _, e := range ents {
		if e.IsDir() && len(e.Name()) == 64 {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// layerRefs is the part of a container record the store reads itself: the
// layer chains the container's root filesystem is made of.
type layerRefs struct {
	Layers []digest.Digest `json:"layers"`
}

// containerLayerRefs lists the chain IDs that containers use.
func (s *Store) containerLayerRefs() []digest.Digest {
	ids, _ := s.ContainerIDs()
	var out []digest.Digest
	for _, id := range ids {
		var r layerRefs
		if ReadJSON(filepath.Join(s.ContainerDir(id), "container.json"), &r) == nil {
			out = append(out, r.Layers...)
		}
	}
	return out
}
