#!/usr/bin/env bash
# install-deps.sh - install what berth's tests and demo need on a fresh
# Debian 12 machine (as root): the Debian packages the fixtures are built
# from and the peers the interop tests compare with. Idempotent and quick
# when everything is already there.
set -euo pipefail

packages=(
	busybox-static  # the busybox fixture image
	docker-registry # the reference registry, started by the tests on 127.0.0.1
	skopeo          # independent registry client (interop tests)
	podman          # peer for archive interop and benchmarks
	runc            # peer for the runtime benchmark and OCI validation baseline
	crun
	umoci
	debootstrap     # Debian base images for the service fixtures
	tmux            # drives `run -it` in a real terminal in tests
	iproute2
	make
)

missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "install-deps: missing packages (run as root to install): ${missing[*]}" >&2
		exit 1
	fi
	echo "install-deps: installing ${missing[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
