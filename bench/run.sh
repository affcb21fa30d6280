#!/usr/bin/env bash
# Throughput and loss accounting benchmarks: floods NETLINK_USERSOCK and
# compares the exporter with a plain C reader. Run as root (SO_RCVBUFFORCE,
# usersock multicast). Prints a report; docs/benchmarks.md keeps the last one.
#
#	bench/run.sh           full run: drain and live rates, memory bound, scrape cost, allocations
#	bench/run.sh --short   accounting identity only (CI): a few hundred thousand messages, no timing
set -euo pipefail
cd "$(dirname "$0")/.."

short=false
[ "${1:-}" = "--short" ] && short=true

GROUP=${GROUP:-31}             # usersock group this script floods
DRAIN_N=${DRAIN_N:-400000}     # messages queued before a drain
DRAIN_RCVBUF=${DRAIN_RCVBUF:-1073741824}
LIVE_N=${LIVE_N:-2000000}      # messages in a live flood
LIVE_RCVBUF=${LIVE_RCVBUF:-8388608}
REPEAT=${REPEAT:-3}
if $short; then
	DRAIN_N=200000 LIVE_N=300000 LIVE_RCVBUF=262144 REPEAT=1
fi

out=$(mktemp -d)
exporter_pid=
cleanup() {
	[ -n "$exporter_pid" ] && kill "$exporter_pid" 2>/dev/null && wait "$exporter_pid" 2>/dev/null
	rm -rf "$out"
}
trap cleanup EXIT

gcc -O2 -Wall -o "$out/flood" bench/flood.c
gcc -O2 -Wall -o "$out/baseline" bench/baseline.c
gcc -O2 -Wall -o "$out/sockets" bench/sockets.c
go build -o "$out/drain" ./bench/drain
go build -o "$out/kevent_exporter" .

fail=0
check() { # check NAME CONDITION-RESULT(0/1) DETAIL
	if [ "$2" = 1 ]; then echo "PASS $1: $3"; else echo "FAIL $1: $3"; fail=1; fi
}
field() { sed -n "s/.*\b$1=\([0-9.]*\).*/\1/p" <<<"$2" | tail -1; }
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

wait_line() { # wait_line FILE TEXT
	for _ in $(seq 500); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.01; done
	echo "timed out waiting for '$2' in $1" >&2; cat "$1" >&2; return 1
}

# drain READER FLOOD_FORMAT READER_ARGS [FLOOD_ARGS]: the reader binds, the
# flood is queued, then it reads. The group arguments default to usersock's
# -g $GROUP.
drain() {
	local fifo="$out/fifo"
	rm -f "$fifo" && mkfifo "$fifo"
	# shellcheck disable=SC2086 # word-split argument lists
	"$out/$1" ${3:-} -r "$DRAIN_RCVBUF" -n "$DRAIN_N" <"$fifo" >"$out/reader.out" &
	local pid=$!
	exec 3>"$fifo"
	wait_line "$out/reader.out" ready
	# shellcheck disable=SC2086
	"$out/flood" ${4:--g $GROUP} -n "$DRAIN_N" -f "$2" >/dev/null
	echo go >&3
	exec 3>&-
	wait "$pid"
	tail -1 "$out/reader.out"
}

metric() { # metric NAME LABELS: sum of the series of NAME whose labels contain LABELS
	curl -s "http://127.0.0.1:$port/metrics" | awk -v n="$1" -v l="$2" '$1 ~ "^"n"({|$)" && (l == "" || index($1, l)) {s += $2} END {printf "%.0f\n", s}'
}

start_exporter() { # start_exporter DECODER RCVBUF
	port=$((20000 + RANDOM % 20000))
	cat >"$out/config.yml" <<YAML
sources:
  - name: flood
    protocol: usersock
    groups: [$GROUP]
    decoder: $1
    receive_buffer_bytes: $2
YAML
	"$out/kevent_exporter" --config.file="$out/config.yml" --web.listen-address="127.0.0.1:$port" 2>"$out/exporter.log" &
	exporter_pid=$!
	for _ in $(seq 500); do
		[ "$(metric kevent_source_up 'source="flood"' 2>/dev/null)" = 1 ] && return 0
		sleep 0.01
	done
	echo "exporter did not come up" >&2; cat "$out/exporter.log" >&2; return 1
}

