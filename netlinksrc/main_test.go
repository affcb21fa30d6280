package netlinksrc

import (
	"testing"

	"github.com/kevent-exporter/kevent_exporter/internal/testenv"
)

// The tests use the kernel's netlink in a network namespace of their own:
// multicast on NETLINK_USERSOCK (each test its own group, from
// testenv.UsersockGroup, since tests of this package share the namespace),
// uevents of its lo, rtnetlink.
func TestMain(m *testing.M) { testenv.Main(m) }
