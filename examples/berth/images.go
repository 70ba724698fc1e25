package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth-run/berth"
)

// imageCommands returns images, image (ls, rm, inspect, history, prune,
// import, load, save, tag), import, load, save, tag, rmi and history.
func imageCommands(g *globals) []*cobra.Command {
	image := &cobra.Command{Use: "image", Short: "Manage images"}
	image.AddCommand(
		withAliases(imagesCmd(g), "ls", "list"),
		withAliases(rmiCmd(g), "rm", "remove"),
		imageInspectCmd(g),
		historyCmd(g),
		imagePruneCmd(g),
		importCmd(g),
		loadCmd(g),
		saveCmd(g),
		tagCmd(g),
	)
	return []*cobra.Command{image, imagesCmd(g), rmiCmd(g), historyCmd(g), importCmd(g), loadCmd(g), saveCmd(g), tagCmd(g)}
}

// withAliases renames a command for use as a subcommand ("image ls").
func withAliases(c *cobra.Command, name string, aliases ...string) *cobra.Command {
	c.Use = name + strings.TrimPrefix(c.Use, strings.Fields(c.Use)[0])
	c.Aliases = aliases
	return c
}

// imageRow is one line of `images`; its fields are the --format names.
type imageRow struct {
	ID           string
	Repository   string
	Tag          string
	Digest       string
	CreatedSince string
	CreatedAt    string
	Size         string
	Containers   string
	SharedSize   string
	UniqueSize   string
	VirtualSize  string
}

var imagesTable = table{
	def: "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}",
	headers: map[string]string{"ID": "IMAGE ID", "Repository": "REPOSITORY", "Tag": "TAG", "Digest": "DIGEST",
		"CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE", "Containers": "CONTAINERS",
		"SharedSize": "SHARED SIZE", "UniqueSize": "UNIQUE SIZE", "VirtualSize": "VIRTUAL SIZE"},
}

func imagesCmd(g *globals) *cobra.Command {
	var all, quiet, noTrunc, digests bool
	var format string
	var filters []string
	c := &cobra.Command{
		Use:   "images [OPTIONS] [REPOSITORY[:TAG]]",
		Short: "List images",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			rt, err := g.open(ctx)
			if err != nil {
				return err
			}
			f, err := parseImageFilters(filters)
			if err != nil {
				return err
			}
			if len(args) == 1 {
				f.reference = append(f.reference, args[0])
			}
			images, err := rt.Images(ctx)
			if err != nil {
				return err
			}
			var rows []any
			for _, im := range images {
				if !f.match(im) {
					continue
				}
				id := im.ID()
				if !noTrunc {
					id = shortID(id)
				}
				base := imageRow{ID: id, CreatedSince: since(im.Created()), CreatedAt: im.Created().Local().Format("2006-01-02 15:04:05 -0700 MST"),
					Size: humanSize(im.Size()), VirtualSize: humanSize(im.Size()), Containers: "N/A", SharedSize: "N/A", UniqueSize: "N/A", Digest: "<none>"}
				tags := im.Tags()
				if len(tags) == 0 {
					r := base
					r.Repository, r.Tag = "<none>", "<none>"
					if ds := im.RepoDigests(); len(ds) > 0 {
						r.Repository, r.Digest, _ = strings.Cut(ds[0], "@")
					}
					if f.matchRef(r.Repository, r.Tag) {
						rows = append(rows, r)
					}
					continue
				}
				for _, t := range tags {
					r := base
					r.Repository, r.Tag = splitTag(t)
					for _, d := range im.RepoDigests() {
						if repo, dg, _ := strings.Cut(d, "@"); repo == r.Repository {
							r.Digest = dg
						}
					}
					if f.matchRef(r.Repository, r.Tag) {
						rows = append(rows, r)
					}
				}
			}
			switch {
			case quiet:
				format = "{{.ID}}"
			case format == "" && digests:
				format = "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
			}
			_ = all // berth stores no intermediate images: -a lists the same
			return imagesTable.print(cmd.OutOrStdout(), format, rows)
		},
	}
	fl := c.Flags()
	fl.BoolVarP(&all, "all", "a", false, "Show all images (default hides intermediate images)")
	fl.BoolVarP(&quiet, "quiet", "q", false, "Only show image IDs")
	fl.BoolVar(&noTrunc, "no-trunc", false, "Don't truncate output")
	fl.BoolVar(&digests, "digests", false, "Show digests")
	fl.StringVar(&format, "format", "", "Format output using a custom template ('table', 'table TEMPLATE', 'json' or a Go template)")
	fl.StringArrayVarP(&filters, "filter", "f", nil, "Filter output based on conditions provided (dangling=true|false, reference=PATTERN, label=KEY[=VALUE], before=IMAGE, since=IMAGE)")
	return c
}

