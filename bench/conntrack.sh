#!/usr/bin/env bash
# Connection tracking burst: N UDP entries (bench/ctfill) flushed at once
# with conntrack -F make a burst of N DESTROY events, read side by side by
# the kevent_exporter binary (a conntrack source of group
# conntrack_destroy) and by conntrack-tools' `conntrack -E -e DESTROY
# >/dev/null`, with the same receive buffer; then again with a 256 MiB one.
# Checks that the exporter receives at least as many as conntrack -E, that
# its events_total + datagrams_lost_total == N exactly, that it uses less
# CPU per event, and that with 256 MiB it loses none. Runs in a network
# namespace of its own (unshare), as root, with iptables-legacy and
# conntrack installed. Prints a report; docs/benchmarks.md keeps the last
# one. Heavy (a 200 000-entry table): run it once, not in a loop.
#
#	bench/conntrack.sh
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-200000}
RCVBUF=${RCVBUF:-8388608}
BIGBUF=${BIGBUF:-268435456}

if [ "${1:-}" != --in-netns ]; then
	exec unshare --net bash "$0" --in-netns
fi

out=$(mktemp -d)
exporter_pid= ct_pid=
cleanup() {
	[ -n "$exporter_pid" ] && kill "$exporter_pid" 2>/dev/null && wait "$exporter_pid" 2>/dev/null
	[ -n "$ct_pid" ] && kill "$ct_pid" 2>/dev/null && wait "$ct_pid" 2>/dev/null
	rm -rf "$out"
}
trap cleanup EXIT

go build -o "$out/kevent_exporter" .
go build -o "$out/ctfill" ./bench/ctfill

fail=0
check() { # check NAME CONDITION-RESULT(0/1) DETAIL
	if [ "$2" = 1 ]; then echo "PASS $1: $3"; else echo "FAIL $1: $3"; fail=1; fi
}
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
metric() { # metric NAME LABELS: sum of the series of NAME whose labels contain LABELS
	curl -s "http://127.0.0.1:$port/metrics" | awk -v n="$1" -v l="$2" '$1 ~ "^"n"({|$)" && index($1, l) {s += $2} END {printf "%.0f\n", s}'
}
# listeners: the sockets of NETLINK_NETFILTER in the namespace that joined
# NFNLGRP_CONNTRACK_DESTROY (bit 2 of the first word of groups).
listeners() { awk '$2 == 12 && substr($4, length($4), 1) ~ /[4-7c-fC-F]/ {n++} END {print n + 0}' /proc/net/netlink; }

ip link set lo up
port=$((20000 + RANDOM % 20000))
# The scrapes are not tracked; a rule of the filter table on conntrack
# state switches tracking on in the namespace.
iptables-legacy -w -t raw -A OUTPUT -p tcp --dport "$port" -j NOTRACK
iptables-legacy -w -t raw -A OUTPUT -p tcp --sport "$port" -j NOTRACK
iptables-legacy -w -A INPUT -m conntrack --ctstate INVALID -j ACCEPT

echo "# conntrack flush burst: kevent_exporter beside conntrack -E"
echo "date: $(date -u +%F) machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), kernel $(uname -r), $(go version | cut -d' ' -f3), $(conntrack --version 2>&1 | head -1), load average $(cut -d' ' -f1 /proc/loadavg)"
echo

