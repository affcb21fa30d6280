#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# End-to-end test of kevent_exporter against real kernel netlink: builds the
# kevent module (kmod/), the blog's seed module (vmtest/seedmod/), a static
# exporter and the static Go test binary of this directory (go test -c -tags
# vmtest), packs them into a busybox initramfs whose /init (vmtest/init.sh)
# runs that binary, boots Debian's cloud kernel under qemu (TCG, no KVM) and
# reads the go test output on the serial console.
#
# Usage: vmtest/run.sh            (as root; installs missing Debian packages)
#
# Environment:
#   KVER          kernel version to use (default: newest *-cloud-amd64 with headers)
#   VM_TIMEOUT    seconds before the VM is killed (default 600); the test
#                 binary's -test.timeout is 30 s less
#   WORK          build directory (default: a new /tmp/kevent-vmtest.XXXXXX)
#   VMTEST_RUN    regular expression passed to -test.run (e.g. Seed, or
#                 '^TestBurstAccounted$'): run only the tests it matches
#   VMTEST_ARGS   more space-separated arguments of the test binary (e.g.
#                 -test.count=2)
#   VMTEST_INIT   init script to boot instead of vmtest/init.sh (debugging)
#   VMTEST_EXTRA  space-separated host files to copy into the initramfs /bin
#   KEEP_WORK=1   keep $WORK even when the test passes
#
# The tests ask for what only the host can do by printing a line on the
# serial console: "vmtest-host: system_powerdown" presses the VM's ACPI power
# button, through qemu's monitor (the pipes $WORK/monitor.in and .out). That
# command is the only one sent, whatever the VM prints.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VM_TIMEOUT=${VM_TIMEOUT:-600}
VMTEST_INIT=${VMTEST_INIT:-$ROOT/vmtest/init.sh}
PACKAGES="linux-image-cloud-amd64 linux-headers-cloud-amd64 qemu-system-x86 busybox-static cpio e2fsprogs dropwatch"

log() { printf '>>> %s\n' "$*" >&2; }
die() { printf 'vmtest: %s\n' "$*" >&2; exit 1; }

start=$(date +%s)

# --- packages ---------------------------------------------------------------

