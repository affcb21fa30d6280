#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# End-to-end test of kevent_exporter against real kernel netlink: builds the
# kevent module (kmod/), the blog's seed module (vmtest/seedmod/) and a static
# exporter, packs them into a busybox initramfs whose /init (vmtest/init.sh)
# runs the test steps, boots Debian's cloud kernel under qemu (TCG, no KVM)
# and checks the PASS/FAIL lines printed on the serial console.
#
# Usage: vmtest/run.sh            (as root; installs missing Debian packages)
#
# Environment:
#   KVER          kernel version to use (default: newest *-cloud-amd64 with headers)
#   VM_TIMEOUT    seconds before the VM is killed (default 240)
#   WORK          build directory (default: a new /tmp/kevent-vmtest.XXXXXX)
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

log "building the exporter"
(cd "$ROOT" && CGO_ENABLED=0 go build -o "$WORK/kevent_exporter" .) ||
	die "building the exporter failed"

# --- initramfs --------------------------------------------------------------

log "building the initramfs"
IR=$WORK/initramfs
rm -rf "$IR"
mkdir -p "$IR"/{bin,sbin,usr/bin,usr/sbin,etc/kevent,lib/kevent,proc,sys,dev,tmp,root,run}
chmod 1777 "$IR/tmp"
cp /bin/busybox "$IR/bin/busybox"
cp "$WORK/kevent_exporter" "$IR/bin/kevent_exporter"
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
for f in ${VMTEST_EXTRA:-}; do cp "$f" "$IR/bin/"; done

cat >"$IR/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/sh
EOF
cat >"$IR/etc/group" <<'EOF'
root:x:0:
nogroup:x:65534:
EOF
cat >"$IR/etc/kevent/kevent.yml" <<'EOF'
sources:
  - name: kevent
    protocol: 29
    groups: [2]
    decoder: kevent
    receive_buffer_bytes: 8388608
  # The same events through a tiny receive buffer, so that the burst step
  # sees the kernel drop messages and checks they are all accounted for.
  - name: kevent_small
    protocol: 29
    groups: [2]
    decoder: kevent
    receive_buffer_bytes: 4096
EOF
cat >"$IR/etc/kevent/hb.yml" <<'EOF'
sources:
  - name: hb
    protocol: 30
    groups: [5]
    decoder: kevent
EOF
cat >"$IR/etc/kevent/seed.yml" <<'EOF'
sources:
  - name: seed
    protocol: 29
    groups: [2]
    decoder: raw
EOF
cp "$VMTEST_INIT" "$IR/init"
chmod 755 "$IR/init" "$IR/bin/busybox" "$IR/bin/kevent_exporter"
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
summary=$(grep -E '^vmtest: [0-9]+ passed, [0-9]+ failed$' "$SERIAL.txt" | tail -n 1 || true)
if [ -z "$summary" ]; then
	echo "vmtest: no summary line in the serial output"
	fail=1
fi
if grep -q '^FAIL ' "$SERIAL.txt"; then
	fail=1
fi
case "$summary" in
*" 0 failed") ;;
*) fail=1 ;;
esac

echo "vmtest: kernel $KVER, VM ran ${vm_time}s, total $(($(date +%s) - start))s"
grep -E '^(PASS|FAIL) ' "$SERIAL.txt" || true
if [ "$fail" = 0 ]; then
	echo "vmtest: OK"
	[ -n "${KEEP_WORK:-}" ] || case "$WORK" in /tmp/kevent-vmtest.*) rm -rf "$WORK" ;; esac
	exit 0
fi
echo "vmtest: FAILED (serial log: $SERIAL.txt)"
exit 1
