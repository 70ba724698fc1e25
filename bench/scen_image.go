package main

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// pullScenario measures a cold pull (download and unpack, nothing of the
// image stored before) of the local registry's image ref.
func pullScenario(name, title string, ref func(h *harness) string) *scenario {
	return &scenario{name: name, title: title, unit: "ms",
		setup: func(h *harness, t *tb) []*contender {
			return h.cliContenders(t, func(e *engine) *contender {
				r := ref(h)
				return &contender{name: e.name, measure: func(t *tb) float64 {
					e.try("rmi", "-f", r)
					// The previous writes reach the disk now, not on
					// this pull's clock (the registry's blobs stay in
					// the page cache: every engine pulls from memory).
					syscall.Sync()
					return e.time(t, append(append([]string{"pull", "-q"}, e.pull...), r)...)
				}}
			})
		}}
}

var pullBusybox = pullScenario("pull-busybox", "cold pull of busybox (1 layer, 1 MB) from a local registry",
	func(h *harness) string { return h.busybox })

var pullRedis = pullScenario("pull-redis", "cold pull of Debian+Redis (4 layers, ~135 MB unpacked) from a local registry",
	func(h *harness) string { return h.redis })

// commitData writes ~100 MB into the container: 100 files of base64 of
// random bytes (text that compresses to about 3/4, as binaries do).
const commitData = `i=0; while [ $i -lt 100 ]; do head -c 786432 /dev/urandom | base64 > /data-$i; i=$((i+1)); done`

var commit100 = &scenario{name: "commit", title: "commit of a stopped container with 100 MB of changes", unit: "ms",
	setup: func(h *harness, t *tb) []*contender {
		return h.cliContenders(t, func(e *engine) *contender {
			e.ensure(t, h.busybox)
			name := "bench-commit"
			e.run(t, "run", "--name", name, "--network", "none", h.busybox, "sh", "-c", commitData)
			t.Cleanup(func() { e.try("rm", "-f", name) })
			round := 0
			return &contender{name: e.name, measure: func(t *tb) float64 {
				round++
				image := fmt.Sprintf("bench/commit:%d", round)
				syscall.Sync()
				d := e.time(t, "commit", name, image)
				e.run(t, "rmi", image)
				return d
			}}
		})
	}}

// archiveScenario measures save (to a file) or load (of the engine's
// own save, the image removed before) of the Debian+Redis image.
func archiveScenario(load bool) *scenario {
	s := &scenario{name: "save", title: "save -o FILE of Debian+Redis (~135 MB)", unit: "ms"}
	if load {
		s.name, s.title = "load", "load -i FILE of Debian+Redis (the engine's own save), the image removed before"
	}
	s.setup = func(h *harness, t *tb) []*contender {
		return h.cliContenders(t, func(e *engine) *contender {
			e.ensure(t, h.redis)
			file := filepath.Join(t.TempDir(), e.name+".tar")
			if load {
				e.run(t, "save", "-o", file, h.redis)
			}
			return &contender{name: e.name, measure: func(t *tb) float64 {
				if load {
					e.run(t, "rmi", "-f", h.redis)
					syscall.Sync()
					return e.time(t, "load", "-q", "-i", file)
				}
				os.Remove(file)
				syscall.Sync()
				return e.time(t, "save", "-o", file, h.redis)
			}}
		})
	}
	return s
}

var saveRedis, loadRedis = archiveScenario(false), archiveScenario(true)
