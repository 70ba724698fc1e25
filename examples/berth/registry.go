package main

import "github.com/spf13/cobra"

// registryCommands returns pull, push, login, logout and search.
func registryCommands(g *globals) []*cobra.Command { return nil }