have_kernel() {
	local v
	for v in /boot/vmlinuz-*-cloud-amd64; do
		[ -e "$v" ] || continue
		v=${v#/boot/vmlinuz-}
		[ -d "/usr/src/linux-headers-$v" ] && return 0
	done
	return 1
}

need_install=
command -v qemu-system-x86_64 >/dev/null || need_install=1
command -v cpio >/dev/null || need_install=1
command -v dropwatch >/dev/null || need_install=1
# mkfs.ext4 builds the quota test's filesystem image (in sbin, which a
# user's PATH may lack).
PATH=$PATH:/usr/sbin:/sbin
command -v mkfs.ext4 >/dev/null || need_install=1
# The initramfs needs a static busybox (ldd fails on static executables).
if [ ! -x /bin/busybox ] || ldd /bin/busybox >/dev/null 2>&1; then
	need_install=1
fi
have_kernel || need_install=1
if [ -n "$need_install" ]; then
	[ "$(id -u)" = 0 ] || die "missing packages ($PACKAGES) and not root"
	log "installing $PACKAGES"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q >&2
	# shellcheck disable=SC2086
	apt-get install -y -q --no-install-recommends $PACKAGES make gcc >&2
fi
command -v go >/dev/null || die "go not found in PATH"

if [ -z "${KVER:-}" ]; then
	KVER=$(for v in /boot/vmlinuz-*-cloud-amd64; do
		v=${v#/boot/vmlinuz-}
		[ -d "/usr/src/linux-headers-$v" ] && echo "$v"
	done | sort -V | tail -n 1)
fi
[ -n "$KVER" ] || die "no /boot/vmlinuz-*-cloud-amd64 with matching headers"
KERNEL=/boot/vmlinuz-$KVER
KDIR=/usr/src/linux-headers-$KVER
[ -r "$KERNEL" ] || die "$KERNEL not readable"
log "kernel $KVER"

# --- build ------------------------------------------------------------------

WORK=${WORK:-$(mktemp -d /tmp/kevent-vmtest.XXXXXX)}
mkdir -p "$WORK"
log "work directory $WORK"

build_module() { # src-dir name
	local src=$1 name=$2 out
	rm -rf "$WORK/build/$name"
	mkdir -p "$WORK/build/$name"
	cp -a "$src"/. "$WORK/build/$name/"
	if ! out=$(make -C "$KDIR" M="$WORK/build/$name" W=1 modules 2>&1); then
		printf '%s\n' "$out" >&2
		die "building $name failed"
	fi
	if printf '%s\n' "$out" | grep -E 'warning:|error:' >&2; then
		die "building $name produced warnings"
	fi
	[ -f "$WORK/build/$name/$name.ko" ] || die "$name.ko not built"
}

log "building kevent.ko and seed.ko"
build_module "$ROOT/kmod" kevent
build_module "$ROOT/vmtest/seedmod" seed

log "building the exporter and the test binary"
(cd "$ROOT" && CGO_ENABLED=0 go build -o "$WORK/kevent_exporter" .) ||
	die "building the exporter failed"
(cd "$ROOT" && CGO_ENABLED=0 go test -c -tags vmtest -o "$WORK/vmtest.test" ./vmtest) ||
	die "building the test binary failed"

# --- initramfs --------------------------------------------------------------

log "building the initramfs"
IR=$WORK/initramfs
rm -rf "$IR"
mkdir -p "$IR"/{bin,sbin,usr/bin,usr/sbin,etc/vmtest,lib/kevent,proc,sys,dev,tmp,root,run}
chmod 1777 "$IR/tmp"
cp /bin/busybox "$IR/bin/busybox"
cp "$WORK/kevent_exporter" "$WORK/vmtest.test" "$IR/bin/"
cp "$WORK/build/kevent/kevent.ko" "$WORK/build/seed/seed.ko" "$IR/lib/kevent/"
# Modules of the cloud kernel that the tests load themselves (the VM has no
# modprobe): dummy for the netdevice step, button for the ACPI power button,
# loop, quota_tree and quota_v2 for the quota warnings, xfrm_algo, xfrm_user,
# esp4, authenc, echainiv and drbg (the default RNG, which echainiv seeds
# from) for an ESP SA: the crypto API would modprobe the last three. A
# kernel that has one built in has no .ko to copy.
copy_kernel_module() { # path under /lib/modules/$KVER/kernel, without .ko
	local name f
	name=$(basename "$1")
	f=$(find "/lib/modules/$KVER/kernel/$(dirname "$1")" -maxdepth 1 -name "$name.ko*" 2>/dev/null | head -n 1)
	case "$f" in
	'') return 1 ;;
	*.xz) xz -dc "$f" >"$IR/lib/kevent/$name.ko" ;;
	*.zst) zstd -dcq "$f" >"$IR/lib/kevent/$name.ko" ;;
	*.gz) gzip -dc "$f" >"$IR/lib/kevent/$name.ko" ;;
	*) cp "$f" "$IR/lib/kevent/$name.ko" ;;
	esac
}
copy_kernel_module drivers/net/dummy || log "no dummy.ko for $KVER: the netdevice step will use lo"
for m in drivers/acpi/button drivers/block/loop fs/quota/quota_tree fs/quota/quota_v2 \
	net/xfrm/xfrm_algo net/xfrm/xfrm_user net/ipv4/esp4 crypto/authenc crypto/echainiv \
	crypto/drbg net/core/drop_monitor; do
	copy_kernel_module "$m" || log "no $(basename "$m").ko for $KVER: built in?"
