package main

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-run/berth"
)

// statsRow is one line of `stats`; its fields are the --format names.
type statsRow struct {
	Container, Name, ID, CPUPerc, MemUsage, MemPerc, NetIO, BlockIO, PIDs string
}

var statsTable = table{
	def: "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}",
	headers: map[string]string{"Container": "CONTAINER", "Name": "NAME", "ID": "CONTAINER ID", "CPUPerc": "CPU %",
		"MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %", "NetIO": "NET I/O", "BlockIO": "BLOCK I/O", "PIDs": "PIDS"},
}

// statsInterval is how far apart the two samples of a CPU % are, and how
// often the stream is redrawn (docker's one second).
const statsInterval = time.Second

func statsCmd(g *globals) *cobra.Command {
	var all, noStream, noTrunc bool
	var format string
	c := &cobra.Command{
		Use:   "stats [OPTIONS] [CONTAINER...]",
		Short: "Display a live stream of container(s) resource usage statistics",
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			rt, err := g.open(ctx)
			if err != nil {
				return err
			}
			// The containers: those named, or all running (-a: all).
			type target struct {
				arg string
				c   *berth.Container
			}
			var targets []target
			if len(args) > 0 {
				for _, a := range args {
					c, err := rt.Container(ctx, a)
					if err != nil {
						return err
					}
					targets = append(targets, target{a, c})
				}
			}
			list := func() []target {
				if len(args) > 0 {
					return targets
				}
				var opts []berth.ListOption
				if !all {
					opts = append(opts, berth.ListRunning())
				}
				cs, _ := rt.Containers(ctx, opts...)
				out := make([]target, 0, len(cs))
				for _, c := range cs {
					out = append(out, target{"", c})
				}
				return out
			}
			prev := map[string]*berth.ContainerStats{}
			var sampleErr error
			sample := func(ts []target) []any {
				var rows []any
				for _, t := range ts {
					s, err := t.c.Stats(ctx)
					if err != nil {
						if sampleErr == nil && !errors.Is(err, berth.ErrNotFound) {
							sampleErr = err
						}
						s = &berth.ContainerStats{}
					}
					rows = append(rows, statsRowOf(t.arg, t.c, s, prev[t.c.ID()], !noTrunc))
					prev[t.c.ID()] = s
				}
				return rows
			}
			if format == "table" { // docker: the default table
				format = ""
			}
			ts := list()
			sample(ts) // the first sample only starts the CPU measure
			if sampleErr != nil && len(args) > 0 {
				return sampleErr
			}
			w := cmd.OutOrStdout()
			for {
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(statsInterval):
				}
				if !noStream {
					ts = list()
					io.WriteString(w, "\033[2J\033[H") // clear the screen, as docker's stream does
				}
				if err := statsTable.print(w, format, sample(ts)); err != nil {
					return err
				}
				if noStream {
					return nil
				}
			}
		},
	}
	fl := c.Flags()
	fl.BoolVarP(&all, "all", "a", false, "Show all containers (default shows just running)")
	fl.BoolVar(&noStream, "no-stream", false, "Disable streaming stats and only pull the first result")
	fl.BoolVar(&noTrunc, "no-trunc", false, "Do not truncate output")
	fl.StringVar(&format, "format", "", "Format output using a custom template ('table', 'table TEMPLATE', 'json' or a Go template)")
	return c
}

// statsRowOf renders a sample as docker stats does.
func statsRowOf(arg string, c *berth.Container, s, prev *berth.ContainerStats, trunc bool) statsRow {
	id := c.ID()
	if trunc {
		id = shortID(id)
	}
	if arg == "" {
		arg = id
	}
	rx, tx := s.NetIO()
	return statsRow{Container: arg, Name: c.Name(), ID: id,
		CPUPerc:  fmt.Sprintf("%.2f%%", s.CPUPercent(prev)),
		MemUsage: humanSizeBinary(int64(s.MemoryUsage)) + " / " + humanSizeBinary(int64(s.MemoryLimit)),
		MemPerc:  fmt.Sprintf("%.2f%%", s.MemoryPercent()),
		NetIO:    humanSize(int64(rx)) + " / " + humanSize(int64(tx)),
		BlockIO:  humanSize(int64(s.BlockRead)) + " / " + humanSize(int64(s.BlockWrite)),
		PIDs:     fmt.Sprint(s.Pids)}
}
