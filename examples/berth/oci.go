package main

import "github.com/spf13/cobra"

// ociCommands returns `berth oci ...`, the OCI runtime command line
// (runc-compatible create/start/state/kill/delete/run over a bundle).
func ociCommands(g *globals) []*cobra.Command {
	return nil
}
