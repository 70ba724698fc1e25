//go:build !linux

package berth

import (
	"context"
	"syscall"
	"time"

	"github.com/berth-run/berth/internal/errdefs"
)

type ownedContainer struct{}

func (r *Runtime) run(context.Context, Spec, ...RunOption) (*Container, error) {
	return nil, errdefs.ErrNotSupported
}
func (c *Container) start(context.Context, ...RunOption) error     { return errdefs.ErrNotSupported }
func (c *Container) state(context.Context) (State, error)          { return State{}, errdefs.ErrNotSupported }
func (c *Container) wait(context.Context) (int, error)             { return 0, errdefs.ErrNotSupported }
func (c *Container) kill(context.Context, syscall.Signal) error    { return errdefs.ErrNotSupported }
func (c *Container) stop(context.Context, *time.Duration) error    { return errdefs.ErrNotSupported }
func (c *Container) remove(context.Context, ...RemoveOption) error { return errdefs.ErrNotSupported }
func (c *Container) resize(context.Context, uint16, uint16) error  { return errdefs.ErrNotSupported }

func (r *Runtime) reconcile(_ context.Context, id string) (*containerState, error) {
	return r.readState(id)
}
