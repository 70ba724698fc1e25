package torture

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/berth-run/berth"
)

// op is an operation the kill test interrupts: run in a worker that is
// SIGKILLed at a random point, then again (it must succeed) in the
// coordinator.
type op struct {
	name string
	// prepare makes the operation's precondition, in the coordinator.
	prepare func(s *suite) error
	// arg is the worker's argument.
	arg func(s *suite) string
	// run is the operation.
	run func(ctx context.Context, rt *berth.Runtime, arg string) error
	// again runs it once more after the kill (nil: run in the coordinator).
	again func(s *suite, arg string) error
	// cleanup removes what the operation made, for the leak audit.
	cleanup func(s *suite) error
}

// The containers the operations work on.
const (
	boxName     = "tbox" // runs all along: exec and commit target it
	rmName      = "trm"  // exited: rm removes it
	rmfName     = "trmf" // running: rm -f removes it
	commitRef   = "torture/commit:latest"
	volumeName  = "tvol"
	networkName = "tnet"
	runLabel    = "torture.run"
)

func noArg(*suite) string     { return "" }
func netArg(s *suite) string  { return s.net }
func pullArg(s *suite) string { return s.pullRf }
func notFound(err error) bool { return errors.Is(err, berth.ErrNotFound) }
func ignoreMissing(err error) error {
	if err == nil || notFound(err) {
		return nil
	}
	return err
}

var ops = []*op{
	{
		name: "pull",
		arg:  pullArg,
		run: func(ctx context.Context, rt *berth.Runtime, ref string) error {
			_, err := rt.Pull(ctx, ref)
			return err
		},
		cleanup: func(s *suite) error {
			_, err := s.rt.RemoveImage(s.ctx, s.pullRf)
			return ignoreMissing(err)
		},
	},
	{
		name: "run",
		arg:  netArg,
		run: func(ctx context.Context, rt *berth.Runtime, network string) error {
			c, err := rt.Run(ctx, berth.Spec{Image: "busybox", Cmd: []string{"sh", "-c", "echo torture > /torture && cat /torture"},
				Network: network, AutoRemove: true, Labels: map[string]string{runLabel: "1"}})
			if err != nil {
				return err
			}
			code, err := c.Wait(ctx)
			if err == nil && code != 0 {
				err = fmt.Errorf("run: exit code %d", code)
			}
			return err
		},
		cleanup: func(s *suite) error {
			// A run killed between create and start leaves a created
			// container (as a killed `docker run --rm` client does).
			cs, err := s.rt.Containers(s.ctx, berth.ListFilter("label", runLabel))
			if err != nil {
				return err
			}
			for _, c := range cs {
				if err := ignoreMissing(c.Remove(s.ctx, berth.RemoveForce())); err != nil {
					return err
				}
			}
			return nil
		},
	},
	{
		name:    "exec",
		prepare: (*suite).ensureBox,
		arg:     noArg,
		run: func(ctx context.Context, rt *berth.Runtime, _ string) error {
			c, err := rt.Container(ctx, boxName)
			if err != nil {
				return err
			}
			p, err := c.Exec(ctx, berth.ExecSpec{Cmd: []string{"sh", "-c", "echo exec > /tmp/exec"}})
			if err != nil {
				return err
			}
			code, err := p.Wait(ctx)
			if err == nil && code != 0 {
				err = fmt.Errorf("exec: exit code %d", code)
			}
			return err
		},
	},
	{
		name:    "commit",
		prepare: (*suite).ensureBox,
		arg:     noArg,
		run: func(ctx context.Context, rt *berth.Runtime, _ string) error {
			c, err := rt.Container(ctx, boxName)
			if err != nil {
				return err
			}
			_, err = c.Commit(ctx, commitRef)
			return err
		},
		cleanup: func(s *suite) error {
			// A commit killed after it recorded its image leaves that
			// image dangling once the commit again takes the tag.
			_, err := s.rt.RemoveImage(s.ctx, commitRef)
			if err := ignoreMissing(err); err != nil {
				return err
			}
			_, _, err = s.rt.PruneImages(s.ctx, false)
			return err
		},
	},
	{
		name: "rm",
		prepare: func(s *suite) error {
			c, err := s.rt.Run(s.ctx, berth.Spec{Image: "busybox", Name: rmName, Cmd: []string{"sh", "-c", "echo x > /x"}, Network: s.net})
			if err != nil {
				return err
			}
			_, err = c.Wait(s.ctx)
			return err
		},
		arg: noArg,
		run: func(ctx context.Context, rt *berth.Runtime, _ string) error {
			c, err := rt.Container(ctx, rmName)
			if err != nil {
				return err
			}
			return c.Remove(ctx)
		},
		again: func(s *suite, _ string) error { return removeIfThere(s, rmName, false) },
	},
	{
		name: "rm-f",
		prepare: func(s *suite) error {
			_, err := s.rt.Run(s.ctx, berth.Spec{Image: "busybox", Name: rmfName, Cmd: []string{"sleep", "100000"}, Network: s.net})
			return err
		},
		arg: noArg,
		run: func(ctx context.Context, rt *berth.Runtime, _ string) error {
			c, err := rt.Container(ctx, rmfName)
			if err != nil {
				return err
			}
			return c.Remove(ctx, berth.RemoveForce())
		},
		again: func(s *suite, _ string) error { return removeIfThere(s, rmfName, true) },
	},
	{
		name: "volume",
		arg:  noArg,
		run: func(ctx context.Context, rt *berth.Runtime, _ string) error {
			_, err := rt.CreateVolume(ctx, volumeName)
			return err
		},
		cleanup: func(s *suite) error {
			v, err := s.rt.Volume(s.ctx, volumeName)
			if err != nil {
				return ignoreMissing(err)
			}
			return v.Remove(s.ctx)
		},
	},
	networkOp,
}