# burst BUFFER: one flush of N entries, both readers on BUFFER bytes.
burst() {
	local buf=$1
	cat >"$out/config.yml" <<YAML
sources:
  - name: conntrack
    protocol: netfilter
    groups: [conntrack_destroy]
    decoder: conntrack
    receive_buffer_bytes: $buf
YAML
	"$out/kevent_exporter" --config.file="$out/config.yml" --web.listen-address="127.0.0.1:$port" 2>"$out/exporter.log" &
	exporter_pid=$!
	conntrack -E -e DESTROY -b "$buf" >/dev/null 2>"$out/ct.err" &
	ct_pid=$!
	for _ in $(seq 1000); do
		[ "$(metric kevent_source_up 'source="conntrack"' 2>/dev/null)" = 1 ] && [ "$(listeners)" = 2 ] && break
		sleep 0.01
	done
	[ "$(listeners)" = 2 ] || { echo "the readers did not subscribe" >&2; cat "$out/exporter.log" "$out/ct.err" >&2; exit 1; }

	"$out/ctfill" -n "$N" >/dev/null
	local count
	count=$(cat /proc/sys/net/netfilter/nf_conntrack_count)
	[ "$count" = "$N" ] || { echo "the table holds $count entries, want $N" >&2; exit 1; }

	local e0 c0 t0 t1 e1 c1 events lost cur last=
	e0=$(ticks "$exporter_pid") c0=$(ticks "$ct_pid")
	t0=$(date +%s.%N)
	conntrack -F 2>/dev/null
	t1=$(date +%s.%N)
	# Both readers are done when neither uses CPU for 0.5 s and the
	# exporter's counts stand still.
	for _ in $(seq 200); do
		cur="$(metric kevent_events_total 'source="conntrack"') $(metric kevent_datagrams_lost_total 'source="conntrack"') $(ticks "$exporter_pid") $(ticks "$ct_pid")"
		[ "$cur" = "$last" ] && break
		last=$cur
		sleep 0.5
	done
	read -r events lost e1 c1 <<<"$cur"
	kill -INT "$ct_pid"
	wait "$ct_pid" || true
	ct_pid=
	kill "$exporter_pid" && wait "$exporter_pid" || true
	exporter_pid=
	local shown hz
	shown=$(sed -n 's/.* \([0-9]*\) flow events have been shown.*/\1/p' "$out/ct.err")
	hz=$(getconf CLK_TCK)
	echo "## $N UDP entries flushed at once, receive buffer $buf bytes (flush took $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", b - a}') s)"
	grep -h NOTICE "$out/ct.err" | sed 's/^/conntrack -E: /' | sort -u
	echo "conntrack -E: received=$shown cpu=$(awk -v d=$((c1 - c0)) -v hz="$hz" 'BEGIN {printf "%.2f", d / hz}')s cpu_per_event=$(awk -v d=$((c1 - c0)) -v hz="$hz" -v n="$shown" 'BEGIN {printf "%.2f", n ? 1e6 * d / hz / n : 0}')us $(grep -c ENOBUFS "$out/ct.err" || true)xENOBUFS"
	echo "exporter:     received=$events lost=$lost cpu=$(awk -v d=$((e1 - e0)) -v hz="$hz" 'BEGIN {printf "%.2f", d / hz}')s cpu_per_event=$(awk -v d=$((e1 - e0)) -v hz="$hz" -v n="$events" 'BEGIN {printf "%.2f", n ? 1e6 * d / hz / n : 0}')us"
	check "accounting ($buf)" "$([ $((events + lost)) = "$N" ] && echo 1)" "events_total + datagrams_lost_total = $((events + lost)) of $N destroyed"
	check "received ($buf)" "$([ "$events" -ge "$shown" ] && echo 1)" "exporter $events >= conntrack -E $shown"
	check "CPU per event ($buf)" "$(awk -v e=$((e1 - e0)) -v c=$((c1 - c0)) -v ne="$events" -v nc="$shown" 'BEGIN {print (ne > 0 && nc > 0 && e / ne < c / nc)}')" \
		"exporter $((e1 - e0)) ticks / $events events < conntrack -E $((c1 - c0)) ticks / $shown events"
	if [ "$buf" = "$BIGBUF" ]; then
		check "no loss ($buf)" "$([ "$lost" = 0 ] && [ "$events" = "$N" ] && echo 1)" "lost $lost"
	fi
	echo
}

burst "$RCVBUF"
burst "$BIGBUF"

[ "$fail" = 0 ] && echo "all checks passed" || { echo "some checks FAILED"; exit 1; }
