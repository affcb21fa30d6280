package decoder

import (
	"testing"

	"golang.org/x/sys/unix"
)

// TestUAPIConstants checks the kernel's constants the package defines for
// itself, so that it builds on any GOOS, against golang.org/x/sys/unix's.
func TestUAPIConstants(t *testing.T) {
	for _, c := range []struct {
		name      string
		got, want int
	}{
		{"NETLINK_ROUTE", netlinkRoute, unix.NETLINK_ROUTE},
		{"NETLINK_CONNECTOR", netlinkConnector, unix.NETLINK_CONNECTOR},
	} {
		if c.got != c.want {
			t.Errorf("%s: the decoder says %d, golang.org/x/sys/unix %d", c.name, c.got, c.want)
		}
	}
}
