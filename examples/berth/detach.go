package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/berth-run/berth"
)

// Detached containers: run -d, interactive runs through the monitor,
// start, attach, restart. logs is in logs.go.

// detachedCommands returns attach, logs and restart.
func detachedCommands(g *globals) []*cobra.Command {
	return []*cobra.Command{attachCmd(g), logsCmd(g), restartCmd(g)}
}

// runDetached runs a container in the background under the monitor
// (run -d) and prints its full ID.
func runDetached(cmd *cobra.Command, rt *berth.Runtime, spec berth.Spec) error {
	c, err := rt.Run(cmd.Context(), spec, berth.WithDetach())
	if err != nil {
		return exitError{code: exitCodeFor(err), err: err}
	}
	fmt.Fprintln(cmd.OutOrStdout(), c.ID())
	return nil
}

// runInteractive runs a container with -i or -t: under the monitor, with
// this terminal attached before it starts, so that the detach keys leave
// it running; otherwise its exit code becomes ours.
func runInteractive(cmd *cobra.Command, rt *berth.Runtime, spec berth.Spec, detachKeys string, sigProxy bool) error {
	ctx := cmd.Context()
	if err := checkTTY(cmd, spec.OpenStdin, spec.Tty); err != nil {
		return exitError{code: 125, err: err}
	}
	c, err := rt.Create(ctx, spec)
	if err != nil {
		return exitError{code: 125, err: err}
	}
	code, err := attachAndStart(cmd, c, detachKeys, spec.OpenStdin, spec.OpenStdin && !spec.Tty, sigProxy, true)
	if errors.Is(err, berth.ErrDetached) {
		return nil // it keeps running
	}
	if err != nil && spec.AutoRemove {
		_ = c.Remove(context.WithoutCancel(ctx), berth.RemoveForce())
	}
	if err != nil {
		var ee exitError
		if errors.As(err, &ee) {
			return err
		}
		return exitError{code: exitCodeFor(err), err: err}
	}
	if spec.AutoRemove {
		// As docker: return once --rm has removed it.
		_, _ = c.Wait(context.WithoutCancel(ctx))
	}
	if code != 0 {
		return exitError{code: code}
	}
	return nil
}

// checkTTY refuses a terminal for input that is not one, as docker.
func checkTTY(cmd *cobra.Command, stdin, tty bool) error {
	if stdin && tty {
		if f, ok := cmd.InOrStdin().(*os.File); !ok || !isTerminal(f) {
			return errors.New("the input device is not a TTY")
		}
	}
	return nil
}

// attachAndStart attaches this process's streams (stdin when withStdin)
// to c, optionally starts it under the monitor, and returns the
// container's exit code once its output ends; (0, nil) when the user
// detached.
func attachAndStart(cmd *cobra.Command, c *berth.Container, detachKeys string, withStdin, closeStdin, sigProxy, start bool) (int, error) {
	ctx := cmd.Context()
	spec := c.Spec()
	opts := berth.AttachOptions{Stdout: cmd.OutOrStdout(), Stderr: cmd.ErrOrStderr(), DetachKeys: detachKeys, CloseStdin: closeStdin}
	if spec.Tty {
		opts.Stderr = cmd.OutOrStdout()
	}
	restore := func() {}
	if withStdin {
		opts.Stdin = cmd.InOrStdin()
		if f, ok := opts.Stdin.(*os.File); ok && spec.Tty && isTerminal(f) {
			if st, err := term.MakeRaw(int(f.Fd())); err == nil {
				restore = func() { _ = term.Restore(int(f.Fd()), st) }
			}
		}
	}
	defer restore()
	att, err := c.Attach(ctx, opts)
	if err != nil {
		return 0, err
	}
	defer att.Close()
	if start {
		if err := c.Start(ctx, berth.WithDetach()); err != nil {
			return 0, err
		}
	}
	if spec.Tty {
		stop := watchTerminalSize(ctx, c)
		defer stop()
	} else if sigProxy {
		stop := forwardSignals(ctx, c, false)
		defer stop()
	}
	err = att.Wait(context.WithoutCancel(ctx))
	restore()
	if errors.Is(err, berth.ErrDetached) {
		return 0, err
	}
	if err != nil {
		return 0, exitError{code: 125, err: err}
	}
	if code := att.ExitCode(); code >= 0 {
		return code, nil
	}
	code, err := c.Wait(context.WithoutCancel(ctx))
	if err != nil {
		return 0, exitError{code: 125, err: err}
	}
	return code, nil
}

