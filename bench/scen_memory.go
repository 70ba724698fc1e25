package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// memoryContainers is how many detached containers the memory scenario
// starts.
const memoryContainers = 50

// memory50 measures the host memory an engine adds per detached
// container: the proportional set size (PSS, /proc/PID/smaps_rollup) of
// the processes that watch them — berth's one monitor per store,
// podman's conmon per container, docker's containerd-shim per container —
// divided by the number of containers. The daemons (dockerd, containerd)
// are not counted.
var memory50 = &scenario{name: "memory-50", unit: "MiB", rounds: 3, noWarmup: true,
	title: fmt.Sprintf("PSS per detached container of its monitor(s), %d × run -d busybox sleep", memoryContainers),
	setup: func(h *harness, t *tb) []*contender {
		return h.cliContenders(t, func(e *engine) *contender {
			e.ensure(t, h.busybox)
			return &contender{name: e.name, measure: func(t *tb) float64 {
				var ids []string
				defer func() {
					if len(ids) > 0 {
						e.try(append([]string{"rm", "-f"}, ids...)...)
					}
				}()
				for i := range memoryContainers {
					out := e.run(t, "run", "-d", "--name", fmt.Sprintf("bench-mem-%d", i), "--network", "none", h.busybox, "sleep", "86400")
					ids = append(ids, strings.TrimSpace(out))
				}
				// Steady state: berth's monitor returns the memory of a burst
				// of starts to the system a second after it (monitor_linux.go).
				time.Sleep(3 * time.Second)
				var pids []int
				switch e.name {
				case "berth":
					pids = findProcs(func(argv []string) bool {
						return len(argv) == 2 && argv[0] == "berth-monitor" && argv[1] == h.berthRoot
					})
				case "podman":
					pids = findProcs(func(argv []string) bool { return filepath.Base(argv[0]) == "conmon" && hasAny(argv, ids) })
				case "docker":
					pids = findProcs(func(argv []string) bool {
						return strings.HasPrefix(filepath.Base(argv[0]), "containerd-shim") && hasAny(argv, ids)
					})
				}
				if len(pids) == 0 {
					t.Fatalf("%s: no monitor process found", e.name)
				}
				var kb int64
				for _, pid := range pids {
					n, err := pssKB(pid)
					if err != nil {
						t.Fatal(err)
					}
					kb += n
				}
				t.Logf("%s: %d monitor processes, %.1f MiB PSS in all", e.name, len(pids), float64(kb)/1024)
				return float64(kb) / 1024 / memoryContainers
			}}
		})
	}}

// findProcs returns the pids of the processes whose argv match.
func findProcs(match func(argv []string) bool) []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(b) == 0 {
			continue
		}
		if match(strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// hasAny reports whether an argument of argv holds one of ids.
func hasAny(argv, ids []string) bool {
	for _, a := range argv {
		for _, id := range ids {
			if id != "" && strings.Contains(a, id) {
				return true
			}
		}
	}
	return false
}

// pssKB reads a process's proportional set size in KiB.
func pssKB(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == "Pss:" {
			return strconv.ParseInt(f[1], 10, 64)
		}
	}
	return 0, fmt.Errorf("pid %d: no Pss in smaps_rollup", pid)
}
