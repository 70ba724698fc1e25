package wait

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/berth-run/berth"
)

// ForExec waits until cmd, run in the container (as `docker exec`),
// exits with code 0 (see WithExitCode). Unlike the other strategies it
// needs cmd in the image.
func ForExec(cmd ...string) *ExecStrategy {
	return &ExecStrategy{cmd: cmd, code: func(c int) bool { return c == 0 }}
}

// ExecStrategy is ForExec's strategy.
type ExecStrategy struct {
	timeouts
	cmd  []string
	code func(int) bool
}

// WithExitCode sets the exit code that means ready. Default 0.
func (s *ExecStrategy) WithExitCode(code int) *ExecStrategy {
	s.code = func(c int) bool { return c == code }
	return s
}

// WithTimeout bounds the wait. Default DefaultTimeout.
func (s *ExecStrategy) WithTimeout(d time.Duration) *ExecStrategy { s.timeout = d; return s }

func (s *ExecStrategy) String() string { return fmt.Sprintf("exec %q", strings.Join(s.cmd, " ")) }

// WaitUntilReady implements Strategy.
func (s *ExecStrategy) WaitUntilReady(ctx context.Context, c *berth.Container) error {
	return poll(ctx, c, s.String(), s.get(), 200*time.Millisecond, func(ctx context.Context) (bool, error) {
		st, err := c.State(ctx)
		if err != nil || !st.Running {
			return false, err
		}
		var out bytes.Buffer
		p, err := c.Exec(ctx, berth.ExecSpec{Cmd: s.cmd, Stdout: &out, Stderr: &out})
		if err != nil {
			return false, err
		}
		code, err := p.Wait(ctx)
		if err != nil {
			return false, err
		}
		if !s.code(code) {
			return false, fmt.Errorf("exit code %d: %s", code, strings.TrimSpace(out.String()))
		}
		return true, nil
	})
}
