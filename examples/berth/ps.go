package main

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/berth-run/berth"
)

// psRow is one line of `ps`; its fields are the --format names.
type psRow struct {
	ID, Image, Command, CreatedAt, RunningFor, Ports, State, Status, Size, Names, Labels, Mounts, Networks string

	labels map[string]string
}

// Label is the value of one label ({{.Label "key"}}).
func (r psRow) Label(name string) string { return r.labels[name] }

var psTable = table{
	def: "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}",
	headers: map[string]string{"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "CreatedAt": "CREATED AT",
		"RunningFor": "CREATED", "Ports": "PORTS", "State": "STATE", "Status": "STATUS", "Size": "SIZE", "Names": "NAMES",
		"Labels": "LABELS", "Mounts": "MOUNTS", "Networks": "NETWORKS"},
}

func psCmd(g *globals) *cobra.Command {
	var all, latest, quiet, noTrunc, size bool
	var last int
	var format string
	var filters []string
	c := &cobra.Command{
		Use:   "ps [OPTIONS]",
		Short: "List containers",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			var opts []berth.ListOption
			if !all {
				opts = append(opts, berth.ListRunning())
			}
			if latest {
				last = 1
			}
			if last > 0 {
				opts = append(opts, berth.ListLimit(last))
			}
			err := eachFilter(filters, func(k, v string) { opts = append(opts, berth.ListFilter(k, v)) })
			if err != nil {
				return err
			}
			rt, err := g.open(ctx)
			if err != nil {
				return err
			}
			cs, err := rt.Containers(ctx, opts...)
			if err != nil {
				return err
			}
			if format == "table" { // docker: the default table
				format = ""
			}
			if quiet {
				format = "{{.ID}}"
			} else if format == "" && size {
				format = psTable.def + "\t{{.Size}}"
			}
			rows := make([]any, 0, len(cs))
			for _, c := range cs {
				row, err := psRowOf(ctx, rt, c, !noTrunc, size || strings.Contains(format, ".Size"))
				if err != nil {
					continue // removed meanwhile
				}
				rows = append(rows, row)
			}
			return psTable.print(cmd.OutOrStdout(), format, rows)
		},
	}
	fl := c.Flags()
	fl.BoolVarP(&all, "all", "a", false, "Show all containers (default shows just running)")
	fl.BoolVarP(&latest, "latest", "l", false, "Show the latest created container (includes all states)")
	fl.IntVarP(&last, "last", "n", -1, "Show n last created containers (includes all states)")
	fl.BoolVarP(&quiet, "quiet", "q", false, "Only display container IDs")
	fl.BoolVar(&noTrunc, "no-trunc", false, "Don't truncate output")
	fl.BoolVarP(&size, "size", "s", false, "Display total file sizes")
	fl.StringVar(&format, "format", "", "Format output using a custom template ('table', 'table TEMPLATE', 'json' or a Go template)")
	fl.StringArrayVarP(&filters, "filter", "f", nil, "Filter output based on conditions provided (status, name, id, label, ancestor, exited, before, since)")
	return c
}

// eachFilter calls fn with the key and value of each --filter
// "key=value".
func eachFilter(filters []string, fn func(key, value string)) error {
	for _, f := range filters {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return fmt.Errorf("bad format of filter (expected name=value): %s", f)
		}
		fn(k, v)
	}
	return nil
}

// psRowOf renders a container as docker ps does.
func psRowOf(ctx context.Context, rt *berth.Runtime, c *berth.Container, trunc, size bool) (psRow, error) {
	st, err := c.State(ctx)
	if err != nil {
		return psRow{}, err
	}
	ports, err := c.Ports(ctx)
	if err != nil {
		return psRow{}, err
	}
	cmdline := c.CommandLine()
	id := c.ID()
	if trunc {
		id, cmdline = shortID(id), ellipsisWidth(cmdline, 20)
	}
	spec := c.Spec()
	labels := c.Labels()
	row := psRow{ID: id, Image: psImage(ctx, rt, c, trunc), Command: strconv.Quote(cmdline),
		CreatedAt: c.Created().Local().Format("2006-01-02 15:04:05 -0700 MST"), RunningFor: since(c.Created()),
		Ports: displayPorts(ports), State: st.Status, Status: statusString(st), Names: c.Name(),
		Labels: joinLabels(labels), Networks: spec.Network, labels: labels}
	if row.Networks == "" || row.Networks == "default" {
		row.Networks = "bridge"
	}
	var mounts []string
	for _, m := range spec.Mounts {
		if m.Type != berth.MountTypeTmpfs && m.Source != "" {
			name := m.Source
			if trunc {
				name = ellipsisWidth(name, 15)
			}
			mounts = append(mounts, name)
		}
	}
	row.Mounts = strings.Join(mounts, ",")
	if size {
		rw, rootfs, err := c.Size(ctx)
		if err != nil {
			return psRow{}, err
		}
		row.Size = humanSize(rw) + " (virtual " + humanSize(rootfs) + ")"
	}
	return row, nil
}

// psImage is the IMAGE column: the name the container was created with,
// if it still names the same image, else the image's ID.
func psImage(ctx context.Context, rt *berth.Runtime, c *berth.Container, trunc bool) string {
	name := c.ImageName()
	if im, err := rt.Image(ctx, name); err == nil && im.ID() == c.ImageID() {
		return name
	}
	if trunc {
		return shortID(c.ImageID())
	}
	return c.ImageID()
}