// networkOp creates a user-defined network; after a kill it is removed
// (if it was made) and created again.
var networkOp = &op{
	name: "network",
	arg:  noArg,
	run: func(ctx context.Context, rt *berth.Runtime, _ string) error {
		_, err := rt.CreateNetwork(ctx, networkName)
		return err
	},
	again: func(s *suite, _ string) error {
		if n, err := s.rt.Network(s.ctx, networkName); err == nil {
			if err := n.Remove(s.ctx); err != nil {
				return err
			}
		} else if !notFound(err) {
			return err
		}
		_, err := s.rt.CreateNetwork(s.ctx, networkName)
		return err
	},
	cleanup: func(s *suite) error {
		n, err := s.rt.Network(s.ctx, networkName)
		if err != nil {
			return ignoreMissing(err)
		}
		return n.Remove(s.ctx)
	},
}

func opByName(name string) (*op, bool) {
	for _, o := range ops {
		if o.name == name {
			return o, true
		}
	}
	return nil, false
}

// removeIfThere is rm again after a killed rm: the container must be
// removable if the first rm did not get to remove it.
func removeIfThere(s *suite, name string, force bool) error {
	c, err := s.rt.Container(s.ctx, name)
	if notFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	var opts []berth.RemoveOption
	if force {
		opts = append(opts, berth.RemoveForce())
	}
	return c.Remove(s.ctx, opts...)
}

// ensureBox makes sure the long-running container exec and commit use
// runs, owned by the coordinator.
func (s *suite) ensureBox() error {
	c, err := s.rt.Container(s.ctx, boxName)
	if err == nil {
		st, err := c.State(s.ctx)
		if err != nil {
			return err
		}
		switch st.Status {
		case berth.StatusRunning:
			return nil
		case berth.StatusPaused:
			return fmt.Errorf("%s was left paused", boxName)
		}
		if err := c.Remove(s.ctx, berth.RemoveForce()); err != nil {
			return err
		}
	} else if !notFound(err) {
		return err
	}
	_, err = s.rt.Run(s.ctx, berth.Spec{Image: "busybox", Name: boxName, Cmd: []string{"sleep", "1000000"}, Network: s.net})
	return err
}

// boxState describes the long-running container for failure messages:
// "" when it runs as it should.
func (s *suite) boxState() string {
	c, err := s.rt.Container(s.ctx, boxName)
	if err != nil {
		return err.Error()
	}
	st, err := c.State(s.ctx)
	if err != nil {
		return err.Error()
	}
	if st.Status != berth.StatusRunning {
		return boxName + " is " + st.Status
	}
	return ""
}

// unpauseBox thaws the long-running container if something left it
// paused, so that the suite goes on.
func (s *suite) unpauseBox() {
	if c, err := s.rt.Container(s.ctx, boxName); err == nil {
		_ = c.Unpause(s.ctx)
	}
}

// benign are the errors racing operations may see: a name taken or
// removed by another process meanwhile.
func benign(err error) bool {
	return err == nil || errors.Is(err, berth.ErrNotFound) || errors.Is(err, berth.ErrConflict) || errors.Is(err, berth.ErrNotRunning)
}

// short shortens an error for the summary.
func short(err error) string {
	s := err.Error()
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return strings.ReplaceAll(s, "\n", " | ")
}

var _ = time.Second
