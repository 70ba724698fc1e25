package berth_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/berth-run/berth"
)

// monitorWorker is a worker process (concurrency_test.go) that starts a
// detached container from BERTH_TEST_SPEC (JSON) and prints its ID. The
// "detach" kind then exits; "die-with-creator" waits to be killed.
func monitorWorker(ctx context.Context, rt *berth.Runtime, kind string) int {
	var spec berth.Spec
	if err := json.Unmarshal([]byte(os.Getenv("BERTH_TEST_SPEC")), &spec); err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		return 1
	}
	c, err := rt.Run(ctx, spec, berth.WithDetach())
	if err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		return 1
	}
	fmt.Println(c.ID())
	if kind == "die-with-creator" {
		select {} // until SIGKILL
	}
	return 0
}
