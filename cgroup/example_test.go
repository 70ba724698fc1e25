package cgroup_test

import (
	"context"
	"fmt"
	"log"
	"os/exec"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-run/berth/cgroup"
)

// A process limited to half a CPU, 64 MiB and 100 tasks, paused, resumed,
// killed and cleaned up. Without an Output comment this example is only
// compiled: it needs root.
func ExampleManager() {
	ctx := context.Background()
	m, err := cgroup.New("berth/example") // below the caller's own cgroup
	if err != nil {
		log.Fatal(err)
	}
	quota, period, err := cgroup.CPUQuota(0.5) // docker run --cpus 0.5
	if err != nil {
		log.Fatal(err)
	}
	limit := int64(64 << 20)
	pids := int64(100)
	if err := m.Create(&specs.LinuxResources{
		CPU:    &specs.LinuxCPU{Quota: &quota, Period: &period},
		Memory: &specs.LinuxMemory{Limit: &limit, Swap: &limit},
		Pids:   &specs.LinuxPids{Limit: &pids},
	}); err != nil {
		log.Fatal(err)
	}
	defer m.Delete()

	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		log.Fatal(err)
	}
	if err := m.Add(cmd.Process.Pid); err != nil {
		log.Fatal(err)
	}
	_ = m.Freeze(ctx) // docker pause
	_ = m.Thaw(ctx)   // docker unpause
	if st, err := m.Stats(); err == nil {
		fmt.Println("memory in use:", st.Memory.Usage, "of", st.Memory.Limit)
	}
	_ = m.Kill(ctx)
	_ = cmd.Wait()
}
