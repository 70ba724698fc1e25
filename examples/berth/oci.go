package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/cobra"

	"github.com/berth-run/berth/ociruntime"
)

// ociFlags are the global flags of `berth oci` (runc's).
type ociFlags struct {
	log       string
	logFormat string
	debug     bool
	systemd   bool
}

// ociCommands returns `berth oci ...`, the OCI runtime command line
// (runc-compatible create/start/state/kill/delete/run/exec over a bundle).
// Inside this group the global --root is the OCI state root (default
// /run/berth-oci), as runc's --root is.
func ociCommands(g *globals) []*cobra.Command {
	f := &ociFlags{}
	cmd := &cobra.Command{
		Use:   "oci",
		Short: "Run OCI bundles with berth's runtime (runc-compatible)",
	}
	cmd.PersistentFlags().StringVar(&f.log, "log", "", "append errors to this file")
	cmd.PersistentFlags().StringVar(&f.logFormat, "log-format", "text", "log format: text or json")
	cmd.PersistentFlags().BoolVar(&f.debug, "debug", false, "accepted for runc compatibility")
	cmd.PersistentFlags().BoolVar(&f.systemd, "systemd-cgroup", false, "accepted for runc compatibility (not supported)")
	rt := func() *ociruntime.Runtime { return ociruntime.New(g.root) }
	// Every verb logs its error to --log as well, then returns it.
	wrap := func(run func(cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, args []string) error {
			err := run(cmd, args)
			if err != nil {
				if _, ok := err.(exitError); !ok {
					f.logError(err)
				}
			}
			return err
		}
	}
	cmd.AddCommand(
		ociCreate(rt, wrap),
		ociRun(rt, wrap),
		&cobra.Command{
			Use: "start ID", Short: "Start a created container", Args: cobra.ExactArgs(1),
			RunE: wrap(func(cmd *cobra.Command, args []string) error {
				return rt().Start(cmd.Context(), args[0])
			}),
		},
		&cobra.Command{
			Use: "state ID", Short: "Print a container's OCI state", Args: cobra.ExactArgs(1),
			RunE: wrap(func(cmd *cobra.Command, args []string) error {
				st, err := rt().State(args[0])
				if err != nil {
					return err
				}
				return printJSON(st)
			}),
		},
		ociKill(rt, wrap),
		&cobra.Command{
			Use: "pause ID", Short: "Freeze every process of a container", Args: cobra.ExactArgs(1),
			RunE: wrap(func(cmd *cobra.Command, args []string) error {
				return rt().Pause(cmd.Context(), args[0])
			}),
		},
		&cobra.Command{
			Use: "resume ID", Short: "Thaw a paused container", Args: cobra.ExactArgs(1),
			RunE: wrap(func(cmd *cobra.Command, args []string) error {
				return rt().Resume(cmd.Context(), args[0])
			}),
		},
		ociDelete(rt, wrap),
		ociExec(rt, wrap),
		&cobra.Command{
			Use: "list", Aliases: []string{"ls"}, Short: "List containers", Args: cobra.NoArgs,
			RunE: wrap(func(cmd *cobra.Command, args []string) error {
				sts, err := rt().List()
				if err != nil {
					return err
				}
				fmt.Printf("%-24s %-8s %-10s %s\n", "ID", "PID", "STATUS", "BUNDLE")
				for _, s := range sts {
					fmt.Printf("%-24s %-8d %-10s %s\n", s.ID, s.Pid, s.Status, s.Bundle)
				}
				return nil
			}),
		},
		&cobra.Command{
			Use: "ps ID", Short: "List a container's processes", Args: cobra.ExactArgs(1),
			RunE: wrap(func(cmd *cobra.Command, args []string) error {
				pids, err := rt().Pids(args[0])
				if err != nil {
					return err
				}
				for _, p := range pids {
					fmt.Println(p)
				}
				return nil
			}),
		},
	)
	return []*cobra.Command{cmd}
}

