//go:build !linux

package network

import (
	"context"

	"github.com/berth-run/berth/internal/errdefs"
)

func (m *Manager) ensureBridge(context.Context, BridgeConfig) error { return errdefs.ErrNotSupported }
func (m *Manager) removeBridge(context.Context, string) error       { return errdefs.ErrNotSupported }
func (m *Manager) detach(context.Context, string, string) error     { return errdefs.ErrNotSupported }
func (m *Manager) release(context.Context, string, string) error    { return errdefs.ErrNotSupported }
func (m *Manager) attach(context.Context, AttachRequest) (*Endpoint, error) {
	return nil, errdefs.ErrNotSupported
}

type nsHandle struct{}

func (*nsHandle) Close() {}

func newNetns(string) (*nsHandle, error)     { return nil, errdefs.ErrNotSupported }
func removeNetns(string) error               { return errdefs.ErrNotSupported }
func interfaces(string) ([]Interface, error) { return nil, errdefs.ErrNotSupported }
