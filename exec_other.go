//go:build !linux

package berth

import (
	"context"
	"syscall"

	"github.com/berth-run/berth/internal/errdefs"
)

type execProcess struct{}

func (c *Container) exec(context.Context, ExecSpec) (*Process, error) {
	return nil, errdefs.ErrNotSupported
}
func (p *Process) wait(context.Context) (int, error) { return 0, errdefs.ErrNotSupported }
func (p *Process) signal(syscall.Signal) error       { return errdefs.ErrNotSupported }
func (p *Process) resize(uint16, uint16) error       { return errdefs.ErrNotSupported }
