package netlinksrc

import (
	"golang.org/x/sys/unix"

	"github.com/kevent-exporter/kevent_exporter/netlinksrc/srcinfo"
)

// udevGroupMask is the group mask of udev's re-broadcasts on
// NETLINK_KOBJECT_UEVENT (group 2); the kernel sends on group 1.
const udevGroupMask = 1 << 1

// trustFor says whose datagrams sent to the group mask groups (0: a
// unicast) the subscription takes.
func (s *Subscription) trustFor(groups uint32) srcinfo.Senders {
	switch s.cfg.Senders {
	case srcinfo.SendersKernel, srcinfo.SendersRoot, srcinfo.SendersAny:
		return s.cfg.Senders
	case srcinfo.SendersDefault:
		if s.cfg.Protocol == unix.NETLINK_USERSOCK ||
			s.cfg.Protocol == unix.NETLINK_KOBJECT_UEVENT && groups == udevGroupMask {
			return srcinfo.SendersRoot
		}
	}
	// The kernel only: by default, and for a value srcinfo does not
	// define, which fails closed.
	return srcinfo.SendersKernel
}

// needsCredentials says whether any datagram may need its sender's
// credentials checked, so that SO_PASSCRED is set only where it is used.
func (s *Subscription) needsCredentials() bool {
	switch s.cfg.Senders {
	case srcinfo.SendersRoot:
		return true
	case srcinfo.SendersDefault:
		return s.trustFor(udevGroupMask) == srcinfo.SendersRoot || s.trustFor(0) == srcinfo.SendersRoot
	}
	return false
}

// check says whether the i'th datagram of the batch comes from a sender
// the subscription trusts, and if not why.
func (s *Subscription) check(b *batch, i int) (srcinfo.RejectReason, bool) {
	port, groups := b.sender(i)
	trust := s.trustFor(groups)
	if trust == srcinfo.SendersAny || port == 0 {
		return 0, true
	}
	if trust == srcinfo.SendersKernel {
		return srcinfo.RejectNotKernel, false
	}
	uid, ok := b.uid(i)
	switch {
	case !ok:
		return srcinfo.RejectNoCredentials, false
	case uid != 0:
		return srcinfo.RejectNotRoot, false
	}
	return 0, true
}
