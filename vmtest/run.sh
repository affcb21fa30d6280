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
#   VM_TIMEOUT    seconds before the VM is killed (default 240); the test
#                 binary's -test.timeout is 30 s less
#   WORK          build directory (default: a new /tmp/kevent-vmtest.XXXXXX)
#   VMTEST_RUN    regular expression passed to -test.run (e.g. Seed, or
#                 '^TestBurstAccounted$'): run only the tests it matches
#   VMTEST_ARGS   more space-separated arguments of the test binary (e.g.
#                 -attach-limit=2s -test.count=2)
#   VMTEST_INIT   init script to boot instead of vmtest/init.sh (debugging)
#   VMTEST_EXTRA  space-separated host files to copy into the initramfs /bin
#   KEEP_WORK=1   keep $WORK even when the test passes
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VM_TIMEOUT=${VM_TIMEOUT:-240}
VMTEST_INIT=${VMTEST_INIT:-$ROOT/vmtest/init.sh}
PACKAGES="linux-image-cloud-amd64 linux-headers-cloud-amd64 qemu-system-x86 busybox-static cpio"

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
# The cloud kernel has dummy as a module: bring it for the netdevice step.
dummy=$(find "/lib/modules/$KVER/kernel/drivers/net" -maxdepth 1 -name 'dummy.ko*' 2>/dev/null | head -n 1)
case "$dummy" in
'') log "no dummy.ko for $KVER: the netdevice step will use lo" ;;
*.xz) xz -dc "$dummy" >"$IR/lib/kevent/dummy.ko" ;;
*.zst) zstd -dcq "$dummy" >"$IR/lib/kevent/dummy.ko" ;;
*.gz) gzip -dc "$dummy" >"$IR/lib/kevent/dummy.ko" ;;
*) cp "$dummy" "$IR/lib/kevent/dummy.ko" ;;
esac
chmod 644 "$IR"/lib/kevent/*.ko
for f in ${VMTEST_EXTRA:-}; do cp "$f" "$IR/bin/"; done

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
vm_start=$(date +%s)
set +e
timeout --kill-after=10 "$VM_TIMEOUT" qemu-system-x86_64 \
	-accel tcg -m 512 -smp 1 -nographic -no-reboot \
	-kernel "$KERNEL" -initrd "$WORK/initramfs.cpio.gz" \
	-append 'console=ttyS0 panic=-1 quiet' </dev/null >"$SERIAL" 2>&1
qemu_rc=$?
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
