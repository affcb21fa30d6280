package netlinksrc

import (
	"golang.org/x/sys/unix"

	"github.com/kevent-exporter/kevent_exporter/netlinksrc/srcinfo"
)

// Senders says whose datagrams a subscription decodes. Root userspace can
// multicast on the kernel's own protocols too, so a forged uevent would
// look like the kernel's if nobody looked at the sender's port ID (the
// kernel's is 0), as libudev's monitor does.
type Senders int

const (
	// SendersDefault trusts what the protocol's usual senders are: only
	// the kernel, except on NETLINK_USERSOCK (userspace by design) and on
	// udev's uevent group 2, where root's userspace senders are trusted
	// too.
	SendersDefault Senders = iota
	// SendersKernel takes only datagrams from the kernel (port ID 0).
	SendersKernel
	// SendersRoot takes datagrams from the kernel and from userspace
	// senders with uid 0 in their SCM_CREDENTIALS.
	SendersRoot
	// SendersAny takes every datagram.
	SendersAny
)

// SendersNames are the names of the Senders values, as the configuration
// writes them.
var SendersNames = map[string]Senders{"kernel": SendersKernel, "root": SendersRoot, "any": SendersAny}

func (s Senders) String() string {
	for name, v := range SendersNames {
		if v == s {
			return name
		}
	}
	return "default"
}

// udevGroupMask is the group mask of udev's re-broadcasts on
// NETLINK_KOBJECT_UEVENT (group 2); the kernel sends on group 1.
const udevGroupMask = 1 << 1

// trustFor says whose datagrams sent to the group mask groups (0: a
// unicast) the subscription takes.
func (s *Subscription) trustFor(groups uint32) Senders {
	if s.cfg.Senders != SendersDefault {
		return s.cfg.Senders
	}
	switch s.cfg.Protocol {
	case unix.NETLINK_USERSOCK:
		return SendersRoot
	case unix.NETLINK_KOBJECT_UEVENT:
		if groups == udevGroupMask {
			return SendersRoot
		}
	}
	return SendersKernel
}

// needsCredentials says whether any datagram may need its sender's
// credentials checked, so that SO_PASSCRED is set only where it is used.
func (s *Subscription) needsCredentials() bool {
	switch s.cfg.Senders {
	case SendersRoot:
		return true
	case SendersDefault:
		return s.trustFor(udevGroupMask) == SendersRoot || s.trustFor(0) == SendersRoot
	}
	return false
}

// check says whether the i'th datagram of the batch comes from a sender
// the subscription trusts, and if not why.
func (s *Subscription) check(b *batch, i int) (srcinfo.RejectReason, bool) {
	port, groups := b.sender(i)
	trust := s.trustFor(groups)
	if trust == SendersAny || port == 0 {
		return 0, true
	}
	if trust == SendersKernel {
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
