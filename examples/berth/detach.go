package main

import (
	"github.com/spf13/cobra"

	"github.com/berth-run/berth"
)

// detachedCommands returns the commands that work on detached containers
// (logs, ps, attach, ...).
func detachedCommands(g *globals) []*cobra.Command { return nil }

// runDetached runs a container in the background (run -d).
func runDetached(cmd *cobra.Command, rt *berth.Runtime, spec berth.Spec) error {
	return exitError{code: 125, err: berth.ErrNotSupported}
}

// startDetached starts stopped containers in the background (start
// without -a).
func startDetached(cmd *cobra.Command, rt *berth.Runtime, args []string) error {
	return berth.ErrNotSupported
}