// splitTag splits "repo:tag" at the tag's colon (not a registry port's).
func splitTag(s string) (string, string) {
	i := strings.LastIndex(s, ":")
	if i < 0 || strings.Contains(s[i:], "/") {
		return s, "<none>"
	}
	return s[:i], s[i+1:]
}

type imageFilter struct {
	dangling  *bool
	reference []string
	labels    []string
	before    string
	since     string
}

func parseImageFilters(fs []string) (*imageFilter, error) {
	f := &imageFilter{}
	for _, s := range fs {
		k, v, ok := strings.Cut(s, "=")
		if !ok {
			return nil, fmt.Errorf("bad format of filter (expected name=value): %s", s)
		}
		switch k {
		case "dangling":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return nil, fmt.Errorf("invalid filter 'dangling=%s'", v)
			}
			f.dangling = &b
		case "reference":
			f.reference = append(f.reference, v)
		case "label":
			f.labels = append(f.labels, v)
		case "before":
			f.before = v
		case "since":
			f.since = v
		default:
			return nil, fmt.Errorf("invalid filter '%s'", k)
		}
	}
	return f, nil
}

func (f *imageFilter) match(im *berth.Image) bool {
	if f.dangling != nil && im.Dangling() != *f.dangling {
		return false
	}
	labels := im.Config().Config.Labels
	for _, l := range f.labels {
		k, v, hasV := strings.Cut(l, "=")
		got, ok := labels[k]
		if !ok || (hasV && got != v) {
			return false
		}
	}
	return true
}

// matchRef applies reference filters (and the REPOSITORY[:TAG] argument)
// with docker's glob matching on the familiar name.
func (f *imageFilter) matchRef(repo, tag string) bool {
	if len(f.reference) == 0 {
		return true
	}
	for _, pat := range f.reference {
		name := repo
		if strings.Contains(pat[strings.LastIndex(pat, "/")+1:], ":") {
			name = repo + ":" + tag
		}
		if ok, _ := path.Match(pat, name); ok {
			return true
		}
	}
	return false
}

func rmiCmd(g *globals) *cobra.Command {
	var force, noPrune bool
	c := &cobra.Command{
		Use:   "rmi [OPTIONS] IMAGE [IMAGE...]",
		Short: "Remove one or more images",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			rt, err := g.open(ctx)
			if err != nil {
				return err
			}
			var failed []error
			for _, a := range args {
				reps, err := rt.RemoveImage(ctx, a, berth.WithForce(force))
				if err != nil {
					fmt.Fprintln(cmd.ErrOrStderr(), "Error:", err)
					failed = append(failed, err)
					continue
				}
				printRemoveReports(cmd.OutOrStdout(), reps)
			}
			if len(failed) > 0 {
				return exitError{code: 1}
			}
			return nil
		},
	}
	c.Flags().BoolVarP(&force, "force", "f", false, "Force removal of the image")
	c.Flags().BoolVar(&noPrune, "no-prune", false, "Do not delete untagged parents (accepted; berth has no parent images)")
	return c
}

func printRemoveReports(w io.Writer, reps []berth.RemoveReport) {
	for _, r := range reps {
		if r.Untagged != "" {
			fmt.Fprintln(w, "Untagged:", r.Untagged)
		}
		if r.Deleted != "" {
			fmt.Fprintln(w, "Deleted:", r.Deleted)
		}
	}
}

func imageInspectCmd(g *globals) *cobra.Command {
	return nounInspectCmd(g, "IMAGE", "images", func(ctx context.Context, rt *berth.Runtime, name string) (any, error) {
		im, err := rt.Image(ctx, name)
		if err != nil {
			return nil, err
		}
		return im.Inspect(), nil
	})
}

