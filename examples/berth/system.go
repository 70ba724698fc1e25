package main

import (
	"fmt"
	goruntime "runtime"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/berth-run/berth"
)

// systemCommands returns version, info, system (df, info, check, prune)
// and container prune (prune.go).
func systemCommands(g *globals) []*cobra.Command {
	system := &cobra.Command{Use: "system", Short: "Manage berth"}
	system.AddCommand(dfCmd(g), infoCmd(g), systemCheckCmd(g), systemPruneCmd(g))
	return []*cobra.Command{system, versionCmd(), infoCmd(g), containerGroup(g)}
}

// version is berth's module version, from the build information.
func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/berth-run/berth" {
				return d.Version
			}
		}
		if v := bi.Main.Version; v != "" && v != "(devel)" {
			return v
		}
	}
	return "dev"
}

func versionCmd() *cobra.Command {
	var format string
	return &cobra.Command{
		Use:   "version",
		Short: "Show the berth version information",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			v := map[string]string{"Version": version(), "GoVersion": goruntime.Version(), "Os": goruntime.GOOS, "Arch": goruntime.GOARCH}
			if format != "" {
				return printTemplate(cmd.OutOrStdout(), format, v)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Client: berth (daemonless)\n Version:           %s\n Go version:        %s\n OS/Arch:           %s/%s\n",
				v["Version"], v["GoVersion"], v["Os"], v["Arch"])
			return nil
		},
	}
}

func infoCmd(g *globals) *cobra.Command {
	var format string
	c := &cobra.Command{
		Use:   "info",
		Short: "Display system-wide information",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			rt, err := g.open(ctx)
			if err != nil {
				return err
			}
			info, err := rt.Info(ctx)
			if err != nil {
				return err
			}
			if format != "" {
				return printTemplate(cmd.OutOrStdout(), format, info)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "Client: berth\n Version:    %s\n\nServer: none (berth is daemonless)\n", version())
			fmt.Fprintf(w, " Containers: %d\n  Running: %d\n  Paused: %d\n  Stopped: %d\n Images: %d\n",
				info.Containers, info.ContainersRunning, info.ContainersPaused, info.ContainersStopped, info.Images)
			fmt.Fprintf(w, " Storage Driver: %s\n Cgroup Version: %s\n Kernel Version: %s\n Operating System: %s\n OSType: linux\n Architecture: %s\n CPUs: %d\n Total Memory: %s\n Docker Root Dir: %s\n Run Root Dir: %s\n",
				info.Driver, info.CgroupVersion, info.KernelVersion, info.OperatingSystem, info.Architecture, info.NCPU, humanSizeBinary(info.MemTotal), info.RootDir, info.RunRoot)
			return nil
		},
	}
	c.Flags().StringVarP(&format, "format", "f", "", "Format the output using the given Go template")
	return c
}

// humanSizeBinary formats bytes in binary units ("23.4GiB"), as docker's
// info does for memory.
func humanSizeBinary(n int64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB"}
	f := float64(n)
	i := 0
	for f >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	return fmt.Sprintf("%.4g%s", f, units[i])
}

type dfRow struct {
	Type        string
	TotalCount  string
	Active      string
	Size        string
	Reclaimable string
}

var dfTable = table{
	def:     "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}",
	headers: map[string]string{"Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE", "Size": "SIZE", "Reclaimable": "RECLAIMABLE"},
}

func dfCmd(g *globals) *cobra.Command {
	var format string
	var verbose bool
	c := &cobra.Command{
		Use:   "df",
		Short: "Show berth disk usage",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			rt, err := g.open(ctx)
			if err != nil {
				return err
			}
			du, err := rt.DiskUsage(ctx)
			if err != nil {
				return err
			}
			var rows []any
			for _, u := range []struct {
				name string
				u    berth.UsageSummary
			}{{"Images", du.Images}, {"Containers", du.Containers}, {"Local Volumes", du.Volumes}, {"Build Cache", du.BuildCache}} {
				rec := humanSize(u.u.Reclaimable)
				if u.u.Size > 0 {
					rec += fmt.Sprintf(" (%d%%)", u.u.Reclaimable*100/u.u.Size)
				}
				rows = append(rows, dfRow{Type: u.name, TotalCount: fmt.Sprint(u.u.Total), Active: fmt.Sprint(u.u.Active), Size: humanSize(u.u.Size), Reclaimable: rec})
			}
			_ = verbose
			return dfTable.print(cmd.OutOrStdout(), format, rows)
		},
	}
	c.Flags().StringVar(&format, "format", "", "Format output using a custom template")
	c.Flags().BoolVarP(&verbose, "verbose", "v", false, "Show detailed information on space usage (accepted)")
	return c
}
