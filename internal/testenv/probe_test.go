package testenv

import (
	"errors"
	"testing"

	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) { Main(m) }

// TestProbe: the probe tells apart a group any user may join, a protocol
// the kernel lacks, a family it lacks and a group a family lacks, in the
// tests' namespace and in the one they started in.
func TestProbe(t *testing.T) {
	RequireRoot(t, "running a probe as another user")
	// A protocol with no kernel socket in this namespace: the highest
	// that root cannot open.
	absent := -1
	for p := 31; p > 0 && absent < 0; p-- {
		fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, p)
		if err == nil {
			unix.Close(fd)
		} else if errors.Is(err, unix.EPROTONOSUPPORT) {
			absent = p
		}
	}
	for _, ns := range []string{"", HostNetns()} {
		for _, c := range []struct {
			name string
			got  func() error
			want error
		}{
			// rtnetlink's kernel socket is NL_CFG_F_NONROOT_RECV.
			{"route link", func() error { return JoinAsNobody(t, ns, unix.NETLINK_ROUTE, unix.RTNLGRP_LINK) }, nil},
			{"nlctrl notify", func() error { return JoinFamilyAsNobody(t, ns, "nlctrl", "notify") }, nil},
			{"absent family", func() error { return JoinFamilyAsNobody(t, ns, "kevent_nosuch", "events") }, unix.ENOENT},
			{"absent group", func() error { return JoinFamilyAsNobody(t, ns, "nlctrl", "nosuch") }, ErrNoGroup},
			{"absent protocol", func() error { return JoinAsNobody(t, ns, absent, 1) }, unix.EPROTONOSUPPORT},
		} {
			if c.name == "absent protocol" && absent < 0 {
				continue
			}
			if err := c.got(); !errors.Is(err, c.want) || (err == nil) != (c.want == nil) {
				t.Errorf("netns %q: %s: %v, want %v", ns, c.name, err, c.want)
			}
		}
	}
}