// nounInspectCmd is `NOUN inspect [-f FORMAT] NAME...` for one kind of
// object: lookup finds one and returns its docker-shaped description.
func nounInspectCmd(g *globals, arg, plural string, lookup func(context.Context, *berth.Runtime, string) (any, error)) *cobra.Command {
	var format string
	c := &cobra.Command{
		Use:   "inspect [OPTIONS] " + arg + " [" + arg + "...]",
		Short: "Display detailed information on one or more " + plural,
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			rt, err := g.open(ctx)
			if err != nil {
				return err
			}
			var objs []any
			for _, a := range args {
				obj, err := lookup(ctx, rt, a)
				if err != nil {
					return err
				}
				objs = append(objs, obj)
			}
			return printInspect(cmd.OutOrStdout(), format, objs)
		},
	}
	c.Flags().StringVarP(&format, "format", "f", "", "Format output using a custom template")
	return c
}

// printInspect prints inspect results: a JSON array, or each object
// through a --format template.
func printInspect(w io.Writer, format string, objs []any) error {
	if format == "" || format == "json" {
		return writeJSON(w, objs)
	}
	for _, o := range objs {
		// As docker: the typed object first, then its JSON document, so
		// that both {{.Config.Cmd}} and {{.Id}} work.
		if err := printTemplate(w, format, o); err != nil {
			v, jerr := jsonValue(o)
			if jerr != nil {
				return err
			}
			if err := printTemplate(w, format, v); err != nil {
				return err
			}
		}
	}
	return nil
}

type historyRow struct {
	ID           string
	CreatedSince string
	CreatedAt    string
	CreatedBy    string
	Size         string
	Comment      string
}

var historyTable = table{
	def: "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}",
	headers: map[string]string{"ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT",
		"CreatedBy": "CREATED BY", "Size": "SIZE", "Comment": "COMMENT"},
}

func historyCmd(g *globals) *cobra.Command {
	var quiet, noTrunc, human bool
	var format string
	c := &cobra.Command{
		Use:   "history [OPTIONS] IMAGE",
		Short: "Show the history of an image",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			rt, err := g.open(ctx)
			if err != nil {
				return err
			}
			im, err := rt.Image(ctx, args[0])
			if err != nil {
				return err
			}
			var rows []any
			for _, h := range im.History() {
				id := h.ID
				if !noTrunc && id != "<missing>" {
					id = shortID(id)
				}
				if quiet {
					fmt.Fprintln(cmd.OutOrStdout(), id)
					continue
				}
				by := strings.ReplaceAll(h.CreatedBy, "\t", " ")
				if !noTrunc {
					by = ellipsisWidth(by, 45) // by display width, as docker
				}
				size := humanSize(h.Size)
				created := since(h.Created)
				if !human {
					size = strconv.FormatInt(h.Size, 10)
					created = h.Created.Format("2006-01-02T15:04:05Z07:00")
				}
				rows = append(rows, historyRow{ID: id, CreatedSince: created, CreatedAt: h.Created.Format("2006-01-02T15:04:05Z07:00"),
					CreatedBy: by, Size: size, Comment: h.Comment})
			}
			if quiet {
				return nil
			}
			return historyTable.print(cmd.OutOrStdout(), format, rows)
		},
	}
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "Only show image IDs")
	c.Flags().BoolVar(&noTrunc, "no-trunc", false, "Don't truncate output")
	c.Flags().BoolVarP(&human, "human", "H", true, "Print sizes and dates in human readable format")
	c.Flags().StringVar(&format, "format", "", "Format output using a custom template")
	return c
}

func imagePruneCmd(g *globals) *cobra.Command {
	var all, force bool
	var filters []string
	c := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove unused images",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if !force && !confirm(cmd, pruneWarning(all)) {
				return nil
			}
			rt, err := g.open(ctx)
			if err != nil {
				return err
			}
			reps, reclaimed, err := rt.PruneImages(ctx, all)
			printSection(cmd.OutOrStdout(), "Deleted Images:", pruneImageLines(reps)) // prune.go: docker's lower-case lines
			fmt.Fprintln(cmd.OutOrStdout(), "Total reclaimed space:", humanSize(reclaimed))
			return err
		},
	}
	c.Flags().BoolVarP(&all, "all", "a", false, "Remove all unused images, not just dangling ones")
	c.Flags().BoolVarP(&force, "force", "f", false, "Do not prompt for confirmation")
	c.Flags().StringArrayVar(&filters, "filter", nil, "Provide filter values (accepted, not applied yet)")
	return c
}

func pruneWarning(all bool) string {
	if all {
		return "WARNING! This will remove all images without at least one container associated to them."
	}
	return "WARNING! This will remove all dangling images."
}

