#!/usr/bin/env bash
# Shows that the tests own their network namespaces: while the host sees a
# uevent on lo every 50 ms and a NETLINK_USERSOCK flood on groups 1-8, two
# runs of `go test ./...` at once both pass, with the counts they check.
# Run as root from the repository (.ci/run does).
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

gcc -O2 -Wall -o "$work/flood" bench/flood.c

# The host's noise, in the host's network namespace.
(while :; do echo change >/sys/class/net/lo/uevent; sleep 0.05; done) &
pids+=($!)
(while :; do
	for g in 1 2 3 4 5 6 7 8; do "$work/flood" -g "$g" -n 2000 >/dev/null; done
	sleep 0.05
done) &
pids+=($!)

# Two runs at once; go test's cache is bypassed so that both really run.
go test -count=1 ./... >"$work/run1.log" 2>&1 &
run1=$!
go test -count=1 ./... >"$work/run2.log" 2>&1 &
run2=$!
status=0
wait "$run1" || status=1
wait "$run2" || status=1
for r in 1 2; do
	echo "--- run $r"
	cat "$work/run$r.log"
done
if [ "$status" != 0 ]; then
	echo "isolation: FAILED: a run failed under host netlink noise"
	exit 1
fi
echo "isolation: both runs passed under host netlink noise"
