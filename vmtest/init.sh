#!/bin/busybox sh
# SPDX-License-Identifier: GPL-2.0
#
# /init of the vmtest initramfs (see run.sh): runs as PID 1 in a qemu VM,
# prepares the little the tests need, runs the Go test binary (the tests are
# in vmtest/*_test.go) with the arguments run.sh wrote to /etc/vmtest/args,
# one a line, and powers off.

/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
# Keep kernel messages off the console so that they do not split the test
# output; the tests read the kernel log themselves.
dmesg -n 1
ip link set lo up
# Let the unprivileged exporter get the 8 MiB receive buffer it asks for
# (SO_RCVBUF is capped at rmem_max without CAP_NET_ADMIN).
sysctl -qw net.core.rmem_max=8388608

set --
if [ -f /etc/vmtest/args ]; then
	while IFS= read -r arg; do
		set -- "$@" "$arg"
	done </etc/vmtest/args
fi
cd /tmp
/bin/vmtest.test -test.v "$@"
echo "vmtest: test binary exited with status $?"

sync
poweroff -f
sleep 5
echo o >/proc/sysrq-trigger
