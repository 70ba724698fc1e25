package berth_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"testing"

	"github.com/berth-run/berth"
)

// netWorker is a worker process (the test binary run again, see TestMain)
// whose standard output is read line by line and whose standard input
// tells it to finish when closed.
type netWorker struct {
	cmd   *exec.Cmd
	in    io.WriteCloser
	out   *bufio.Reader
	errb  *bytes.Buffer
	ended bool
}

// startNetWorker starts a worker of kind on rt's store with extra
// environment variables. It is stopped (stdin closed, waited for) when
// the test ends, if the test did not finish it.
func startNetWorker(t *testing.T, rt *berth.Runtime, kind string, env map[string]string) *netWorker {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "BERTH_TEST_WORKER="+kind, "BERTH_TEST_ROOT="+rt.Root(), "BERTH_TEST_RUNROOT="+rt.RunRoot())
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	w := &netWorker{cmd: cmd, in: in, out: bufio.NewReader(out), errb: &bytes.Buffer{}}
	cmd.Stderr = w.errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !w.ended {
			_ = w.finish()
		}
	})
	return w
}

func (w *netWorker) readLine() (string, error) {
	line, err := w.out.ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("worker output: %w", err)
	}
	return line[:len(line)-1], nil
}

// finish closes the worker's input and waits for it to exit.
func (w *netWorker) finish() error {
	w.ended = true
	w.in.Close()
	_, _ = io.Copy(io.Discard, w.out)
	return w.cmd.Wait()
}

// stderr is what the worker wrote to its standard error.
func (w *netWorker) stderr() string { return w.errb.String() }

// netRunWorker starts BERTH_TEST_COUNT containers on BERTH_TEST_NETWORK at
// once, prints "ID ADDRESS" for each, waits for its standard input to
// close, then removes them.
func netRunWorker(ctx context.Context, rt *berth.Runtime) error {
	var n int
	if _, err := fmt.Sscan(os.Getenv("BERTH_TEST_COUNT"), &n); err != nil {
		return err
	}
	netName := os.Getenv("BERTH_TEST_NETWORK")
	type res struct {
		c   *berth.Container
		err error
	}
	ch := make(chan res, n)
	for i := 0; i < n; i++ {
		go func() {
			c, err := rt.Run(ctx, berth.Spec{Image: "busybox", Network: netName, Cmd: []string{"sleep", "600"}})
			ch <- res{c, err}
		}()
	}
	var cs []*berth.Container
	var errs []error
	for i := 0; i < n; i++ {
		r := <-ch
		if r.err != nil {
			errs = append(errs, r.err)
			continue
		}
		cs = append(cs, r.c)
		ins, err := r.c.Inspect(ctx)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		fmt.Printf("%s %s\n", r.c.ID(), ins.NetworkSettings.Networks[netName].IPAddress)
	}
	if len(errs) == 0 {
		_, _ = io.Copy(io.Discard, os.Stdin)
	}
	for _, c := range cs {
		if err := c.Remove(ctx, berth.RemoveForce()); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
