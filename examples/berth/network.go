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

// networkCommands returns network (create, ls, inspect, rm, connect,
// disconnect, prune).
func networkCommands(g *globals) []*cobra.Command {
	network := &cobra.Command{Use: "network", Short: "Manage networks"}
	network.AddCommand(
		networkCreateCmd(g),
		withAliases(networkLsCmd(g), "ls", "list"),
		networkInspectCmd(g),
		withAliases(networkRmCmd(g), "rm", "remove"),
		networkConnectCmd(g),
		networkDisconnectCmd(g),
		networkPruneCmd(g),
	)
	return []*cobra.Command{network}
}

func networkCreateCmd(g *globals) *cobra.Command {
	var driver, subnet, gateway string
	var labels []string
	var internal, attachable, ipv6 bool
	c := &cobra.Command{
		Use:   "create [OPTIONS] NETWORK",
		Short: "Create a network",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if ipv6 {
				return fmt.Errorf("--ipv6: %w", berth.ErrNotSupported)
			}
			opts := []berth.NetworkOption{berth.WithNetworkDriver(driver), berth.WithSubnet(subnet), berth.WithGateway(gateway)}
			if internal {
				opts = append(opts, berth.WithInternal())
			}
			if len(labels) > 0 {
				l := map[string]string{}
				for _, s := range labels {
					k, v, err := berth.ParseLabel(s)
					if err != nil {
						return err
					}
					l[k] = v
				}
				opts = append(opts, berth.WithNetworkLabels(l))
			}
			ctx := cmd.Context()
			rt, err := g.open(ctx)
			if err != nil {
				return err
			}
			n, err := rt.CreateNetwork(ctx, args[0], opts...)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), n.ID())
			return nil
		},
	}
	fl := c.Flags()
	fl.StringVarP(&driver, "driver", "d", "bridge", "Driver to manage the Network")
	fl.StringVar(&subnet, "subnet", "", "Subnet in CIDR format that represents a network segment")
	fl.StringVar(&gateway, "gateway", "", "IPv4 Gateway for the master subnet")
	fl.StringArrayVar(&labels, "label", nil, "Set metadata on a network")
	fl.BoolVar(&internal, "internal", false, "Restrict external access to the network")
	fl.BoolVar(&attachable, "attachable", false, "Enable manual container attachment (always on)")
	fl.BoolVar(&ipv6, "ipv6", false, "Enable IPv6 networking (not supported)")
	return c
}

// networkRow is one line of `network ls`; its fields are the --format
// names.
type networkRow struct {
	ID        string
	Name      string
	Driver    string
	Scope     string
	IPv6      string
	Internal  string
	Labels    string
	CreatedAt string

	labels map[string]string
}

// Label is the value of one label, for --format '{{.Label "key"}}'.
func (r networkRow) Label(name string) string { return r.labels[name] }

var networksTable = table{
	def: "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}",
	headers: map[string]string{"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE", "IPv6": "IPV6",
		"Internal": "INTERNAL", "Labels": "LABELS", "CreatedAt": "CREATED AT"},
}

func networkLsCmd(g *globals) *cobra.Command {
	var quiet, noTrunc bool
	var format string
	var filters []string
	c := &cobra.Command{
		Use:   "network [OPTIONS]",
		Short: "List networks",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			rt, err := g.open(ctx)
			if err != nil {
				return err
			}
			nets, err := rt.Networks(ctx, filters...)
			if err != nil {
				return err
			}
			var rows []any
			for _, n := range nets {
				id := n.ID()
				if !noTrunc {
					id = shortID(id)
				}
				var ls []string
				for _, k := range slices.Sorted(maps.Keys(n.Labels())) {
					ls = append(ls, k+"="+n.Labels()[k])
				}
				rows = append(rows, networkRow{ID: id, Name: n.Name(), Driver: n.Driver(), Scope: "local", IPv6: "false",
					Internal: fmt.Sprint(n.Internal()), Labels: strings.Join(ls, ","),
					CreatedAt: n.Created().Local().Format("2006-01-02 15:04:05.999999999 -0700 MST"), labels: n.Labels()})
			}
			if quiet {
				format = "{{.ID}}"
			}
			return networksTable.print(cmd.OutOrStdout(), format, rows)
		},
	}
	fl := c.Flags()
	fl.BoolVarP(&quiet, "quiet", "q", false, "Only display network IDs")
	fl.BoolVar(&noTrunc, "no-trunc", false, "Do not truncate the output")
	fl.StringVar(&format, "format", "", "Format output using a custom template ('table', 'table TEMPLATE', 'json' or a Go template)")
	fl.StringArrayVarP(&filters, "filter", "f", nil, "Provide filter values (e.g. 'driver=bridge', 'name=NAME', 'label=KEY[=VALUE]', 'type=custom')")
	return c
}