stop_exporter() {
	kill "$exporter_pid" && wait "$exporter_pid" || true
	exporter_pid=
}

# exporter_counts: events and lost once they stop moving.
exporter_counts() {
	local last= cur
	for _ in $(seq 200); do
		cur="$(metric kevent_events_total 'source="flood"') $(metric kevent_datagrams_lost_total 'source="flood"')"
		[ "$cur" = "$last" ] && { echo "$cur"; return; }
		last=$cur
		sleep 0.3
	done
	echo "$cur"
}

echo "# kevent_exporter flood benchmark"
echo "date: $(date -u +%F) machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), kernel $(uname -r), $(go version | cut -d' ' -f3)"
echo

# drain_section NAME FLOOD_FORMAT C_ARGS EXPORTER_ARGS [FLOOD_ARGS]: REPEAT
# drains by the C baseline and by the exporter's receive path, their
# accounting checked each time and the median rates compared.
drain_section() {
	local name=$1 format=$2 c_args=$3 e_args=$4 flood_args=${5:-}
	local c_rates=() go_rates=() c g r i cm gm ratio
	for i in $(seq "$REPEAT"); do
		c=$(drain baseline "$format" "$c_args -m drain" "$flood_args")
		g=$(drain drain "$format" "$e_args" "$flood_args")
		echo "C baseline: $c"
		echo "exporter:   $g"
		for r in "$c" "$g"; do
			check "drain accounting ($name)" "$([ $(( $(field received "$r") + $(field lost "$r") )) = "$DRAIN_N" ] && [ "$(field seq_gaps "$r")" = "$(field lost "$r")" ] && echo 1)" \
				"received + lost = $(( $(field received "$r") + $(field lost "$r") )) of $DRAIN_N sent, sequence gaps $(field seq_gaps "$r")"
		done
		c_rates+=("$(field rate "$c")") go_rates+=("$(field rate "$g")")
	done
	if ! $short; then
		cm=$(printf '%s\n' "${c_rates[@]}" | median) gm=$(printf '%s\n' "${go_rates[@]}" | median)
		ratio=$(awk -v g="$gm" -v c="$cm" 'BEGIN {printf "%.2f", g / c}')
		check "drain rate ($name)" "$(awk -v r="$ratio" 'BEGIN {print (r >= 0.7)}')" "median exporter $gm msg/s / C $cm msg/s = ${ratio}x (target >= 0.7x)"
	fi
	echo
}

for fmt in raw kevent; do
	echo "## drain: $DRAIN_N $fmt messages queued on a $DRAIN_RCVBUF-byte buffer, then read"
	drain_section "$fmt" "$fmt" "-g $GROUP" "-g $GROUP -f $fmt"
done

# The generic netlink path: the module's format behind generic netlink
# headers on a family's group (netdev's "mgmt", which every kernel of this
# age has and nothing else floods), from a root sender standing in for the
# module. The exporter side follows the family by name, as a family source
# does, and trusts any sender.
gid=$("$out/drain" -print-group netdev/mgmt)
echo "## drain: $DRAIN_N kevent messages on generic netlink (family netdev, group mgmt = $gid) queued on a $DRAIN_RCVBUF-byte buffer, then read"
drain_section genl genl "-p 16 -g $gid" "-family netdev -group mgmt -f kevent" "-p 16 -g $gid"

