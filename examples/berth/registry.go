package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/berth-run/berth"
)

// registryCommands returns pull, push, login, logout and search.
func registryCommands(g *globals) []*cobra.Command {
	image := []*cobra.Command{pullCmd(g), pushCmd(g)}
	return append(image, loginCmd(g), logoutCmd(g), searchCmd(g))
}

func pullCmd(g *globals) *cobra.Command {
	var allTags, quiet bool
	var platform string
	c := &cobra.Command{
		Use:   "pull [OPTIONS] NAME[:TAG|@DIGEST]",
		Short: "Download an image from a registry",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			rt, err := g.open(ctx)
			if err != nil {
				return err
			}
			ref, err := berth.ParseReference(args[0])
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			var opts []berth.RegistryOption
			if platform != "" {
				opts = append(opts, berth.WithPlatform(platform))
			}
			if !allTags {
				if ref.DefaultTag && !quiet {
					fmt.Fprintln(out, "Using default tag: latest")
				}
				_, err := pullOne(ctx, rt, out, ref, quiet, true, opts)
				return err
			}
			if !ref.DefaultTag {
				return errors.New("tag can't be used with --all-tags/-a")
			}
			tags, err := rt.RemoteTags(ctx, ref.Name(), opts...)
			if err != nil {
				return err
			}
			sort.Strings(tags)
			changed := false
			for _, tag := range tags {
				tref, err := berth.ParseReference(ref.Name() + ":" + tag)
				if err != nil {
					return err
				}
				newer, err := pullOne(ctx, rt, out, tref, quiet, false, opts)
				if err != nil {
					return err
				}
				changed = changed || newer
			}
			if !quiet {
				if changed {
					fmt.Fprintln(out, "Status: Downloaded newer image for "+ref.FamiliarName())
				} else {
					fmt.Fprintln(out, "Status: Image is up to date for "+ref.FamiliarName())
				}
			}
			fmt.Fprintln(out, ref.Name())
			return nil
		},
	}
	fl := c.Flags()
	fl.BoolVarP(&allTags, "all-tags", "a", false, "Download all tagged images in the repository")
	fl.StringVar(&platform, "platform", "", "Set platform if server is multi-platform capable (os/arch[/variant])")
	fl.BoolVarP(&quiet, "quiet", "q", false, "Suppress verbose output")
	return c
}

// pullOne pulls ref and prints docker's lines: the layers' progress and
// the digest, then (with final) the status and the full name; only the
// name with quiet. It reports whether the image changed.
func pullOne(ctx context.Context, rt *berth.Runtime, out io.Writer, ref berth.Reference, quiet, final bool, opts []berth.RegistryOption) (bool, error) {
	var beforeID string
	if before, err := rt.Image(ctx, ref.String()); err == nil {
		beforeID = before.ID()
	}
	var bars *progressBars
	if !quiet {
		id := ref.Tag
		if ref.Digest != "" {
			id = ref.Digest.String()
		}
		fmt.Fprintf(out, "%s: Pulling from %s\n", id, ref.Path)
		bars = newProgressBars(out)
		opts = append(opts, berth.WithProgress(bars.update))
	}
	im, err := rt.Pull(ctx, ref.String(), opts...)
	if err != nil {
		return false, err
	}
	changed := beforeID != im.ID()
	if !quiet {
		for _, rd := range im.RepoDigests() {
			if repo, d, _ := strings.Cut(rd, "@"); repo == ref.FamiliarName() {
				fmt.Fprintln(out, "Digest: "+d)
				break
			}
		}
		if final && changed {
			fmt.Fprintln(out, "Status: Downloaded newer image for "+ref.Familiar())
		} else if final {
			fmt.Fprintln(out, "Status: Image is up to date for "+ref.Familiar())
		}
	}
	if final {
		fmt.Fprintln(out, ref.String())
	}
	return changed, nil
}

func pushCmd(g *globals) *cobra.Command {
	var allTags, quiet bool
	c := &cobra.Command{
		Use:   "push [OPTIONS] NAME[:TAG]",
		Short: "Upload an image to a registry",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			rt, err := g.open(ctx)
			if err != nil {
				return err
			}
			ref, err := berth.ParseReference(args[0])
			if err != nil {
				return err
			}
			if ref.Digest != "" {
				return fmt.Errorf("cannot push a digest reference")
			}
			out := cmd.OutOrStdout()
			names := []string{ref.String()}
			if allTags {
				if !ref.DefaultTag {
					return errors.New("tag can't be used with --all-tags/-a")
				}
				if names, err = localTags(ctx, rt, ref); err != nil {
					return err
				}
			} else if ref.DefaultTag && !quiet {
				fmt.Fprintln(out, "Using default tag: latest")
			}
			if !quiet {
				fmt.Fprintf(out, "The push refers to repository [%s]\n", ref.Name())
			}
			for _, name := range names {
				var opts []berth.RegistryOption
				var bars *progressBars
				if !quiet {
					bars = newProgressBars(out)
					opts = append(opts, berth.WithProgress(bars.update))
				}
				res, err := rt.Push(ctx, name, "", opts...)
				if err != nil {
					return err
				}
				if quiet {
					fmt.Fprintln(out, name)
				} else {
					fmt.Fprintf(out, "%s: digest: %s size: %d\n", res.Tag, res.Digest, res.Size)
				}
			}
			return nil
		},
	}
	fl := c.Flags()
	fl.BoolVarP(&allTags, "all-tags", "a", false, "Push all tags of an image to the repository")
	fl.BoolVarP(&quiet, "quiet", "q", false, "Suppress verbose output")
	return c
}