// confirm asks the user to go on, as docker's prune commands do.
func confirm(cmd *cobra.Command, warning string) bool {
	fmt.Fprintf(cmd.OutOrStdout(), "%s\nAre you sure you want to continue? [y/N] ", warning)
	var answer string
	fmt.Fscanln(cmd.InOrStdin(), &answer)
	return strings.EqualFold(answer, "y") || strings.EqualFold(answer, "yes")
}

func importCmd(g *globals) *cobra.Command {
	var changes []string
	var message, platform string
	c := &cobra.Command{
		Use:   "import [OPTIONS] file|-  [REPOSITORY[:TAG]]",
		Short: "Import the contents from a tarball to create a filesystem image",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			rt, err := g.open(ctx)
			if err != nil {
				return err
			}
			var in io.Reader = cmd.InOrStdin()
			if args[0] != "-" {
				f, err := os.Open(args[0])
				if err != nil {
					return err
				}
				defer f.Close()
				in = f
			}
			ref := ""
			if len(args) == 2 {
				ref = args[1]
			}
			im, err := rt.Import(ctx, in, ref, berth.WithChanges(changes...), berth.WithMessage(message), berth.WithSource(args[0]))
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), im.ID())
			return nil
		},
	}
	c.Flags().StringArrayVarP(&changes, "change", "c", nil, "Apply Dockerfile instruction to the created image")
	c.Flags().StringVarP(&message, "message", "m", "", "Set commit message for imported image")
	c.Flags().StringVar(&platform, "platform", "", "Set platform if server is multi-platform capable (accepted: linux only)")
	return c
}

func loadCmd(g *globals) *cobra.Command {
	var input string
	var quiet bool
	c := &cobra.Command{
		Use:   "load [OPTIONS]",
		Short: "Load an image from a tar archive or STDIN",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			rt, err := g.open(ctx)
			if err != nil {
				return err
			}
			var in io.Reader = cmd.InOrStdin()
			if input != "" {
				f, err := os.Open(input)
				if err != nil {
					return err
				}
				defer f.Close()
				in = f
			}
			loaded, err := rt.Load(ctx, in)
			if err != nil {
				return err
			}
			for _, li := range loaded {
				if len(li.Names) == 0 {
					fmt.Fprintln(cmd.OutOrStdout(), "Loaded image ID:", li.ID())
				}
				for _, n := range li.Names {
					fmt.Fprintln(cmd.OutOrStdout(), "Loaded image:", n)
				}
			}
			return nil
		},
	}
	c.Flags().StringVarP(&input, "input", "i", "", "Read from tar archive file, instead of STDIN")
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "Suppress the load output")
	return c
}

func saveCmd(g *globals) *cobra.Command {
	var output, format string
	c := &cobra.Command{
		Use:   "save [OPTIONS] IMAGE [IMAGE...]",
		Short: "Save one or more images to a tar archive (streamed to STDOUT by default)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			rt, err := g.open(ctx)
			if err != nil {
				return err
			}
			if err := refuseTerminal(cmd, output); err != nil {
				return err
			}
			// Resolve every image first so a typo writes no file.
			for _, a := range args {
				if _, err := rt.Image(ctx, a); err != nil {
					return err
				}
			}
			return writeArchive(cmd, output, func(w io.Writer) error {
				return rt.Save(ctx, w, args, berth.WithFormat(berth.ArchiveFormat(format)))
			})
		},
	}
	c.Flags().StringVarP(&output, "output", "o", "", "Write to a file, instead of STDOUT")
	c.Flags().StringVar(&format, "format", string(berth.DockerArchive), "Archive format: docker-archive or oci-archive")
	return c
}

func tagCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]",
		Short: "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			rt, err := g.open(ctx)
			if err != nil {
				return err
			}
			return rt.Tag(ctx, args[0], args[1])
		},
	}
}

// open opens the store the global flags name.
func (g *globals) open(ctx context.Context) (*berth.Runtime, error) {
	if g.rt != nil {
		return g.rt, nil
	}
	// Each command is a process of its own that exits when done.
	opts := []berth.Option{berth.WithShortLivedProcess()}
	if g.root != "" {
		opts = append(opts, berth.WithRoot(g.root))
	}
	if g.runRoot != "" {
		opts = append(opts, berth.WithRunRoot(g.runRoot))
	}
	rt, err := berth.Open(ctx, opts...)
	if err != nil {
		return nil, err
	}
	g.rt = rt
	return rt, nil
}