// statusString is docker's STATUS: "Up 3 seconds", "Up 5 seconds
// (Paused)", "Exited (0) 2 minutes ago", "Created", "Restarting (1) 3
// seconds ago", "Removal In Progress", "Dead".
func statusString(st berth.State) string {
	switch st.Status {
	case berth.StatusPaused:
		return "Up " + humanDuration(time.Since(st.StartedAt)) + " (Paused)"
	case berth.StatusRestarting:
		return fmt.Sprintf("Restarting (%d) %s ago", st.ExitCode, humanDuration(time.Since(st.FinishedAt)))
	case berth.StatusRunning:
		return "Up " + humanDuration(time.Since(st.StartedAt))
	case berth.StatusRemoving:
		return "Removal In Progress"
	case berth.StatusDead:
		return "Dead"
	}
	if st.StartedAt.IsZero() {
		return "Created"
	}
	if st.FinishedAt.IsZero() {
		return ""
	}
	return fmt.Sprintf("Exited (%d) %s ago", st.ExitCode, humanDuration(time.Since(st.FinishedAt)))
}

func joinLabels(labels map[string]string) string {
	out := make([]string, 0, len(labels))
	for k, v := range labels {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

// displayPorts is docker's PORTS column: "0.0.0.0:8080->80/tcp", with
// runs of ports published on the same numbers folded into ranges
// ("0.0.0.0:8000-8001->8000-8001/tcp").
func displayPorts(ports []berth.PortBinding) string {
	type group struct {
		ip, proto   string
		first, last uint16
	}
	var groups []*group
	var mappings, out []string
	for _, p := range ports {
		ip := p.HostIP
		if ip == "" {
			ip = "0.0.0.0"
		}
		if p.HostPort != p.ContainerPort {
			mappings = append(mappings, fmt.Sprintf("%s->%d/%s", net.JoinHostPort(ip, strconv.Itoa(int(p.HostPort))), p.ContainerPort, p.Protocol))
			continue
		}
		if n := len(groups); n > 0 {
			g := groups[n-1]
			if g.ip == ip && g.proto == p.Protocol && g.last+1 == p.ContainerPort {
				g.last = p.ContainerPort
				continue
			}
		}
		groups = append(groups, &group{ip: ip, proto: p.Protocol, first: p.ContainerPort, last: p.ContainerPort})
	}
	for _, g := range groups {
		r := strconv.Itoa(int(g.first))
		if g.last != g.first {
			r += "-" + strconv.Itoa(int(g.last))
		}
		out = append(out, fmt.Sprintf("%s->%s/%s", net.JoinHostPort(g.ip, r), r, g.proto))
	}
	return strings.Join(append(out, mappings...), ", ")
}

// ellipsisWidth cuts s to max display columns with "…" as the last, as
// docker's formatter does (East Asian wide characters take two columns).
func ellipsisWidth(s string, max int) string {
	width := 0
	for _, r := range s {
		width += runeWidth(r)
	}
	if width <= max {
		return s
	}
	width = 0
	for i, r := range s {
		if width+runeWidth(r) > max-1 {
			return s[:i] + "…"
		}
		width += runeWidth(r)
	}
	return s
}

// runeWidth is the number of terminal columns r takes.
func runeWidth(r rune) int {
	if r < utf8.RuneSelf {
		return 1
	}
	if unicode.Is(unicode.Han, r) || unicode.Is(unicode.Hangul, r) || unicode.Is(unicode.Hiragana, r) ||
		unicode.Is(unicode.Katakana, r) || r >= 0xFF01 && r <= 0xFF60 || r >= 0x3000 && r <= 0x303F {
		return 2
	}
	return 1
}

func portCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "port CONTAINER [PRIVATE_PORT[/PROTO]]",
		Short: "List port mappings or a specific mapping for the container",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, err := g.container(cmd, args[0])
			if err != nil {
				return err
			}
			ports, err := c.Ports(ctx)
			if err != nil {
				return err
			}
			return printPorts(cmd, c.Name(), ports, args[1:])
		},
	}
}

// printPorts prints docker port's output: "80/tcp -> 0.0.0.0:8080" per
// binding, or the host addresses of one private port.
func printPorts(cmd *cobra.Command, name string, ports []berth.PortBinding, filter []string) error {
	w := cmd.OutOrStdout()
	hostAddr := func(p berth.PortBinding) string {
		ip := p.HostIP
		if ip == "" {
			ip = "0.0.0.0"
		}
		return net.JoinHostPort(ip, strconv.Itoa(int(p.HostPort)))
	}
	if len(filter) == 0 {
		for _, p := range ports {
			fmt.Fprintf(w, "%d/%s -> %s\n", p.ContainerPort, p.Protocol, hostAddr(p))
		}
		return nil
	}
	port, proto, _ := strings.Cut(filter[0], "/")
	if proto == "" {
		proto = "tcp"
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 {
		return fmt.Errorf("invalid port %q", filter[0])
	}
	found := false
	for _, p := range ports {
		if p.ContainerPort == uint16(n) && p.Protocol == proto {
			fmt.Fprintln(w, hostAddr(p))
			found = true
		}
	}
	if !found {
		return fmt.Errorf("no public port '%d/%s' published for %s", n, proto, name)
	}
	return nil
}