// watchTerminalSize keeps the container's terminal the size of ours.
func watchTerminalSize(ctx context.Context, c *berth.Container) func() {
	if !isTerminal(os.Stdout) {
		return func() {}
	}
	return forwardSignals(ctx, c, true)
}

// startDetached starts stopped containers in the background (start
// without -a), printing each name as docker does.
func startDetached(cmd *cobra.Command, rt *berth.Runtime, args []string) error {
	ctx := cmd.Context()
	return eachContainer(cmd, rt, args, func(c *berth.Container, _ string) error {
		return c.Start(ctx, berth.WithDetach())
	})
}

// startAttached is start -a [-i]: attach, then start under the monitor,
// then wait for the end of the output or the detach keys.
func startAttached(cmd *cobra.Command, rt *berth.Runtime, name string, interactive bool, detachKeys string) error {
	ctx := cmd.Context()
	c, err := rt.Container(ctx, name)
	if err != nil {
		return err
	}
	spec := c.Spec()
	withStdin := interactive && spec.OpenStdin
	if err := checkTTY(cmd, withStdin, spec.Tty); err != nil {
		return err
	}
	code, err := attachAndStart(cmd, c, detachKeys, withStdin, withStdin && !spec.Tty, true, true)
	if errors.Is(err, berth.ErrDetached) {
		return nil
	}
	if err != nil {
		return err
	}
	if code != 0 {
		return exitError{code: code}
	}
	return nil
}

func attachCmd(g *globals) *cobra.Command {
	var noStdin, sigProxy bool
	var detachKeys string
	c := &cobra.Command{
		Use:   "attach [OPTIONS] CONTAINER",
		Short: "Attach local standard input, output, and error streams to a running container",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			rt, err := g.open(ctx)
			if err != nil {
				return err
			}
			c, err := rt.Container(ctx, args[0])
			if err != nil {
				return err
			}
			st, err := c.State(ctx)
			if err != nil {
				return err
			}
			switch {
			case st.Paused:
				return errors.New("you cannot attach to a paused container, unpause it first")
			case !st.Running:
				return errors.New("you cannot attach to a stopped container, start it first")
			}
			spec := c.Spec()
			withStdin := !noStdin && spec.OpenStdin
			if err := checkTTY(cmd, withStdin, spec.Tty); err != nil {
				return err
			}
			if spec.Tty && isTerminal(os.Stdout) {
				// A size that differs from the current one makes the
				// shell redraw its prompt; the real size follows.
				if w, h, err := term.GetSize(int(os.Stdout.Fd())); err == nil {
					_ = c.Resize(ctx, uint16(w+1), uint16(h+1))
				}
			}
			code, err := attachAndStart(cmd, c, detachKeys, withStdin, false, sigProxy, false)
			if errors.Is(err, berth.ErrDetached) {
				return exitError{code: 1, err: err}
			}
			if err != nil {
				return err
			}
			if code != 0 {
				return exitError{code: code}
			}
			return nil
		},
	}
	fl := c.Flags()
	fl.BoolVar(&noStdin, "no-stdin", false, "Do not attach STDIN")
	fl.BoolVar(&sigProxy, "sig-proxy", true, "Proxy all received signals to the process")
	fl.StringVar(&detachKeys, "detach-keys", "", "Override the key sequence for detaching a container")
	return c
}

func restartCmd(g *globals) *cobra.Command {
	var timeout func(*cobra.Command) *time.Duration
	c := &cobra.Command{
		Use:   "restart [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Restart one or more containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			rt, err := g.open(ctx)
			if err != nil {
				return err
			}
			t := timeout(cmd)
			return eachContainer(cmd, rt, args, func(c *berth.Container, _ string) error { return c.Restart(ctx, t) })
		},
	}
	timeout = timeoutFlags(c)
	return c
}

// timeoutFlags registers stop's and restart's -t/--time (and --timeout)
// and returns their value: nil when not given (the container's own stop
// timeout).
func timeoutFlags(c *cobra.Command) func(*cobra.Command) *time.Duration {
	var seconds int
	c.Flags().IntVarP(&seconds, "time", "t", 10, "Seconds to wait before killing the container")
	c.Flags().IntVar(&seconds, "timeout", 10, "Seconds to wait before killing the container")
	return func(cmd *cobra.Command) *time.Duration {
		if !cmd.Flags().Changed("time") && !cmd.Flags().Changed("timeout") {
			return nil
		}
		d := time.Duration(seconds) * time.Second
		return &d
	}
}
