//go:build !linux

package runtime

import (
	"context"
	"os"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-run/berth/internal/errdefs"
)

var errOS = errdefs.New(errdefs.ErrNotSupported, "containers need linux")

type containerSys struct{}

type processSys struct{}

func create(context.Context, CreateOpts) (*Container, error)            { return nil, errOS }
func (c *Container) start(context.Context) error                        { return errOS }
func (c *Container) wait() (ExitStatus, error)                          { return ExitStatus{}, errOS }
func (c *Container) kill(syscall.Signal) error                          { return errOS }
func (c *Container) delete(context.Context, bool) error                 { return errOS }
func (p *Process) wait() (ExitStatus, error)                            { return ExitStatus{}, errOS }
func (p *Process) signal(syscall.Signal) error                          { return errOS }
func resizePty(*os.File, uint16, uint16) error                          { return errOS }
func load(string) (*State, error)                                       { return nil, errOS }
func start(context.Context, *State) error                               { return errOS }
func kill(*State, syscall.Signal, bool) error                           { return errOS }
func remove(context.Context, *State, bool, CgroupFactory, func()) error { return errOS }
func execIn(context.Context, *State, *specs.Process, ExecOpts) (*Process, error) {
	return nil, errOS
}

// ReadSpec reads an OCI config.json.
func ReadSpec(string) (*specs.Spec, error) { return nil, errOS }