func (f *ociFlags) logError(err error) {
	if f.log == "" {
		return
	}
	lf, oerr := os.OpenFile(f.log, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if oerr != nil {
		return
	}
	defer lf.Close()
	now := time.Now().UTC().Format(time.RFC3339Nano)
	if f.logFormat == "json" {
		b, _ := json.Marshal(map[string]string{"level": "error", "msg": err.Error(), "time": now})
		fmt.Fprintf(lf, "%s\n", b)
		return
	}
	fmt.Fprintf(lf, "time=%q level=error msg=%q\n", now, err.Error())
}

func printJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

type verbWrap func(func(*cobra.Command, []string) error) func(*cobra.Command, []string) error

// createFlags are the flags of create and run.
type createFlags struct {
	bundle, pidFile, consoleSocket string
	noPivot, noNewKeyring          bool
	preserveFds                    int
	detach                         bool
}

func (cf *createFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVarP(&cf.bundle, "bundle", "b", ".", "bundle directory")
	cmd.Flags().StringVar(&cf.pidFile, "pid-file", "", "write the init's pid to this file")
	cmd.Flags().StringVar(&cf.consoleSocket, "console-socket", "", "unix socket that receives the pty master")
	cmd.Flags().BoolVar(&cf.noPivot, "no-pivot", false, "use MS_MOVE and chroot instead of pivot_root")
	cmd.Flags().BoolVar(&cf.noNewKeyring, "no-new-keyring", false, "accepted for runc compatibility")
	cmd.Flags().IntVar(&cf.preserveFds, "preserve-fds", 0, "pass this many fds from 3 on to the process")
}

func (cf *createFlags) opts() ociruntime.CreateOpts {
	o := ociruntime.CreateOpts{
		Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr,
		ConsoleSocket: cf.consoleSocket, PidFile: cf.pidFile, NoPivot: cf.noPivot,
	}
	for i := 0; i < cf.preserveFds; i++ {
		o.ExtraFiles = append(o.ExtraFiles, os.NewFile(uintptr(3+i), "preserved-"+strconv.Itoa(3+i)))
	}
	return o
}

func ociCreate(rt func() *ociruntime.Runtime, wrap verbWrap) *cobra.Command {
	cf := &createFlags{}
	cmd := &cobra.Command{
		Use: "create [flags] ID", Short: "Create a container from a bundle", Args: cobra.ExactArgs(1),
		RunE: wrap(func(cmd *cobra.Command, args []string) error {
			return rt().Create(cmd.Context(), args[0], cf.bundle, cf.opts())
		}),
	}
	cf.add(cmd)
	return cmd
}

func ociRun(rt func() *ociruntime.Runtime, wrap verbWrap) *cobra.Command {
	cf := &createFlags{}
	cmd := &cobra.Command{
		Use: "run [flags] ID", Short: "Create, start and wait for a container", Args: cobra.ExactArgs(1),
		RunE: wrap(func(cmd *cobra.Command, args []string) error {
			code, err := rt().Run(cmd.Context(), args[0], cf.bundle, cf.opts(), cf.detach)
			if err != nil {
				return err
			}
			if code != 0 {
				return exitError{code: code}
			}
			return nil
		}),
	}
	cf.add(cmd)
	cmd.Flags().BoolVarP(&cf.detach, "detach", "d", false, "return once the process started")
	return cmd
}

func ociKill(rt func() *ociruntime.Runtime, wrap verbWrap) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use: "kill [--all] ID [SIGNAL]", Short: "Send a signal to a container (default SIGTERM)", Args: cobra.RangeArgs(1, 2),
		RunE: wrap(func(cmd *cobra.Command, args []string) error {
			sig := ""
			if len(args) == 2 {
				sig = args[1]
			}
			s, err := ociruntime.ParseSignal(sig)
			if err != nil {
				return err
			}
			return rt().Kill(args[0], s, all)
		}),
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "signal every process of the container")
	return cmd
}

func ociDelete(rt func() *ociruntime.Runtime, wrap verbWrap) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use: "delete [--force] ID", Short: "Delete a container", Args: cobra.ExactArgs(1),
		RunE: wrap(func(cmd *cobra.Command, args []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), time.Minute)
			defer cancel()
			return rt().Delete(ctx, args[0], force)
		}),
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "kill a running container first")
	return cmd
}

