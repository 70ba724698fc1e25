//go:build !linux

package cgroup

import (
	"context"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-run/berth/internal/errdefs"
)

var errOS = errdefs.New(errdefs.ErrNotSupported, "cgroups exist on Linux only")

// DetectMode reports Unavailable: cgroups exist on Linux only.
func DetectMode() Mode { return Unavailable }

func newManager(string, *options) (*Manager, error) { return nil, errOS }

func (m *Manager) create(*specs.LinuxResources) error { return errOS }
func (m *Manager) add(int) error                      { return errOS }
func (m *Manager) update(*specs.LinuxResources) error { return errOS }
func (m *Manager) stats() (*Stats, error)             { return nil, errOS }
func (m *Manager) oomKillCount() (uint64, error)      { return 0, errOS }
func (m *Manager) procs() ([]int, error)              { return nil, errOS }
func (m *Manager) exists() bool                       { return false }
func (m *Manager) delete() error                      { return errOS }
func (m *Manager) freeze(context.Context) error       { return errOS }
func (m *Manager) thaw(context.Context) error         { return errOS }
func (m *Manager) frozen() (bool, error)              { return false, errOS }
func (m *Manager) kill(context.Context) error         { return errOS }