func networkInspectCmd(g *globals) *cobra.Command {
	return nounInspectCmd(g, "NETWORK", "networks", func(ctx context.Context, rt *berth.Runtime, name string) (any, error) {
		n, err := rt.Network(ctx, name)
		if err != nil {
			return nil, err
		}
		return n.Inspect(ctx)
	})
}

func networkRmCmd(g *globals) *cobra.Command {
	var force bool
	c := &cobra.Command{
		Use:   "network [OPTIONS] NETWORK [NETWORK...]",
		Short: "Remove one or more networks",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			rt, err := g.open(ctx)
			if err != nil {
				return err
			}
			var errs []error
			for _, a := range args {
				n, err := rt.Network(ctx, a)
				if err == nil {
					err = n.Remove(ctx)
				}
				if err != nil {
					if !(force && errors.Is(err, berth.ErrNotFound)) {
						errs = append(errs, err)
					}
					continue
				}
				fmt.Fprintln(cmd.OutOrStdout(), a)
			}
			return errors.Join(errs...)
		},
	}
	c.Flags().BoolVarP(&force, "force", "f", false, "Do not error if the network does not exist")
	return c
}

func networkConnectCmd(g *globals) *cobra.Command {
	var aliases []string
	var ip string
	c := &cobra.Command{
		Use:   "connect [OPTIONS] NETWORK CONTAINER",
		Short: "Connect a container to a network",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			rt, err := g.open(ctx)
			if err != nil {
				return err
			}
			ctr, err := rt.Container(ctx, args[1])
			if err != nil {
				return err
			}
			opts := []berth.ConnectOption{berth.WithNetworkAliases(aliases...)}
			if ip != "" {
				opts = append(opts, berth.WithNetworkIP(ip))
			}
			return ctr.Connect(ctx, args[0], opts...)
		},
	}
	c.Flags().StringArrayVar(&aliases, "alias", nil, "Add network-scoped alias for the container")
	c.Flags().StringVar(&ip, "ip", "", "IPv4 address (e.g., 172.30.100.104)")
	return c
}

func networkDisconnectCmd(g *globals) *cobra.Command {
	var force bool
	c := &cobra.Command{
		Use:   "disconnect [OPTIONS] NETWORK CONTAINER",
		Short: "Disconnect a container from a network",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			rt, err := g.open(ctx)
			if err != nil {
				return err
			}
			ctr, err := rt.Container(ctx, args[1])
			if err != nil {
				return err
			}
			return ctr.Disconnect(ctx, args[0], force)
		},
	}
	c.Flags().BoolVarP(&force, "force", "f", false, "Force the container to disconnect from a network")
	return c
}

func networkPruneCmd(g *globals) *cobra.Command {
	var force bool
	var filters []string
	c := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove all unused networks",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if !force && !confirm(cmd, "WARNING! This will remove all custom networks not used by at least one container.") {
				return nil
			}
			rt, err := g.open(ctx)
			if err != nil {
				return err
			}
			names, err := rt.PruneNetworks(ctx, filters...)
			if len(names) > 0 {
				w := cmd.OutOrStdout()
				fmt.Fprintln(w, "Deleted Networks:")
				for _, n := range names {
					fmt.Fprintln(w, n)
				}
			}
			return err
		},
	}
	c.Flags().BoolVarP(&force, "force", "f", false, "Do not prompt for confirmation")
	c.Flags().StringArrayVar(&filters, "filter", nil, "Provide filter values (e.g. 'until=<timestamp>', 'label=<key>=<value>', 'label!=<key>')")
	return c
}
