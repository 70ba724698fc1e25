package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth-run/berth"
)

// volumeCommands returns volume (create, ls, inspect, rm, prune).
func volumeCommands(g *globals) []*cobra.Command {
	volume := &cobra.Command{Use: "volume", Short: "Manage volumes"}
	volume.AddCommand(
		volumeCreateCmd(g),
		withAliases(volumeLsCmd(g), "ls", "list"),
		volumeInspectCmd(g),
		withAliases(volumeRmCmd(g), "rm", "remove"),
		volumePruneCmd(g),
	)
	return []*cobra.Command{volume}
}

// keyValues turns repeated KEY=VALUE flags into a map (a bare KEY has an
// empty value, as docker's --label).
func keyValues(flag string, values []string) (map[string]string, error) {
	if len(values) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	for _, kv := range values {
		k, v, _ := strings.Cut(kv, "=")
		if k == "" {
			return nil, fmt.Errorf("invalid argument %q for \"%s\" flag: empty key", kv, flag)
		}
		out[k] = v
	}
	return out, nil
}

func volumeCreateCmd(g *globals) *cobra.Command {
	var driver, name string
	var labels, options []string
	c := &cobra.Command{
		Use:   "create [OPTIONS] [VOLUME]",
		Short: "Create a volume",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				if name != "" && name != args[0] {
					return fmt.Errorf("conflicting options: cannot specify a volume-name through both --name and as a positional arg")
				}
				name = args[0]
			}
			l, err := keyValues("--label", labels)
			if err != nil {
				return err
			}
			o, err := keyValues("--opt", options)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			rt, err := g.open(ctx)
			if err != nil {
				return err
			}
			v, err := rt.CreateVolume(ctx, name, berth.WithVolumeDriver(driver), berth.WithVolumeLabels(l), berth.WithVolumeOptions(o))
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), v.Name())
			return nil
		},
	}
	fl := c.Flags()
	fl.StringVarP(&driver, "driver", "d", "local", "Specify volume driver name")
	fl.StringVar(&name, "name", "", "Specify volume name")
	_ = fl.MarkHidden("name")
	fl.StringArrayVar(&labels, "label", nil, "Set metadata for a volume")
	fl.StringArrayVarP(&options, "opt", "o", nil, "Set driver specific options (local: type, device, o)")
	return c
}

// volumeRow is one line of `volume ls`; its fields are the --format names.
type volumeRow struct {
	Name       string
	Driver     string
	Scope      string
	Mountpoint string
	Labels     string
	Links      string
	Size       string
	CreatedAt  string

	labels map[string]string
}

// Label is the value of one label, for --format '{{.Label "key"}}'.
func (r volumeRow) Label(name string) string { return r.labels[name] }

var volumesTable = table{
	def: "table {{.Driver}}\t{{.Name}}",
	headers: map[string]string{"Name": "VOLUME NAME", "Driver": "DRIVER", "Scope": "SCOPE", "Mountpoint": "MOUNTPOINT",
		"Labels": "LABELS", "Links": "LINKS", "Size": "SIZE", "CreatedAt": "CREATED AT"},
}

func volumeLsCmd(g *globals) *cobra.Command {
	var quiet bool
	var format string
	var filters []string
	c := &cobra.Command{
		Use:   "volume [OPTIONS]",
		Short: "List volumes",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			rt, err := g.open(ctx)
			if err != nil {
				return err
			}
			vols, err := rt.Volumes(ctx, filters...)
			if err != nil {
				return err
			}
			var rows []any
			for _, v := range vols {
				var ls []string
				for _, k := range slices.Sorted(maps.Keys(v.Labels())) {
					ls = append(ls, k+"="+v.Labels()[k])
				}
				rows = append(rows, volumeRow{Name: v.Name(), Driver: v.Driver(), Scope: "local", Mountpoint: v.Mountpoint(),
					Labels: strings.Join(ls, ","), Links: "N/A", Size: "N/A", CreatedAt: v.Inspect().CreatedAt, labels: v.Labels()})
			}
			if quiet {
				format = "{{.Name}}"
			}
			return volumesTable.print(cmd.OutOrStdout(), format, rows)
		},
	}
	fl := c.Flags()
	fl.BoolVarP(&quiet, "quiet", "q", false, "Only display volume names")
	fl.StringVar(&format, "format", "", "Format output using a custom template ('table', 'table TEMPLATE', 'json' or a Go template)")
	fl.StringArrayVarP(&filters, "filter", "f", nil, "Provide filter values (e.g. 'dangling=true', 'name=NAME', 'label=KEY[=VALUE]', 'driver=local')")
	return c
}

func volumeInspectCmd(g *globals) *cobra.Command {
	return nounInspectCmd(g, "VOLUME", "volumes", func(ctx context.Context, rt *berth.Runtime, name string) (any, error) {
		v, err := rt.Volume(ctx, name)
		if err != nil {
			return nil, err
		}
		return v.Inspect(), nil
	})
}

func volumeRmCmd(g *globals) *cobra.Command {
	var force bool
	c := &cobra.Command{
		Use:   "volume [OPTIONS] VOLUME [VOLUME...]",
		Short: "Remove one or more volumes",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			rt, err := g.open(ctx)
			if err != nil {
				return err
			}
			var opts []berth.RemoveOption
			if force {
				opts = append(opts, berth.RemoveForce())
			}
			var errs []error
			for _, a := range args {
				v, err := rt.Volume(ctx, a)
				if err == nil {
					err = v.Remove(ctx, opts...)
				}
				if err != nil && !(force && errors.Is(err, berth.ErrNotFound)) {
					errs = append(errs, err)
					continue
				}
				fmt.Fprintln(cmd.OutOrStdout(), a)
			}
			return errors.Join(errs...)
		},
	}
	c.Flags().BoolVarP(&force, "force", "f", false, "Force the removal of one or more volumes")
	return c
}

func volumePruneCmd(g *globals) *cobra.Command {
	var all, force bool
	var filters []string
	c := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove unused local volumes",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			warning := "WARNING! This will remove anonymous local volumes not used by at least one container."
			if all || slices.Contains(filters, "all=true") || slices.Contains(filters, "all=1") {
				warning = "WARNING! This will remove all local volumes not used by at least one container."
			}
			if !force && !confirm(cmd, warning) {
				return nil
			}
			rt, err := g.open(ctx)
			if err != nil {
				return err
			}
			opts := []berth.VolumePruneOption{berth.PruneVolumeFilters(filters...)}
			if all {
				opts = append(opts, berth.PruneAllVolumes())
			}
			names, reclaimed, err := rt.PruneVolumes(ctx, opts...)
			w := cmd.OutOrStdout()
			if len(names) > 0 {
				fmt.Fprintln(w, "Deleted Volumes:")
				for _, n := range names {
					fmt.Fprintln(w, n)
				}
				fmt.Fprintln(w)
			}
			fmt.Fprintln(w, "Total reclaimed space:", humanSize(reclaimed))
			return err
		},
	}
	c.Flags().BoolVarP(&all, "all", "a", false, "Remove all unused volumes, not just anonymous ones")
	c.Flags().BoolVarP(&force, "force", "f", false, "Do not prompt for confirmation")
	c.Flags().StringArrayVar(&filters, "filter", nil, "Provide filter values (e.g. 'label=<key>=<value>', 'label!=<key>')")
	return c
}
