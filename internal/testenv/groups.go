package testenv

import (
	"sync/atomic"
	"testing"
)

// IdleUsersockGroup is the NETLINK_USERSOCK multicast group that
// UsersockGroup never hands out, so that no test sends on it: for sources
// that only need to bind. It is the last of the 32 groups the kernel
// registers usersock with.
const IdleUsersockGroup = 32

// lastGroup is the last group UsersockGroup handed out.
var lastGroup atomic.Uint32

// UsersockGroup returns a NETLINK_USERSOCK multicast group that no other
// test of this test process is handed. The tests of a package share its
// network namespace (Main), and with it usersock's multicast: a test that
// sends on a group of its own cannot reach another test's sources, even
// when they run in parallel. Another package's tests run in a namespace of
// their own, so groups need to be unique within the process only.
func UsersockGroup(t testing.TB) uint32 {
	t.Helper()
	g := lastGroup.Add(1)
	if g >= IdleUsersockGroup {
		t.Fatalf("the package's tests need more than %d usersock groups", IdleUsersockGroup-1)
	}
	return g
}