func ociExec(rt func() *ociruntime.Runtime, wrap verbWrap) *cobra.Command {
	var (
		processFile, consoleSocket, pidFile, cwd, user string
		env, caps, addGroups                           []string
		tty, detach, noNewPrivs                        bool
		preserveFds                                    int
	)
	cmd := &cobra.Command{
		Use: "exec [flags] ID [COMMAND [ARG...]]", Short: "Run a process in a running container", Args: cobra.MinimumNArgs(1),
		RunE: wrap(func(cmd *cobra.Command, args []string) error {
			r := rt()
			proc := &specs.Process{}
			if processFile != "" {
				b, err := os.ReadFile(processFile)
				if err != nil {
					return err
				}
				if err := json.Unmarshal(b, proc); err != nil {
					return fmt.Errorf("process file: %w", err)
				}
			} else {
				base, err := r.Config(args[0])
				if err != nil {
					return err
				}
				if base.Process != nil {
					*proc = *base.Process
				}
				proc.Terminal = tty
				proc.Args = args[1:]
				if len(proc.Args) == 0 {
					return fmt.Errorf("exec: no command given")
				}
				proc.Env = append(append([]string(nil), proc.Env...), env...)
				if cwd != "" {
					proc.Cwd = cwd
				}
				if user != "" {
					u, g, _ := strings.Cut(user, ":")
					uid, err := strconv.ParseUint(u, 10, 32)
					if err != nil {
						return fmt.Errorf("exec: user must be numeric uid[:gid]")
					}
					proc.User.UID = uint32(uid)
					if g != "" {
						gid, err := strconv.ParseUint(g, 10, 32)
						if err != nil {
							return fmt.Errorf("exec: user must be numeric uid[:gid]")
						}
						proc.User.GID = uint32(gid)
					}
				}
				for _, ag := range addGroups {
					gid, err := strconv.ParseUint(ag, 10, 32)
					if err != nil {
						return fmt.Errorf("exec: additional group %q", ag)
					}
					proc.User.AdditionalGids = append(proc.User.AdditionalGids, uint32(gid))
				}
				if noNewPrivs {
					proc.NoNewPrivileges = true
				}
				if len(caps) > 0 && proc.Capabilities != nil {
					c := *proc.Capabilities
					c.Bounding = append(append([]string(nil), c.Bounding...), caps...)
					c.Effective = append(append([]string(nil), c.Effective...), caps...)
					c.Permitted = append(append([]string(nil), c.Permitted...), caps...)
					proc.Capabilities = &c
				}
			}
			opts := ociruntime.ExecOpts{
				Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr,
				ConsoleSocket: consoleSocket, PidFile: pidFile, Detach: detach,
			}
			for i := 0; i < preserveFds; i++ {
				opts.ExtraFiles = append(opts.ExtraFiles, os.NewFile(uintptr(3+i), "preserved"))
			}
			code, err := r.Exec(cmd.Context(), args[0], proc, opts)
			if err != nil {
				return err
			}
			if code != 0 {
				return exitError{code: code}
			}
			return nil
		}),
	}
	fl := cmd.Flags()
	fl.SetInterspersed(false)
	fl.StringVarP(&processFile, "process", "p", "", "JSON file with the OCI process to run")
	fl.StringVar(&consoleSocket, "console-socket", "", "unix socket that receives the pty master")
	fl.StringVar(&pidFile, "pid-file", "", "write the process's pid to this file")
	fl.StringVar(&cwd, "cwd", "", "working directory")
	fl.StringVarP(&user, "user", "u", "", "uid[:gid]")
	fl.StringArrayVarP(&env, "env", "e", nil, "set an environment variable")
	fl.StringArrayVarP(&caps, "cap", "c", nil, "add a capability")
	fl.StringArrayVarP(&addGroups, "additional-gids", "g", nil, "additional gid")
	fl.BoolVarP(&tty, "tty", "t", false, "allocate a terminal")
	fl.BoolVarP(&detach, "detach", "d", false, "return once the process started")
	fl.BoolVar(&noNewPrivs, "no-new-privs", false, "set no_new_privs")
	fl.IntVar(&preserveFds, "preserve-fds", 0, "pass this many fds from 3 on to the process")
	return cmd
}
