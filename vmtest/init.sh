#!/bin/busybox sh
# SPDX-License-Identifier: GPL-2.0
#
# /init of the vmtest initramfs (see run.sh): runs as PID 1 in a qemu VM,
# prints one "PASS step N: ..." or "FAIL step N: ..." line per step, then
# "vmtest: P passed, F failed", and powers off.

/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
# Keep kernel messages off the console so that they do not split our lines;
# they are printed from dmesg when something fails.
dmesg -n 1
ip link set lo up
# Let the unprivileged exporter get the 8 MiB receive buffer it asks for
# (SO_RCVBUF is capped at rmem_max without CAP_NET_ADMIN).
sysctl -qw net.core.rmem_max=8388608

MODDIR=/lib/kevent
PORT=9736
URL=http://127.0.0.1:$PORT/metrics
ATTACH_LIMIT_MS=${ATTACH_LIMIT_MS:-1000}
BURST=100000

passed=0
failed=0
exporter_pid=
exporter_log=

say() { echo "$*"; }
pass() { passed=$((passed + 1)); say "PASS step $1: $2"; }
fail() {
	failed=$((failed + 1))
	say "FAIL step $1: $2"
	dump_logs
}

dump_logs() {
	if [ -n "$exporter_log" ] && [ -f "$exporter_log" ]; then
		say "---- exporter log ($exporter_log, last 40 lines) ----"
		tail -n 40 "$exporter_log"
	fi
	say "---- dmesg (last 30 lines) ----"
	dmesg | tail -n 30
	say "----"
}

# Milliseconds since boot.
now_ms() { awk '{ printf "%d\n", $1 * 1000 }' /proc/uptime; }

# scrape: fetch /metrics into /tmp/metrics; fails when the exporter does not answer.
# (busybox 1.35 wget -T segfaults: bound it with timeout instead.)
scrape() { timeout 5 wget -q -O /tmp/metrics "$URL" 2>/dev/null; }

# mval SERIES: value of the series written exactly as SERIES (name{labels}),
# from the last scrape; prints nothing when absent.
mval() {
	awk -v k="$1" 'index($0, k " ") == 1 { print substr($0, length(k) + 2); exit }' /tmp/metrics
}

# wait_metric SERIES VALUE TIMEOUT_MS: poll every ~100 ms until SERIES == VALUE.
wait_metric() {
	_deadline=$(($(now_ms) + $3))
	while :; do
		if scrape && [ "$(mval "$1")" = "$2" ]; then
			return 0
		fi
		[ "$(now_ms)" -ge "$_deadline" ] && return 1
		usleep 100000
	done
}

# start_exporter USER CONFIG LOG: start the exporter as USER (root or nobody),
# set exporter_pid, and wait until it serves /metrics.
start_exporter() {
	exporter_log=$3
	if [ "$1" = root ]; then
		kevent_exporter --config.file="$2" --web.listen-address=":$PORT" >"$3" 2>&1 &
	else
		# busybox su execs the shell, which execs the exporter: $! is its pid.
		su -s /bin/sh "$1" -c "exec /bin/kevent_exporter --config.file=$2 --web.listen-address=:$PORT" >"$3" 2>&1 &
	fi
	exporter_pid=$!
	_deadline=$(($(now_ms) + 30000))
	until scrape; do
		if ! kill -0 "$exporter_pid" 2>/dev/null || [ "$(now_ms)" -ge "$_deadline" ]; then
			return 1
		fi
		usleep 100000
	done
	return 0
}

stop_exporter() {
	[ -n "$exporter_pid" ] || return 0
	kill "$exporter_pid" 2>/dev/null
	_i=0
	while kill -0 "$exporter_pid" 2>/dev/null && [ $_i -lt 100 ]; do
		usleep 100000
		_i=$((_i + 1))
	done
	kill -9 "$exporter_pid" 2>/dev/null
	wait "$exporter_pid" 2>/dev/null
	exporter_pid=
}

module_loaded() { grep -q "^$1 " /proc/modules; }

finish() {
	stop_exporter
	say "vmtest: $passed passed, $failed failed"
	sync
	poweroff -f
	sleep 5
	echo o >/proc/sysrq-trigger
}

