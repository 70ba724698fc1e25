package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth-run/berth"
)

// splitCpArg splits a cp argument into a container and a path, as
// docker: an absolute path, or one starting with ".", is local even with
// a colon in it.
func splitCpArg(arg string) (string, string) {
	if filepath.IsAbs(arg) {
		return "", arg
	}
	ctr, p, ok := strings.Cut(arg, ":")
	if !ok || strings.HasPrefix(ctr, ".") {
		return "", arg
	}
	return ctr, p
}

func cpCmd(g *globals) *cobra.Command {
	var archive, followLink, quiet bool
	c := &cobra.Command{
		Use:   "cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n  berth cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH",
		Short: "Copy files/folders between a container and the local filesystem",
		Long: `Copy files/folders between a container and the local filesystem

Use '-' as the source to read a tar archive from stdin and extract it to a
directory destination in a container. Use '-' as the destination to stream
a tar archive of a container source to stdout.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if args[0] == "" {
				return errors.New("source can not be empty")
			}
			if args[1] == "" {
				return errors.New("destination can not be empty")
			}
			srcCtr, src := splitCpArg(args[0])
			dstCtr, dst := splitCpArg(args[1])
			switch {
			case srcCtr != "" && dstCtr != "":
				return errors.New("copying between containers is not supported")
			case srcCtr == "" && dstCtr == "":
				return errors.New("must specify at least one container source")
			}
			var opts []berth.CopyOption
			if archive {
				opts = append(opts, berth.CopyArchive())
			}
			if followLink {
				opts = append(opts, berth.CopyFollowLink())
			}
			if srcCtr != "" {
				c, err := g.container(cmd, srcCtr)
				if err != nil {
					return err
				}
				if dst == "-" {
					rc, _, err := c.CopyFrom(ctx, src)
					if err != nil {
						return err
					}
					defer rc.Close()
					_, err = io.Copy(cmd.OutOrStdout(), rc)
					return err
				}
				return c.CopyOut(ctx, src, dst, opts...)
			}
			c, err := g.container(cmd, dstCtr)
			if err != nil {
				return err
			}
			if src == "-" {
				st, err := c.StatPath(ctx, dst)
				if err != nil {
					return err
				}
				if !st.Mode.IsDir() && st.Mode&os.ModeSymlink == 0 {
					return fmt.Errorf("destination \"%s:%s\" must be a directory", dstCtr, dst)
				}
				return c.CopyTo(ctx, dst, cmd.InOrStdin())
			}
			return c.CopyIn(ctx, src, dst, opts...)
		},
	}
	fl := c.Flags()
	fl.BoolVarP(&archive, "archive", "a", false, "Archive mode (copy all uid/gid information)")
	fl.BoolVarP(&followLink, "follow-link", "L", false, "Always follow symbol link in SRC_PATH")
	fl.BoolVarP(&quiet, "quiet", "q", false, "Suppress progress output during copy (berth prints none)")
	return c
}