done
chmod 644 "$IR"/lib/kevent/*.ko
# A small ext4 with the quota feature (user quotas, in hidden inodes), for
# the quota warnings; no journal, which quotas do not need.
mkfs.ext4 -q -F -b 1024 -O quota,^has_journal -E quotatype=usrquota \
	"$IR/lib/kevent/quota.img" 4M || die "mkfs.ext4 of the quota image failed"
for f in ${VMTEST_EXTRA:-}; do cp "$f" "$IR/bin/"; done
# dropwatch and the libraries it loads, for TestDropMonitorStorm to compare
# the drop monitor source's received share with it.
if dw=$(command -v dropwatch); then
	cp "$dw" "$IR/bin/dropwatch"
	for lib in $(ldd "$dw" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}'); do
		mkdir -p "$IR$(dirname "$lib")"
		cp -L "$lib" "$IR$lib"
	done
else
	log "no dropwatch: TestDropMonitorStorm measures the exporter alone"
fi

# The test binary's arguments, one a line (init.sh reads them): a timeout
# that leaves the VM time to boot and power off, and the VMTEST_* knobs.
test_timeout=$((VM_TIMEOUT - 30))
[ "$test_timeout" -ge 10 ] || test_timeout=10
{
	echo "-test.timeout=${test_timeout}s"
	[ -z "${VMTEST_RUN:-}" ] || printf -- '-test.run=%s\n' "$VMTEST_RUN"
	for a in ${VMTEST_ARGS:-}; do printf '%s\n' "$a"; done
} >"$IR/etc/vmtest/args"
cp "$VMTEST_INIT" "$IR/init"
chmod 755 "$IR/init" "$IR/bin/busybox" "$IR/bin/kevent_exporter" "$IR/bin/vmtest.test"
(cd "$IR" && find . | LC_ALL=C sort | cpio -o -H newc --quiet | gzip -1) >"$WORK/initramfs.cpio.gz"

# --- boot -------------------------------------------------------------------

log "booting $KERNEL under qemu (TCG, timeout ${VM_TIMEOUT}s)"
SERIAL=$WORK/serial.log
: >"$SERIAL"
# qemu's monitor on two named pipes. This shell holds both open read-write,
# so that neither opening nor writing ever blocks, whether qemu is up or not;
# cat keeps the monitor's output (its prompts and echoes) for debugging.
MONITOR=$WORK/monitor
rm -f "$MONITOR.in" "$MONITOR.out"
mkfifo -m 600 "$MONITOR.in" "$MONITOR.out"
exec 3<>"$MONITOR.in" 4<>"$MONITOR.out"
cat <&4 >"$WORK/monitor.log" &
monitor_log_pid=$!

# answer_vm sends a command on the monitor for each request line the VM
# prints, in order: only system_powerdown.
answer_vm() {
	local sent=0 n
	while sleep 0.2; do
		n=$(grep -c '^vmtest-host: system_powerdown' "$SERIAL" 2>/dev/null) || n=0
		while [ "$sent" -lt "$n" ]; do
			printf 'system_powerdown\n' >&3
			sent=$((sent + 1))
			log "pressed the VM's power button (request $sent)"
		done
	done
}

vm_start=$(date +%s)
set +e
timeout --kill-after=10 "$VM_TIMEOUT" qemu-system-x86_64 \
	-accel tcg -m 512 -smp 1 -nographic -no-reboot \
	-monitor "pipe:$MONITOR" \
	-kernel "$KERNEL" -initrd "$WORK/initramfs.cpio.gz" \
	-append 'console=ttyS0 panic=-1 quiet' </dev/null >"$SERIAL" 2>&1 &
qemu_pid=$!
answer_vm &
answer_pid=$!
wait "$qemu_pid"
qemu_rc=$?
kill "$answer_pid" "$monitor_log_pid" 2>/dev/null
wait "$answer_pid" "$monitor_log_pid" 2>/dev/null
exec 3>&- 4>&-
set -e
vm_time=$(($(date +%s) - vm_start))

# Drop carriage returns and the firmware's terminal escape sequences.
tr -d '\r' <"$SERIAL" | sed 's/\x1b\[[0-9;?]*[A-Za-z]//g; s/\x1bc//g' >"$SERIAL.txt"
cat "$SERIAL.txt"
echo

fail=0
if [ "$qemu_rc" = 124 ] || [ "$qemu_rc" = 137 ]; then
	echo "vmtest: TIMEOUT: the VM did not power off within ${VM_TIMEOUT}s"
	fail=1
elif [ "$qemu_rc" != 0 ]; then
	echo "vmtest: qemu exited with status $qemu_rc"
	fail=1
fi
# The go test -v output: "--- PASS: TestX (1.23s)" or "--- FAIL: ..." per
# test (indented for subtests), then "PASS" or "FAIL" alone on a line, then
# init.sh's line with the binary's exit status. A panic (such as
# -test.timeout) prints neither PASS nor FAIL.
passed=$(grep -cE '^--- PASS: ' "$SERIAL.txt" || true)
failed=$(grep -cE '^--- FAIL: ' "$SERIAL.txt" || true)
verdict=$(grep -E '^(PASS|FAIL)$' "$SERIAL.txt" | tail -n 1 || true)
status=$(sed -n 's/^vmtest: test binary exited with status \([0-9]*\)$/\1/p' "$SERIAL.txt" | tail -n 1)
if [ -z "$status" ]; then
	echo "vmtest: the test binary did not finish"
	fail=1
elif [ "$status" != 0 ]; then
	echo "vmtest: the test binary exited with status $status"
	fail=1
fi
if [ "$verdict" != PASS ]; then
	echo "vmtest: the go test output ends in '${verdict:-neither PASS nor FAIL}'"
	fail=1
fi
# A panic, and the tests it interrupted (-test.timeout lists them).
sed -n '/^panic: /{s/^/vmtest: /p;n;/running tests:/{:a;n;/^\t\t/{s/^\t\t/vmtest: interrupted: /p;ba}}}' "$SERIAL.txt"
if grep -qE '^ *--- FAIL: ' "$SERIAL.txt"; then
	fail=1
fi
if [ "$passed" = 0 ]; then
	echo "vmtest: no test passed${VMTEST_RUN:+ (VMTEST_RUN=$VMTEST_RUN)}"
	fail=1
fi

echo "vmtest: kernel $KVER, VM ran ${vm_time}s, total $(($(date +%s) - start))s"
grep -E '^ *--- (PASS|FAIL): ' "$SERIAL.txt" || true
echo "vmtest: $passed passed, $failed failed"
if [ "$fail" = 0 ]; then
	echo "vmtest: OK"
	[ -n "${KEEP_WORK:-}" ] || case "$WORK" in /tmp/kevent-vmtest.*) rm -rf "$WORK" ;; esac
	exit 0
fi
echo "vmtest: FAILED (serial log: $SERIAL.txt)"
exit 1