echo "## live flood: $LIVE_N raw messages at full speed, $LIVE_RCVBUF-byte buffer"
c_recv=() e_recv=()
for i in $(seq "$REPEAT"); do
	"$out/baseline" -g "$GROUP" -r "$LIVE_RCVBUF" -n "$LIVE_N" -m live >"$out/reader.out" &
	pid=$!
	wait_line "$out/reader.out" ready
	f=$("$out/flood" -g "$GROUP" -n "$LIVE_N" -f raw)
	wait "$pid"
	c=$(tail -1 "$out/reader.out")
	echo "C baseline: $c ($f)"
	c_recv+=("$(field received "$c")")

	start_exporter raw "$LIVE_RCVBUF"
	f=$("$out/flood" -g "$GROUP" -n "$LIVE_N" -f raw)
	read -r events lost < <(exporter_counts)
	overruns=$(metric kevent_receive_overruns_total 'source="flood"')
	stop_exporter
	echo "exporter:   events=$events lost=$lost overruns=$overruns ($f)"
	check "live accounting" "$([ $((events + lost)) = "$LIVE_N" ] && echo 1)" "events_total + datagrams_lost_total = $((events + lost)) of $LIVE_N sent"
	e_recv+=("$events")
done
if ! $short; then
	cm=$(printf '%s\n' "${c_recv[@]}" | median) em=$(printf '%s\n' "${e_recv[@]}" | median)
	ratio=$(awk -v e="$em" -v c="$cm" 'BEGIN {printf "%.3f", e / c}')
	check "live flood" "$(awk -v r="$ratio" 'BEGIN {print (r >= 0.95)}')" "median received: exporter $em / C $cm = ${ratio}x (target >= 0.95x)"
fi
echo

echo "## distinct names: 1000000 kevent messages with 1000000 distinct names, max_events 2000"
start_exporter kevent 67108864
sleep 1
idle=$(awk '/VmRSS/ {print $2}' "/proc/$exporter_pid/status")
"$out/flood" -g "$GROUP" -n 1000000 -f kevent -d 1000000 >/dev/null
read -r events lost < <(exporter_counts)
rss=$(awk '/VmRSS/ {print $2}' "/proc/$exporter_pid/status")
names=$(metric kevent_source_event_names 'source="flood"')
overflow=$(metric kevent_events_total 'event="__overflow__"')
missing=$(metric kevent_sequence_missing_total 'source="flood"')
stop_exporter
echo "idle RSS ${idle} KiB, after ${rss} KiB (+$(( (rss - idle) / 1024 )) MiB); names kept $names; overflow events $overflow; events $events lost $lost; sequence missing $missing"
check "distinct names accounting" "$([ $((events + lost)) = 1000000 ] && [ "$missing" = "$lost" ] && echo 1)" "events + lost = $((events + lost)), sequence missing $missing = lost $lost"
check "distinct names bound" "$([ "$names" = 2000 ] && [ $((rss - idle)) -le 32768 ] && echo 1)" "$names names kept, RSS grew $(( (rss - idle) / 1024 )) MiB (bound 32 MiB)"
echo

