// Package vmtest holds the end-to-end tests that run inside a qemu VM
// booted by run.sh: they load the kevent and seed kernel modules into a real
// kernel and check what a static kevent_exporter makes of their events.
//
// The tests are built only with the vmtest build tag, into a static test
// binary that the VM's /init (init.sh) runs as root:
//
//	CGO_ENABLED=0 go test -c -tags vmtest -o vmtest.test ./vmtest
//
// On the host, without the tag, this package has no tests. See README.md.
package vmtest
