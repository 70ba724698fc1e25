#!/usr/bin/env bash
# demo.sh - a short tour of berth on this machine (run as root; `make
# demo` builds bin/berth and installs the packages first). Uses a scratch
# store under /tmp/berth-demo so it leaves the machine as it found it.
set -euo pipefail
cd "$(dirname "$0")/.."
berth() { ./bin/berth --root "$DEMO/root" --runroot "$DEMO/run" "$@"; }
DEMO=$(mktemp -d /tmp/berth-demo.XXXXXX)
cleanup() {
	berth rm -f $(berth ps -aq 2>/dev/null) >/dev/null 2>&1 || true
	rm -rf "$DEMO"
}
trap cleanup EXIT
step() { printf '\n\033[1m$ berth %s\033[0m\n' "$*"; berth "$@"; }

# A busybox image from Debian's busybox-static package.
rootfs="$DEMO/rootfs"
mkdir -p "$rootfs"/{bin,etc,tmp,root,proc,sys,dev}
cp /bin/busybox "$rootfs/bin/busybox"
for applet in $(/bin/busybox --list); do
	[ "$applet" = busybox ] || ln -s busybox "$rootfs/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$rootfs/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$rootfs/etc/group"
tar -C "$rootfs" -cf "$DEMO/busybox.tar" .

step import --change 'CMD ["sh"]' "$DEMO/busybox.tar" busybox:latest
step images
step run --rm --network none busybox sh -c 'echo "hello from $(hostname), PID $$"; cat /proc/1/status | grep -E "CapEff|Seccomp:"'
step run --network none --name demo busybox sh -c 'echo data > /file; exit 3' || echo "(exit status $?)"
step inspect -f '{{.Name}} {{.State.Status}} exit={{.State.ExitCode}}' demo
step rm demo
step save -o "$DEMO/saved.tar" busybox
step rmi busybox
step load -i "$DEMO/saved.tar"
step history busybox
step system df
