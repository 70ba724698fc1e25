package main

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/berth-run/berth"
)

func commitCmd(g *globals) *cobra.Command {
	var author, message string
	var changes []string
	var pause bool
	c := &cobra.Command{
		Use:   "commit [OPTIONS] CONTAINER [REPOSITORY[:TAG]]",
		Short: "Create a new image from a container's changes",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, err := g.container(cmd, args[0])
			if err != nil {
				return err
			}
			ref := ""
			if len(args) == 2 {
				ref = args[1]
			}
			im, err := c.Commit(ctx, ref, berth.CommitAuthor(author), berth.CommitMessage(message),
				berth.CommitChanges(changes...), berth.CommitPause(pause))
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), im.ID())
			return nil
		},
	}
	fl := c.Flags()
	fl.StringVarP(&author, "author", "a", "", `Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")`)
	fl.StringArrayVarP(&changes, "change", "c", nil, "Apply Dockerfile instruction to the created image")
	fl.StringVarP(&message, "message", "m", "", "Commit message")
	fl.BoolVarP(&pause, "pause", "p", true, "Pause container during commit")
	return c
}

func diffCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "diff CONTAINER",
		Short: "Inspect changes to files or directories on a container's filesystem",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, err := g.container(cmd, args[0])
			if err != nil {
				return err
			}
			chs, err := c.Diff(ctx)
			if err != nil {
				return err
			}
			for _, ch := range chs {
				fmt.Fprintln(cmd.OutOrStdout(), ch)
			}
			return nil
		},
	}
}

func exportCmd(g *globals) *cobra.Command {
	var output string
	c := &cobra.Command{
		Use:   "export [OPTIONS] CONTAINER",
		Short: "Export a container's filesystem as a tar archive",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := refuseTerminal(cmd, output); err != nil {
				return err
			}
			c, err := g.container(cmd, args[0])
			if err != nil {
				return err
			}
			return writeArchive(cmd, output, func(w io.Writer) error { return c.Export(cmd.Context(), w) })
		},
	}
	c.Flags().StringVarP(&output, "output", "o", "", "Write to a file, instead of STDOUT")
	return c
}

// refuseTerminal is docker's refusal to write an archive to a terminal.
func refuseTerminal(cmd *cobra.Command, output string) error {
	if output == "" && cmd.OutOrStdout() == os.Stdout && isTerminal(os.Stdout) {
		return fmt.Errorf("cowardly refusing to save to a terminal. Use the -o flag or redirect")
	}
	return nil
}

// writeArchive writes an archive with write to the file output (whole or
// not at all: through a temporary file renamed at the end), or to the
// command's output when output is empty.
func writeArchive(cmd *cobra.Command, output string, write func(io.Writer) error) error {
	if output == "" {
		return write(cmd.OutOrStdout())
	}
	tmp := output + ".tmp"
	file, err := os.Create(tmp)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	defer file.Close()
	if err := write(file); err != nil {
		return err
	}
	if err := file.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, output)
}
