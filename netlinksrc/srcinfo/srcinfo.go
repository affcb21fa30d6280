// Package srcinfo holds what a netlink source shares with its
// configuration and its metrics: whose datagrams it takes (Senders), what
// it is doing (State), why it turns a datagram away (RejectReason) and
// what its socket counted (Stats). Package netlinksrc acts on them; config
// and collector read them from here, without netlinksrc and on any GOOS.
package srcinfo

import (
	"fmt"
	"slices"
	"strings"
)

// Stats is a snapshot of a subscription's socket, read at scrape time.
//
// Datagrams + Lost is every datagram the kernel delivered to the
// subscription's sockets while they were joined to their groups: the
// kernel drops whole datagrams at a full socket and counts each one. A
// socket handed over (netlinksrc's Subscription.HandOver) counts with the
// subscription that read it, its drops up to the handover with the one
// that handed it over.
type Stats struct {
	// State says what the subscription is doing, or why it is down.
	State State
	// Attachments counts the times the subscription's socket was opened
	// and joined: a subscription not up now that has been up before lost
	// its module or family.
	Attachments uint64
	// GroupsJoined is how many of the configured groups the socket joined
	// (0 while down).
	GroupsJoined int
	// ReceiveBufferBytes is the receive buffer the kernel granted.
	ReceiveBufferBytes int
	// Datagrams counts the datagrams read from the socket, the rejected
	// ones included.
	Datagrams uint64
	// Overruns counts ENOBUFS errors: episodes in which the socket's
	// receive queue overflowed.
	Overruns uint64
	// Lost counts the datagrams the kernel dropped at the subscription's
	// sockets, over all the sockets it has had, and those still queued at
	// stop that could not be decoded in time.
	Lost uint64
	// Rejected counts datagrams not decoded because of their sender, by
	// RejectReason. A family subscription counts here, as not_kernel but
	// not in Datagrams, the controller notifications it ignored because
	// they did not come from the kernel.
	Rejected [NumRejectReasons]uint64
	// DropReadErrors counts failed reads of the kernel's drop counter.
	DropReadErrors uint64
}

// Up reports whether the subscription's socket is open and joined.
func (st Stats) Up() bool { return st.State == StateUp }

// Plus returns the counts of st, a subscription that stopped, and later,
// the one that replaced it, added up, with later's state (State,
// GroupsJoined, ReceiveBufferBytes).
func (st Stats) Plus(later Stats) Stats {
	later.Attachments += st.Attachments
	later.Datagrams += st.Datagrams
	later.Overruns += st.Overruns
	later.Lost += st.Lost
	for i := range later.Rejected {
		later.Rejected[i] += st.Rejected[i]
	}
	later.DropReadErrors += st.DropReadErrors
	return later
}

// State is what a subscription is doing. A subscription that is not up is
// in the state its last attempt to open, join or receive left it in; one
// that has not tried yet is waiting.
type State int32

const (
	// StateWaiting: the protocol or generic netlink family is not
	// registered, so the module that provides it is not loaded (or the
	// subscription has not tried yet). It attaches when the module comes,
	// with nothing wrong meanwhile.
	StateWaiting State = iota
	// StateUp: the socket is open and joined to at least one group.
	StateUp
	// StateDenied: opening the socket or joining its groups was not
	// permitted (EPERM, EACCES): a privilege is missing.
	StateDenied
	// StateFailed: any other error, such as groups that do not exist, a
	// family without the configured groups, or a socket that failed.
	StateFailed

	// NumStates is how many states there are: range over it for each.
	NumStates
)

// stateNames are the states' names, the state label of
// kevent_source_state.
var stateNames = [NumStates]string{
	StateWaiting: "waiting",
	StateUp:      "up",
	StateDenied:  "denied",
	StateFailed:  "failed",
}

// String returns the state's name.
func (st State) String() string {
	if st >= 0 && st < NumStates {
		return stateNames[st]
	}
	return fmt.Sprintf("State(%d)", int32(st))
}

// RejectReason says why a datagram was not decoded.
type RejectReason int

const (
	// RejectNotKernel: the source takes only the kernel's datagrams and
	// this one came from userspace.
	RejectNotKernel RejectReason = iota
	// RejectNotRoot: the sender was a userspace process whose credentials
	// were not root's.
	RejectNotRoot
	// RejectNoCredentials: the sender's credentials were needed and the
	// kernel passed none.
	RejectNoCredentials

	// NumRejectReasons is how many reasons there are: range over it for
	// each.
	NumRejectReasons
)

// rejectReasonNames are the reasons' names, the reason label of
// kevent_datagrams_rejected_total.
var rejectReasonNames = [NumRejectReasons]string{
	RejectNotKernel:     "not_kernel",
	RejectNotRoot:       "not_root",
	RejectNoCredentials: "no_credentials",
}

// String returns the reason's name.
func (r RejectReason) String() string {
	if r >= 0 && r < NumRejectReasons {
		return rejectReasonNames[r]
	}
	return fmt.Sprintf("RejectReason(%d)", int(r))
}

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

	numSenders
)

// sendersNames are the Senders values as the configuration writes them;
// SendersDefault is written by leaving senders out.
var sendersNames = [numSenders]string{
	SendersDefault: "",
	SendersKernel:  "kernel",
	SendersRoot:    "root",
	SendersAny:     "any",
}

// SendersValues returns the values the configuration's senders takes.
func SendersValues() []string { return slices.Clone(sendersNames[SendersDefault+1:]) }

// ParseSenders returns the Senders the configuration's value s names; ""
// is SendersDefault. A value it does not know fails closed: the error,
// and SendersKernel, which trusts nobody but the kernel.
func ParseSenders(s string) (Senders, error) {
	for v, name := range sendersNames {
		if name == s {
			return Senders(v), nil
		}
	}
	return SendersKernel, fmt.Errorf("senders %q must be one of %s", s, strings.Join(SendersValues(), ", "))
}

// String returns the value as the configuration writes it, or "default".
func (s Senders) String() string {
	switch {
	case s == SendersDefault:
		return "default"
	case s > SendersDefault && s < numSenders:
		return sendersNames[s]
	}
	return fmt.Sprintf("Senders(%d)", int(s))
}