if ! $short; then
	echo "## idle cost: 256 sources waiting for an unregistered protocol (29), CPU over 10 s"
	{
		echo "sources:"
		for i in $(seq 0 255); do echo "  - {name: wait$i, protocol: 29, groups: [1], decoder: raw}"; done
	} >"$out/idle.yml"
	port=$((20000 + RANDOM % 20000))
	"$out/kevent_exporter" --config.file="$out/idle.yml" --web.listen-address="127.0.0.1:$port" 2>"$out/exporter.log" &
	exporter_pid=$!
	for _ in $(seq 500); do curl -sf "http://127.0.0.1:$port/metrics" >/dev/null && break; sleep 0.01; done
	sleep 2
	ticks() { awk '{print $14 + $15}' "/proc/$exporter_pid/stat"; }
	t0=$(ticks)
	sleep 10
	t1=$(ticks)
	stop_exporter
	pct=$(awk -v d=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.2f", 100 * d / hz / 10}')
	check "idle cost" "$(awk -v p="$pct" 'BEGIN {print (p <= 2)}')" "256 waiting sources use ${pct}% of a core (target <= 2%; one watcher looks every 100 ms for all)"
	echo

	echo "## idle cost: 1 source waiting for an unregistered protocol (29) with 10000 netlink sockets open, CPU over 10 s"
	mkfifo "$out/sockets.fifo"
	"$out/sockets" -n 10000 <"$out/sockets.fifo" >"$out/sockets.out" &
	sockets_pid=$!
	exec 4>"$out/sockets.fifo"
	wait_line "$out/sockets.out" ready
	printf 'sources:\n  - {name: wait, protocol: 29, groups: [1], decoder: raw}\n' >"$out/wait.yml"
	port=$((20000 + RANDOM % 20000))
	"$out/kevent_exporter" --config.file="$out/wait.yml" --web.listen-address="127.0.0.1:$port" 2>"$out/exporter.log" &
	exporter_pid=$!
	for _ in $(seq 500); do curl -sf "http://127.0.0.1:$port/metrics" >/dev/null && break; sleep 0.01; done
	sleep 2
	t0=$(ticks)
	sleep 10
	t1=$(ticks)
	stop_exporter
	exec 4>&-
	wait "$sockets_pid"
	pct=$(awk -v d=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.2f", 100 * d / hz / 10}')
	check "idle cost with 10000 sockets" "$(awk -v p="$pct" 'BEGIN {print (p <= 2)}')" "1 waiting source uses ${pct}% of a core (target <= 2%; sock_diag, not /proc/net/netlink)"
	echo

	echo "## memory: 500 family sources (nlctrl/notify), then 5 reloads that replace them all"
	family_config() { # family_config GENERATION
		echo "sources:"
		for i in $(seq 0 499); do echo "  - {name: fam${i}_$1, family: nlctrl, groups: [notify], decoder: genl}"; done
	}
	all_up() {
		for _ in $(seq 1000); do [ "$(metric kevent_source_up '' 2>/dev/null)" = 500 ] && return 0; sleep 0.05; done
		echo "the 500 sources did not come up" >&2; return 1
	}
	memory() { sleep 1; echo "RSS $(( $(metric process_resident_memory_bytes '') >> 20 )) MiB, heap $(( $(metric go_memstats_heap_alloc_bytes '') >> 20 )) MiB"; }
	family_config 0 >"$out/families.yml"
	port=$((20000 + RANDOM % 20000))
	"$out/kevent_exporter" --config.file="$out/families.yml" --web.listen-address="127.0.0.1:$port" 2>"$out/exporter.log" &
	exporter_pid=$!
	all_up
	read -r _ rss0 _ _ heap0 _ < <(memory)
	for g in 1 2 3 4 5; do
		family_config "$g" >"$out/families.yml"
		curl -sf -X POST "http://127.0.0.1:$port/-/reload" >/dev/null
		all_up
	done
	read -r _ rss1 _ _ heap1 _ < <(memory)
	stop_exporter
	echo "started: RSS $rss0 MiB, heap $heap0 MiB; after 5 reloads: RSS $rss1 MiB, heap $heap1 MiB"
	check "memory of 500 sources" "$([ "$heap0" -le 32 ] && [ $((rss1 - rss0)) -le 64 ] && echo 1)" \
		"heap $heap0 MiB (target <= 32 MiB), RSS +$((rss1 - rss0)) MiB after 5 reloads (target <= 64 MiB)"
	echo
	echo "## allocations and cost per message (go test -bench Handle -benchmem ./netlinksrc/)"
	go test -run '^$' -bench Handle -benchmem ./netlinksrc/ | grep Benchmark
	echo
	echo "## scrape of 10 000 event names vs client_golang with 10 000 counters (go test -bench Scrape -count 5 ./collector/)"
	go test -run '^$' -bench Scrape -benchmem -count 5 ./collector/ | grep Benchmark | tee "$out/scrape.txt"
	k=$(grep kevent_10k "$out/scrape.txt" | awk '{print $3}' | median)
	c=$(grep client_golang "$out/scrape.txt" | awk '{print $3}' | median)
	ratio=$(awk -v k="$k" -v c="$c" 'BEGIN {printf "%.2f", k / c}')
	check "scrape cost" "$(awk -v r="$ratio" 'BEGIN {print (r <= 1.5)}')" "median $k ns / $c ns = ${ratio}x (target <= 1.5x)"
fi

[ "$fail" = 0 ] && echo "all checks passed" || { echo "some checks FAILED"; exit 1; }
