package berth_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/berth-run/berth"
)

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
