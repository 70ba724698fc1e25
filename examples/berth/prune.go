package main

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth-run/berth"
)

// containerGroup is `container` with its prune command; system prune and
// check join the system group (system.go).
func containerGroup(g *globals) *cobra.Command {
	ctr := &cobra.Command{Use: "container", Short: "Manage containers"}
	ctr.AddCommand(containerPruneCmd(g))
	return ctr
}

func containerPruneCmd(g *globals) *cobra.Command {
	var force bool
	var filters []string
	c := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove all stopped containers",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if !force && !confirm(cmd, "WARNING! This will remove all stopped containers.") {
				return nil
			}
			rt, err := g.open(ctx)
			if err != nil {
				return err
			}
			ids, reclaimed, err := rt.PruneContainers(ctx, filters...)
			w := cmd.OutOrStdout()
			printSection(w, "Deleted Containers:", ids)
			fmt.Fprintln(w, "Total reclaimed space:", humanSize(reclaimed))
			return err
		},
	}
	c.Flags().BoolVarP(&force, "force", "f", false, "Do not prompt for confirmation")
	c.Flags().StringArrayVar(&filters, "filter", nil, "Provide filter values (e.g. 'until=<timestamp>')")
	return c
}

func systemPruneCmd(g *globals) *cobra.Command {
	var o berth.SystemPruneOptions
	var force bool
	c := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove unused data",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if !force && !confirm(cmd, systemPruneWarning(o)) {
				return nil
			}
			rt, err := g.open(ctx)
			if err != nil {
				return err
			}
			rep, err := rt.Prune(ctx, o)
			if rep == nil {
				return err
			}
			w := cmd.OutOrStdout()
			printSection(w, "Deleted Containers:", rep.Containers)
			printSection(w, "Deleted Networks:", rep.Networks)
			printSection(w, "Deleted Volumes:", rep.Volumes)
			printSection(w, "Deleted Images:", pruneImageLines(rep.Images))
			fmt.Fprintln(w, "Total reclaimed space:", humanSize(rep.SpaceReclaimed))
			return err
		},
	}
	c.Flags().BoolVarP(&o.All, "all", "a", false, "Remove all unused images not just dangling ones")
	c.Flags().BoolVarP(&force, "force", "f", false, "Do not prompt for confirmation")
	c.Flags().BoolVar(&o.Volumes, "volumes", false, "Prune anonymous volumes")
	c.Flags().StringArrayVar(&o.Filters, "filter", nil, "Provide filter values (e.g. 'label=<key>=<value>')")
	return c
}

// systemPruneWarning is docker's list of what system prune removes.
func systemPruneWarning(o berth.SystemPruneOptions) string {
	lines := []string{"WARNING! This will remove:", "  - all stopped containers", "  - all networks not used by at least one container"}
	if o.Volumes {
		lines = append(lines, "  - all anonymous volumes not used by at least one container")
	}
	if o.All {
		lines = append(lines, "  - all images without at least one container associated to them")
	} else {
		lines = append(lines, "  - all dangling images")
	}
	if len(o.Filters) > 0 {
		lines = append(lines, "", "  Items to be pruned will be filtered with:")
		filters := slices.Clone(o.Filters)
		slices.Sort(filters)
		for _, f := range filters {
			lines = append(lines, "  - "+f)
		}
	}
	return strings.Join(lines, "\n") + "\n"
}

// pruneImageLines are docker's lines of pruned images: "untagged: NAME",
// "deleted: ID" (lower case, unlike rmi's).
func pruneImageLines(reps []berth.RemoveReport) []string {
	var out []string
	for _, r := range reps {
		if r.Untagged != "" {
			out = append(out, "untagged: "+r.Untagged)
		}
		if r.Deleted != "" {
			out = append(out, "deleted: "+r.Deleted)
		}
	}
	return out
}

// printSection prints a heading, the lines and a blank line, as docker's
// prune commands do, unless there are no lines.
func printSection(w io.Writer, heading string, lines []string) {
	if len(lines) == 0 {
		return
	}
	fmt.Fprintln(w, heading)
	for _, l := range lines {
		fmt.Fprintln(w, l)
	}
	fmt.Fprintln(w)
}

func systemCheckCmd(g *globals) *cobra.Command {
	var repair, quick bool
	c := &cobra.Command{
		Use:   "check [OPTIONS]",
		Short: "Check the store for inconsistencies and leaks",
		Long: "Check verifies every blob by digest, the layer chains and their users, container records\n" +
			"against their processes, mounts and cgroups, volumes and what crashed processes left.\n" +
			"With --repair it fixes what it can and reports the rest.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			rt, err := g.open(ctx)
			if err != nil {
				return err
			}
			opts := []berth.CheckOption{berth.WithBlobVerification(!quick)}
			if repair {
				opts = append(opts, berth.WithRepair())
			}
			probs, err := rt.Check(ctx, opts...)
			w := cmd.OutOrStdout()
			left := 0
			for _, p := range probs {
				fmt.Fprintln(w, p)
				if !p.Repaired {
					left++
				}
			}
			if err != nil {
				return err
			}
			found := fmt.Sprintf("%d problems found", len(probs))
			if len(probs) == 1 {
				found = "1 problem found"
			}
			switch {
			case len(probs) == 0:
				fmt.Fprintln(w, "No problems found")
			case repair:
				fmt.Fprintf(w, "%s, %d repaired\n", found, len(probs)-left)
			default:
				fmt.Fprintf(w, "%s; run with --repair to fix what can be fixed\n", found)
			}
			if left > 0 {
				return exitError{code: 1}
			}
			return nil
		},
	}
	c.Flags().BoolVar(&repair, "repair", false, "Fix what can be fixed")
	c.Flags().BoolVar(&quick, "quick", false, "Do not re-hash every blob")
	return c
}