say "vmtest: kernel $(uname -r), $(grep -c ^processor /proc/cpuinfo) cpu"

# ---------------------------------------------------------------------------
# Step 1: an unprivileged exporter started before the module attaches within
# ATTACH_LIMIT_MS of insmod and turns sysfs-emitted events into metrics.

S=kevent
if ! start_exporter nobody /etc/kevent/kevent.yml /tmp/exporter-kevent.log; then
	fail 1 "the exporter did not start serving $URL"
	finish
fi
say "exporter pid $exporter_pid running as nobody, /metrics answers; source_up before insmod: $(mval "kevent_source_up{source=\"$S\"}")"

t0=$(now_ms)
if ! insmod $MODDIR/kevent.ko heartbeat_ms=0; then
	fail 1 "insmod kevent.ko failed"
	finish
fi
if wait_metric "kevent_source_up{source=\"$S\"}" 1 5000; then
	attach_ms=$(($(now_ms) - t0))
else
	attach_ms=-1
fi
say "kevent_source_up{source=\"$S\"} 1 seen ${attach_ms} ms after insmod (limit ${ATTACH_LIMIT_MS} ms)"

echo "disk_full 42 /dev/sda1" >/sys/kernel/kevent/emit
echo "temp_c -5" >/sys/kernel/kevent/emit
echo "job.done:x-1 7 payload with  spaces" >/sys/kernel/kevent/emit
wait_metric "kevent_events_total{event=\"job.done:x-1\",source=\"$S\"}" 1 5000
ok=1
check() { # SERIES EXPECTED
	_v=$(mval "$1")
	say "  $1 = ${_v:-<absent>} (want $2)"
	[ "$_v" = "$2" ] || ok=0
}
check "kevent_events_total{event=\"disk_full\",source=\"$S\"}" 1
check "kevent_event_last_value{event=\"disk_full\",source=\"$S\"}" 42
check "kevent_event_last_payload_info{event=\"disk_full\",payload=\"/dev/sda1\",source=\"$S\"}" 1
check "kevent_events_total{event=\"temp_c\",source=\"$S\"}" 1
check "kevent_event_last_value{event=\"temp_c\",source=\"$S\"}" -5
check "kevent_event_last_payload_info{event=\"job.done:x-1\",payload=\"payload with  spaces\",source=\"$S\"}" 1
if [ "$attach_ms" -ge 0 ] && [ "$attach_ms" -le "$ATTACH_LIMIT_MS" ] && [ $ok = 1 ]; then
	pass 1 "unprivileged exporter attached ${attach_ms} ms after insmod; disk_full=42 /dev/sda1 and 2 more events exported"
else
	fail 1 "attach ${attach_ms} ms (limit ${ATTACH_LIMIT_MS}), metrics ok=$ok"
fi

# ---------------------------------------------------------------------------
# Step 7 (run here, before the burst): malformed writes are rejected with
# EINVAL, send nothing and leave no kernel warning.

seq_of() { awk '$1 == "seq" { print $2 }' /sys/kernel/kevent/stats; }
seq_before=$(seq_of)
long=$(printf '%065d' 0 | tr 0 a)
ok=1
for input in "" "   " "disk_full" "disk_full abc" "disk_full 12x" "disk_full 99999999999999999999" \
	"bad/name 1" "bad\$name 1" "$long 1" "name 1 $(printf 'x%.0s' $(seq 1 300))" \
	"burst-only 1 2 3"; do
	# A child shell, so that its "write error" message lands in /tmp/err.
	if sh -c 'echo "$1" >/sys/kernel/kevent/emit' _ "$input" 2>/tmp/err; then
		# "burst-only 1 2 3" is a valid emit (payload "2 3"); everything else must fail.
		[ "$input" = "burst-only 1 2 3" ] || { say "  emit accepted: '$input'"; ok=0; }
	else
		grep -q 'Invalid argument' /tmp/err ||
			{ say "  emit '$input': $(cat /tmp/err)"; ok=0; }
	fi
done
for input in "" "flood" "flood 1" "flood 1 0" "flood 1 -3" "flood 1 x" "flood 1 10000001" \
	"flood 1 2 extra" "fl ood 1 2"; do
	if sh -c 'echo "$1" >/sys/kernel/kevent/burst' _ "$input" 2>/tmp/err; then
		say "  burst accepted: '$input'"
		ok=0
	fi
