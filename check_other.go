//go:build !linux

package berth

import "context"

// Containers and host state are only checked on Linux.
func (c *checker) checkContainers(context.Context) error { return nil }
func (c *checker) checkHost(context.Context) error       { return nil }
func (c *checker) checkNetworks(context.Context) error   { return nil }

func (r *Runtime) repairLeftovers(context.Context) {}
