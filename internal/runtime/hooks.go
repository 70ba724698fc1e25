package runtime

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// runHooks runs OCI hooks in order, each with the state as JSON on its
// stdin, its own args and env, and its timeout (none when unset). The
// first failure stops the list and is returned with the hook's stderr.
func runHooks(hooks []specs.Hook, phase string, state *specs.State) error {
	if len(hooks) == 0 {
		return nil
	}
	data, err := json.Marshal(state)
	if err != nil {
		return err
	}
	for i := range hooks {
		if err := runHook(&hooks[i], data); err != nil {
			return fmt.Errorf("%s hook #%d (%s): %w", phase, i, hooks[i].Path, err)
		}
	}
	return nil
}

// runHooksWarn runs every hook even when some fail (poststart, poststop:
// the spec asks for a warning and the lifecycle goes on) and returns the
// failures joined.
func runHooksWarn(hooks []specs.Hook, phase string, state *specs.State) error {
	if len(hooks) == 0 {
		return nil
	}
	data, err := json.Marshal(state)
	if err != nil {
		return err
	}
	var errs []error
	for i := range hooks {
		if err := runHook(&hooks[i], data); err != nil {
			errs = append(errs, fmt.Errorf("%s hook #%d (%s): %w", phase, i, hooks[i].Path, err))
		}
	}
	return errors.Join(errs...)
}

func runHook(h *specs.Hook, state []byte) error {
	ctx := context.Background()
	if h.Timeout != nil {
		if *h.Timeout <= 0 {
			return fmt.Errorf("timeout must be positive, got %d", *h.Timeout)
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(*h.Timeout)*time.Second)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, h.Path)
	if len(h.Args) > 0 {
		cmd.Args = h.Args
	} else {
		cmd.Args = []string{h.Path}
	}
	cmd.Env = h.Env
	if cmd.Env == nil {
		cmd.Env = []string{}
	}
	cmd.Stdin = bytes.NewReader(state)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Stdout = &stderr
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	if ctx.Err() == context.DeadlineExceeded {
		return fmt.Errorf("timed out after %ds", *h.Timeout)
	}
	if err != nil {
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			return fmt.Errorf("%w: %s", err, msg)
		}
		return err
	}
	return nil
}
