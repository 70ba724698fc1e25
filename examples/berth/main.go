// Command berth is a docker-like command line over the berth library.
//
// It is flag parsing and printing only: every operation is a call into the
// public API of github.com/berth-run/berth. Global flags --root and
// --runroot (environment BERTH_ROOT, BERTH_RUNROOT) pick the store.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/berth-run/berth"
)

// globals are the flags every command shares.
type globals struct {
	root    string
	runRoot string

	rt *berth.Runtime // opened on first use by open
}

func newRootCmd() *cobra.Command {
	g := &globals{}
	cmd := &cobra.Command{
		Use:           "berth",
		Short:         "A daemonless container engine with docker's commands",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	cmd.PersistentFlags().StringVar(&g.root, "root", os.Getenv("BERTH_ROOT"), "store root directory (default /var/lib/berth, env BERTH_ROOT)")
	cmd.PersistentFlags().StringVar(&g.runRoot, "runroot", os.Getenv("BERTH_RUNROOT"), "runtime state directory (default /run/berth, env BERTH_RUNROOT)")
	// One constructor per command group; each lives in its own file.
	for _, add := range []func(*globals) []*cobra.Command{
		containerCommands,
		containerToolCommands,
		detachedCommands,
		imageCommands,
		registryCommands,
		systemCommands,
		networkCommands,
		volumeCommands,
		ociCommands,
	} {
		cmd.AddCommand(add(g)...)
	}
	return cmd
}

// exitError carries a process exit status out of a command (for example
// the container's status from `berth run`), with the error to print, if
// any.
type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string {
	if e.err != nil {
		return e.err.Error()
	}
	return fmt.Sprintf("exit status %d", e.code)
}

// isTerminal reports whether f is a terminal.
func isTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }

func main() {
	err := newRootCmd().Execute()
	if err == nil {
		return
	}
	var ee exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(os.Stderr, "berth:", ee.err)
		}
		os.Exit(ee.code)
	}
	fmt.Fprintln(os.Stderr, "berth:", err)
	os.Exit(125)
}