// localTags lists the stored tags of ref's repository, in full form.
func localTags(ctx context.Context, rt *berth.Runtime, ref berth.Reference) ([]string, error) {
	images, err := rt.Images(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, im := range images {
		for _, tag := range im.Tags() {
			if t, err := berth.ParseReference(tag); err == nil && t.Name() == ref.Name() {
				out = append(out, t.String())
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("an image does not exist locally with the tag: %s: %w", ref.FamiliarName(), berth.ErrNotFound)
	}
	sort.Strings(out)
	return out, nil
}

func loginCmd(g *globals) *cobra.Command {
	var user, password string
	var passwordStdin bool
	c := &cobra.Command{
		Use:   "login [OPTIONS] [SERVER]",
		Short: "Log in to a registry",
		Long:  "Log in to a registry. If no server is given, Docker Hub is used.",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			rt, err := g.open(ctx)
			if err != nil {
				return err
			}
			server := ""
			if len(args) == 1 {
				server = args[0]
			}
			in := bufio.NewReader(cmd.InOrStdin())
			errOut := cmd.ErrOrStderr()
			switch {
			case password != "" && passwordStdin:
				return errors.New("--password and --password-stdin are mutually exclusive")
			case passwordStdin:
				if user == "" {
					return errors.New("must provide --username with --password-stdin")
				}
				b, err := io.ReadAll(in)
				if err != nil {
					return err
				}
				password = strings.TrimRight(string(b), "\r\n")
			case password != "":
				fmt.Fprintln(errOut, "WARNING! Using --password via the CLI is insecure. Use --password-stdin.")
			}
			if user == "" {
				prompt := "Username: "
				if u := rt.LoggedInUser(server); u != "" {
					prompt = fmt.Sprintf("Username (%s): ", u)
					user = u
				}
				fmt.Fprint(cmd.OutOrStdout(), prompt)
				line, err := in.ReadString('\n')
				if err != nil && line == "" && user == "" {
					return errors.New("error: cannot read the username")
				}
				if l := strings.TrimSpace(line); l != "" {
					user = l
				}
			}
			if password == "" {
				fmt.Fprint(cmd.OutOrStdout(), "Password: ")
				if f, ok := cmd.InOrStdin().(*os.File); ok && isTerminal(f) {
					b, err := term.ReadPassword(int(f.Fd()))
					fmt.Fprintln(cmd.OutOrStdout())
					if err != nil {
						return err
					}
					password = string(b)
				} else {
					line, _ := in.ReadString('\n')
					password = strings.TrimRight(line, "\r\n")
				}
			}
			if user == "" || password == "" {
				return errors.New("error: username and password are required")
			}
			if err := rt.Login(ctx, server, user, password); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "Login Succeeded")
			return nil
		},
	}
	fl := c.Flags()
	fl.StringVarP(&user, "username", "u", "", "Username")
	fl.StringVarP(&password, "password", "p", "", "Password")
	fl.BoolVar(&passwordStdin, "password-stdin", false, "Take the password from stdin")
	return c
}

func logoutCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "logout [SERVER]",
		Short: "Log out from a registry",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			rt, err := g.open(ctx)
			if err != nil {
				return err
			}
			server := ""
			if len(args) == 1 {
				server = args[0]
			}
			name, err := berth.LoginServer(server)
			if err != nil {
				return err
			}
			err = rt.Logout(ctx, server)
			if errors.Is(err, berth.ErrNotFound) {
				fmt.Fprintf(cmd.OutOrStdout(), "Not logged in to %s\n", name)
				return nil
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Removing login credentials for %s\n", name)
			return nil
		},
	}
}

// searchRow is one line of `search`; its fields are the --format names.
type searchRow struct {
	Name        string
	Description string
	StarCount   int
	IsOfficial  string
	IsAutomated string
}

var searchTable = table{
	def:     "table {{.Name}}\t{{.Description}}\t{{.StarCount}}\t{{.IsOfficial}}",
	headers: map[string]string{"Name": "NAME", "Description": "DESCRIPTION", "StarCount": "STARS", "IsOfficial": "OFFICIAL", "IsAutomated": "AUTOMATED"},
}

func searchCmd(g *globals) *cobra.Command {
	var filters []string
	var format string
	var limit int
	var noTrunc bool
	c := &cobra.Command{
		Use:   "search [OPTIONS] TERM",
		Short: "Search for images (Docker Hub, or REGISTRY/TERM in a registry's catalog)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			rt, err := g.open(ctx)
			if err != nil {
				return err
			}
			found, err := rt.Search(ctx, args[0], berth.WithSearchLimit(limit), berth.WithSearchFilter(filters...))
			if err != nil {
				return err
			}
			var rows []any
			for _, r := range found {
				desc := strings.ReplaceAll(r.Description, "\n", " ")
				if !noTrunc {
					desc = ellipsis(desc, 45)
				}
				row := searchRow{Name: r.Name, Description: desc, StarCount: r.StarCount}
				if r.IsOfficial {
					row.IsOfficial = "[OK]"
				}
				if r.IsAutomated {
					row.IsAutomated = "[OK]"
				}
				rows = append(rows, row)
			}
			return searchTable.print(cmd.OutOrStdout(), format, rows)
		},
	}
	fl := c.Flags()
	fl.StringArrayVarP(&filters, "filter", "f", nil, "Filter output based on conditions provided (stars=N, is-official=true|false)")
	fl.StringVar(&format, "format", "", "Pretty-print search using a Go template")
	fl.IntVar(&limit, "limit", 25, "Max number of search results")
	fl.BoolVar(&noTrunc, "no-trunc", false, "Don't truncate output")
	return c
}

// ellipsis cuts s to n runes, ending in "…", as docker's search does.
func ellipsis(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
