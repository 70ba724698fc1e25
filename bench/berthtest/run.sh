#!/usr/bin/env bash
# run.sh - berthtest.Redis against testcontainers-go's redis module on
# dockerd, in a network namespace of its own (as root). See
# redis_test.go; BENCH_ROUNDS sets the rounds (default 15).
set -euo pipefail
cd "$(dirname "$0")"
bin="$(mktemp -d)"
trap 'rm -rf "$bin"' EXIT
CGO_ENABLED=0 go test -c -o "$bin/bench.test" .
# Everything the engines do to the network (bridges, veths, nft and
# iptables rules) stays in this namespace and goes with it.
unshare --net -- sh -c 'ip link set lo up && exec "$0" -test.run "^$" -test.bench RedisReady -test.benchtime 1x -test.v "$@"' "$bin/bench.test" "$@"