done
seq_after=$(seq_of)
# Exactly one valid write above ("burst-only 1 2 3").
[ "$seq_after" = $((seq_before + 1)) ] || { say "  seq moved from $seq_before to $seq_after"; ok=0; }
if dmesg | grep -qE 'WARNING:|BUG:|Oops|Call Trace'; then
	say "  kernel warning in dmesg"
	ok=0
fi
stat -c '  %A %n' /sys/kernel/kevent/*
if [ $ok = 1 ]; then
	pass 7 "malformed emit/burst writes rejected with EINVAL, nothing sent, no kernel warning"
else
	fail 7 "malformed input handling"
fi

# ---------------------------------------------------------------------------
# Step 2: a burst of $BURST events is fully accounted for, received + lost,
# by the source with an 8 MiB buffer ("kevent") and by one with a 4 KiB
# buffer ("kevent_small") that must lose messages.

counts() { # SOURCE: "received lost missing" from the last scrape
	echo "$(mval "kevent_events_total{event=\"flood\",source=\"$1\"}") $(mval "kevent_messages_lost_total{source=\"$1\"}") $(mval "kevent_sequence_missing_total{source=\"$1\"}")"
}
t0=$(now_ms)
timeout 180 sh -c "echo 'flood 1 $BURST' >/sys/kernel/kevent/burst"
burst_rc=$?
t1=$(now_ms)
# Wait until the counts stop moving (3 identical scrapes 300 ms apart) or
# add up.
prev=
stable=0
deadline=$(($(now_ms) + 60000))
while [ $stable -lt 3 ] && [ "$(now_ms)" -lt "$deadline" ]; do
	usleep 300000
	scrape || continue
	cur="$(counts kevent) $(counts kevent_small)"
	if [ "$cur" = "$prev" ]; then stable=$((stable + 1)); else stable=0; fi
	prev=$cur
	echo "$cur" | awk -v n="$BURST" '{ exit !($1 + $2 >= n && $4 + $5 >= n) }' && break
done
# A gap is seen only when a later event arrives: if the burst's last
# messages were dropped, only the next event reveals them. Send one.
echo "sync 0" >/sys/kernel/kevent/emit
wait_metric "kevent_events_total{event=\"sync\",source=\"kevent\"}" 1 10000
wait_metric "kevent_events_total{event=\"sync\",source=\"kevent_small\"}" 1 10000 ||
	say "  the sync event did not reach kevent_small"
t2=$(now_ms)
say "  burst write took $((t1 - t0)) ms (rc $burst_rc), counts settled $((t2 - t1)) ms later"
say "  module stats: $(tr '\n' ' ' </sys/kernel/kevent/stats)"
ok=1
[ "$burst_rc" = 0 ] || ok=0
summary=
for src in kevent kevent_small; do
	# shellcheck disable=SC2046 # split into received, lost, missing
	set -- $(counts $src)
	recv=$1 lost=$2 missing=$3
	say "  source $src: received ${recv:-<absent>}, lost ${lost:-<absent>}, sequence_missing ${missing:-<absent>}"
	if ! awk -v r="$recv" -v l="$lost" -v m="$missing" -v n="$BURST" \
		'BEGIN { exit !(r != "" && l != "" && m != "" && r + l == n && m == l) }'; then
		say "  source $src: received + lost != $BURST or sequence_missing != lost"
		ok=0
	fi
	summary="$summary $src $recv+$lost,"
done
# The 4 KiB buffer must have overflowed, or the accounting was not tested.
[ "${lost:-0}" -gt 0 ] || { say "  kevent_small lost nothing"; ok=0; }
if [ $ok = 1 ]; then
	pass 2 "burst of $BURST accounted for exactly (received+lost):${summary%,} = $BURST each; sequence_missing = lost"
else
	fail 2 "burst of $BURST not accounted for"
fi

# ---------------------------------------------------------------------------
# Step 3: netdevice notifier events.

ok=1
# dummy is a module in Debian's cloud kernel (run.sh copies it), built in elsewhere.
[ -f $MODDIR/dummy.ko ] && insmod $MODDIR/dummy.ko numdummies=0
if ip link add d0 type dummy 2>/dev/null; then
	dev=d0
	ifindex=$(cat /sys/class/net/d0/ifindex)
	ip link set d0 up
	ip link set d0 down
	ip link del d0
	events="netdev_register netdev_up netdev_down netdev_unregister"
else
	say "  no dummy interface: using lo"
	dev=lo
	ifindex=$(cat /sys/class/net/lo/ifindex)
	ip link set lo down
	ip link set lo up
	events="netdev_down netdev_up"
fi
for ev in $events; do
	if wait_metric "kevent_event_last_payload_info{event=\"$ev\",payload=\"$dev\",source=\"$S\"}" 1 5000; then
		say "  $ev: total $(mval "kevent_events_total{event=\"$ev\",source=\"$S\"}"), last value $(mval "kevent_event_last_value{event=\"$ev\",source=\"$S\"}"), payload $dev"
		[ "$(mval "kevent_event_last_value{event=\"$ev\",source=\"$S\"}")" = "$ifindex" ] || ok=0
	else
		say "  $ev for $dev not exported"
		ok=0
	fi
done
if [ $ok = 1 ]; then
	pass 3 "netdevice events for $dev (ifindex $ifindex) exported: $events"
else
	fail 3 "netdevice events for $dev"
fi

# ---------------------------------------------------------------------------
# Step 4: the exporter ran unprivileged all along.

uids=$(awk '$1 == "Uid:" { print $2, $3, $4, $5 }' /proc/$exporter_pid/status)
gids=$(awk '$1 == "Gid:" { print $2, $3, $4, $5 }' /proc/$exporter_pid/status)
capeff=$(awk '$1 == "CapEff:" { print $2 }' /proc/$exporter_pid/status)
capprm=$(awk '$1 == "CapPrm:" { print $2 }' /proc/$exporter_pid/status)
comm=$(cat /proc/$exporter_pid/comm)
scrape
total=$(awk '/^kevent_events_total\{/ && /source="kevent"/ { s += $NF } END { print s + 0 }' /tmp/metrics)
say "  pid $exporter_pid ($comm): Uid $uids, Gid $gids, CapEff $capeff, CapPrm $capprm; $total events received"
if [ "$comm" = kevent_exporter ] && [ "$uids" = "65534 65534 65534 65534" ] &&
	[ "$gids" = "65534 65534 65534 65534" ] && [ "$capeff" = 0000000000000000 ] &&
	[ "$capprm" = 0000000000000000 ] && [ "$total" -gt 0 ]; then
	pass 4 "exporter ran as uid/gid 65534 with no capabilities and received $total events"
else
	fail 4 "exporter privileges: Uid $uids Gid $gids CapEff $capeff ($comm)"
fi

# ---------------------------------------------------------------------------
# Step 6: rmmod fails while the exporter holds a socket of the module's
# protocol, and succeeds once it is stopped.

rmmod kevent >/tmp/rmmod.out 2>&1
rc1=$?
rmmod_err=$(cat /tmp/rmmod.out)
held=no
module_loaded kevent && held=yes
say "  rmmod while the exporter runs: exit $rc1, '$(cat /tmp/rmmod.out)', still loaded: $held"
say "  /proc/modules: $(grep '^kevent ' /proc/modules)"
stop_exporter
rmmod kevent >/tmp/rmmod.out 2>&1
rc2=$?
gone=yes
module_loaded kevent && gone=no
[ -e /sys/kernel/kevent ] && gone=no
say "  rmmod after stopping the exporter: exit $rc2 '$(cat /tmp/rmmod.out)', unloaded: $gone"
dmesg | grep 'kevent: unloaded' | tail -n 1 | sed 's/^/  /'
if [ $rc1 != 0 ] && [ $held = yes ] && [ $rc2 = 0 ] && [ $gone = yes ]; then
	pass 6 "rmmod refused while the listener held the protocol (exit $rc1: $rmmod_err), succeeded after it stopped"
else
	fail 6 "rmmod: with listener exit $rc1 (loaded: $held), without exit $rc2 (unloaded: $gone)"
fi

# ---------------------------------------------------------------------------
# Step 5: the blog scenario: a root exporter with a raw source receives the
# seed module's "Hello from kernel" (type NLMSG_DONE, no NUL, 10 s after load).

S=seed
if module_loaded kevent; then
	fail 5 "kevent still loaded, protocol 29 busy"
	finish
fi
if ! start_exporter root /etc/kevent/seed.yml /tmp/exporter-seed.log; then
	fail 5 "the root exporter did not start serving $URL"
	finish
fi
t0=$(now_ms)
if ! insmod $MODDIR/seed.ko; then
	fail 5 "insmod seed.ko failed"
	finish
fi
t_ins=$(($(now_ms) - t0))
if wait_metric "kevent_source_up{source=\"$S\"}" 1 5000; then
	attach_ms=$(($(now_ms) - t0))
else
	attach_ms=-1
fi
say "  insmod seed.ko returned after ${t_ins} ms; source attached after ${attach_ms} ms"
wait_metric "kevent_events_total{event=\"done\",source=\"$S\"}" 1 20000
got_ms=$(($(now_ms) - t0))
ok=1
check "kevent_events_total{event=\"done\",source=\"$S\"}" 1
check "kevent_event_last_payload_info{event=\"done\",payload=\"Hello from kernel\",source=\"$S\"}" 1
say "  message exported ${got_ms} ms after insmod"
if [ $ok = 1 ] && [ "$attach_ms" -ge 0 ] && [ "$t_ins" -lt 5000 ] && [ "$got_ms" -ge 9000 ]; then
	pass 5 "root exporter with raw source got 'Hello from kernel' as event done ${got_ms} ms after insmod"
else
	fail 5 "seed scenario (attach ${attach_ms} ms, message at ${got_ms} ms, insmod ${t_ins} ms)"
fi
stop_exporter

# ---------------------------------------------------------------------------
# Step 8: module parameters. Out-of-range values fail insmod and leave
# nothing registered; a protocol that is taken (seed holds 29) fails too;
# protocol=30 group=5 heartbeat_ms=200 sends heartbeats to an exporter.

ok=1
for args in protocol=16 protocol=32 group=0 group=33 protocol=abc ""; do
	if insmod $MODDIR/kevent.ko $args 2>/tmp/err; then
		say "  insmod kevent.ko $args: accepted"
		ok=0
		rmmod kevent
	else
		say "  insmod kevent.ko ${args:-(protocol 29, held by seed)}: $(cat /tmp/err)"
	fi
	if module_loaded kevent || [ -e /sys/kernel/kevent ]; then
		say "  something left registered"
		ok=0
	fi
done
dmesg | grep -E 'kevent: (protocol|group|cannot)' | sed 's/^/  /'
rmmod seed || ok=0

S=hb
if start_exporter nobody /etc/kevent/hb.yml /tmp/exporter-hb.log &&
	insmod $MODDIR/kevent.ko protocol=30 group=5 heartbeat_ms=200; then
	say "  parameters: protocol=$(cat /sys/module/kevent/parameters/protocol) group=$(cat /sys/module/kevent/parameters/group) heartbeat_ms=$(cat /sys/module/kevent/parameters/heartbeat_ms)"
	deadline=$(($(now_ms) + 10000))
	hb=0
	while [ "$(now_ms)" -lt "$deadline" ]; do
		scrape && hb=$(mval "kevent_event_last_value{event=\"heartbeat\",source=\"$S\"}")
		[ "${hb:-0}" -ge 5 ] && break
		usleep 200000
	done
	n=$(mval "kevent_events_total{event=\"heartbeat\",source=\"$S\"}")
	missing=$(mval "kevent_sequence_missing_total{source=\"$S\"}")
	say "  heartbeats: last value ${hb:-<absent>}, received ${n:-<absent>}, sequence_missing ${missing:-<absent>}"
	[ "${hb:-0}" -ge 5 ] && [ "${n:-0}" -ge 3 ] && [ "$missing" = 0 ] || ok=0
else
	say "  exporter or insmod protocol=30 group=5 failed"
	ok=0
fi
stop_exporter
rmmod kevent || ok=0
if [ $ok = 1 ]; then
	pass 8 "bad parameters and a taken protocol fail insmod cleanly; protocol=30 group=5 heartbeat_ms=200 heartbeats exported"
else
	fail 8 "module parameters"
fi

finish
