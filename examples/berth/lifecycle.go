package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/berth-run/berth"
)

// containerToolCommands returns ps, top, stats, pause, unpause, rename,
// update, port, events, cp, diff, commit and export.
func containerToolCommands(g *globals) []*cobra.Command {
	return []*cobra.Command{psCmd(g), topCmd(g), statsCmd(g), pauseCmd(g), unpauseCmd(g), renameCmd(g), updateCmd(g),
		portCmd(g), eventsCmd(g), cpCmd(g), diffCmd(g), commitCmd(g), exportCmd(g)}
}

func pauseCmd(g *globals) *cobra.Command {
	return eachCmd(g, "pause CONTAINER [CONTAINER...]", "Pause all processes within one or more containers",
		func(ctx context.Context, c *berth.Container) error { return c.Pause(ctx) })
}

func unpauseCmd(g *globals) *cobra.Command {
	return eachCmd(g, "unpause CONTAINER [CONTAINER...]", "Unpause all processes within one or more containers",
		func(ctx context.Context, c *berth.Container) error { return c.Unpause(ctx) })
}

// eachCmd is a command that does fn to every container it names,
// printing each name as it succeeds (see eachContainer).
func eachCmd(g *globals, use, short string, fn func(context.Context, *berth.Container) error) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			rt, err := g.open(cmd.Context())
			if err != nil {
				return err
			}
			return eachContainer(cmd, rt, args, func(c *berth.Container, _ string) error { return fn(cmd.Context(), c) })
		},
	}
}

// container opens the store and looks up the container name.
func (g *globals) container(cmd *cobra.Command, name string) (*berth.Container, error) {
	rt, err := g.open(cmd.Context())
	if err != nil {
		return nil, err
	}
	return rt.Container(cmd.Context(), name)
}

func renameCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "rename CONTAINER NEW_NAME",
		Short: "Rename a container",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if strings.TrimSpace(args[0]) == "" || strings.TrimSpace(args[1]) == "" {
				return errors.New("neither old nor new names may be empty")
			}
			c, err := g.container(cmd, args[0])
			if err != nil {
				return err
			}
			return c.Rename(ctx, args[1])
		},
	}
}

func updateCmd(g *globals) *cobra.Command {
	var memory, memorySwap, memoryReservation, cpus, cpusetCpus, cpusetMems, restart string
	var cpuShares, cpuPeriod, cpuQuota, pidsLimit int64
	var blkioWeight uint16
	c := &cobra.Command{
		Use:   "update [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Update configuration of one or more containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			changed := false
			cmd.LocalFlags().VisitAll(func(f *pflag.Flag) { changed = changed || f.Changed })
			if !changed {
				return errors.New("you must provide one or more flags when using this command")
			}
			var u berth.Update
			res := &u.Resources
			var err error
			for _, v := range []struct {
				val   string
				dst   *int64
				parse func(string) (int64, error)
			}{{memory, &res.Memory, berth.ParseMemory}, {memorySwap, &res.MemorySwap, berth.ParseMemorySwap},
				{memoryReservation, &res.MemoryReservation, berth.ParseMemory}, {cpus, &res.NanoCPUs, berth.ParseCPUs}} {
				if v.val != "" {
					if *v.dst, err = v.parse(v.val); err != nil {
						return err
					}
				}
			}
			res.CPUShares, res.CPUPeriod, res.CPUQuota, res.PidsLimit = cpuShares, cpuPeriod, cpuQuota, pidsLimit
			res.CpusetCpus, res.CpusetMems, res.BlkioWeight = cpusetCpus, cpusetMems, blkioWeight
			if cmd.Flags().Changed("restart") {
				p, err := berth.ParseRestartPolicy(restart)
				if err != nil {
					return err
				}
				u.RestartPolicy = &p
			}
			rt, err := g.open(ctx)
			if err != nil {
				return err
			}
			return eachContainer(cmd, rt, args, func(c *berth.Container, _ string) error { return c.Update(ctx, u) })
		},
	}
	fl := c.Flags()
	fl.StringVarP(&memory, "memory", "m", "", "Memory limit")
	fl.StringVar(&memorySwap, "memory-swap", "", "Swap limit equal to memory plus swap: -1 to enable unlimited swap")
	fl.StringVar(&memoryReservation, "memory-reservation", "", "Memory soft limit")
	fl.StringVar(&cpus, "cpus", "", "Number of CPUs")
	fl.Int64VarP(&cpuShares, "cpu-shares", "c", 0, "CPU shares (relative weight)")
	fl.Int64Var(&cpuPeriod, "cpu-period", 0, "Limit CPU CFS (Completely Fair Scheduler) period")
	fl.Int64Var(&cpuQuota, "cpu-quota", 0, "Limit CPU CFS (Completely Fair Scheduler) quota")
	fl.StringVar(&cpusetCpus, "cpuset-cpus", "", "CPUs in which to allow execution (0-3, 0,1)")
	fl.StringVar(&cpusetMems, "cpuset-mems", "", "MEMs in which to allow execution (0-3, 0,1)")
	fl.Int64Var(&pidsLimit, "pids-limit", 0, "Tune container pids limit (set -1 for unlimited)")
	fl.Uint16Var(&blkioWeight, "blkio-weight", 0, "Block IO (relative weight), between 10 and 1000, or 0 to disable")
	fl.StringVar(&restart, "restart", "", "Restart policy to apply when a container exits")
	return c
}

func topCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "top CONTAINER [ps OPTIONS]",
		Short: "Display the running processes of a container",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, err := g.container(cmd, args[0])
			if err != nil {
				return err
			}
			top, err := c.Top(ctx, args[1:]...)
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 20, 1, 3, ' ', 0)
			fmt.Fprintln(w, strings.Join(top.Titles, "\t"))
			for _, p := range top.Processes {
				fmt.Fprintln(w, strings.Join(p, "\t"))
			}
			return w.Flush()
		},
	}
	c.Flags().SetInterspersed(false) // the ps options follow the container
	return c
}
