#!/usr/bin/env bash
# run.sh - berth's and podman's `run --rm true` with --network none, the
# default bridge and -p, in a network namespace of its own (as root), so
# that both engines' bridges, veths and firewall rules stay there. See
# network_linux_test.go; BERTH_BENCH_ROUNDS sets the rounds (default 15).
set -euo pipefail
cd "$(dirname "$0")"
bin="$(mktemp -d)"
trap 'rm -rf "$bin"' EXIT
go test -c -o "$bin/bench.test" .
unshare --net -- sh -c 'ip link set lo up && exec "$0" -test.run "^$" -test.bench RunRm -test.benchtime 1x -test.v "$@"' "$bin/bench.test" "$@"
