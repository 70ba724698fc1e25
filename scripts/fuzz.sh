#!/usr/bin/env bash
# Runs every fuzz target for FUZZTIME each (default 10s), as make test
# does. Go's fuzzer crawls on this machine's ext4 (under 1 exec/s): its
# temp files and corpus cache go to a directory on /dev/shm, removed after.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${FUZZTIME:=10s}"
GO=${GO:-go}
shm=$(mktemp -d /dev/shm/berth-fuzz.XXXXXX)
trap 'rm -rf "$shm"' EXIT
targets=(
	"./internal/reference FuzzParse"
	"./internal/archive FuzzApply"
	"./internal/portmap FuzzParsePort"
	"./internal/opts FuzzParseVolume"
	"./internal/opts FuzzParseMount"
	"./internal/opts FuzzParseMemory"
	"./internal/opts FuzzApplyChanges"
	". FuzzSpecToOCI"
)
for t in "${targets[@]}"; do
	read -r pkg name <<<"$t"
	echo "fuzz: $name ($pkg) for $FUZZTIME"
	TMPDIR="$shm" CGO_ENABLED=0 $GO test "$pkg" -count=1 -run '^$' -fuzz "^$name\$" -fuzztime "$FUZZTIME" \
		-test.fuzzcachedir="$shm/cache" 2>&1 | tail -n 3
	test "${PIPESTATUS[0]}" -eq 0
done
