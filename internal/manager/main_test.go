package manager

import (
	"testing"

	"github.com/kevent-exporter/kevent_exporter/internal/testenv"
)

// The tests subscribe on NETLINK_USERSOCK in a network namespace of this
// package's own.
func TestMain(m *testing.M) { testenv.Main(m) }
