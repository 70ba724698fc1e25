package berth

import (
	"path/filepath"

	"github.com/berth-run/berth/internal/proc"
	"github.com/berth-run/berth/internal/store"
)

// containerRunning reports whether container id's process is alive, from
// its state record and the process table.
func (r *Runtime) containerRunning(id string) bool {
	var st struct {
		Status string  `json:"status"`
		Init   proc.ID `json:"init"`
	}
	if store.ReadJSON(filepath.Join(r.store.ContainerDir(id), "state.json"), &st) != nil {
		return false
	}
	return (st.Status == "running" || st.Status == "paused") && st.Init.Alive()
}
