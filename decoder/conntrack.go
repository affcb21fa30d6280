package decoder

import (
	"encoding/binary"
	"strconv"
)

// The kernel's connection tracking events, as
// include/uapi/linux/netfilter/nfnetlink.h and nfnetlink_conntrack.h define
// them. A test checks these against the headers.
const (
	// ConntrackProtocol is NETLINK_NETFILTER.
	ConntrackProtocol = 12

	// The multicast groups (NFNLGRP_CONNTRACK_*).
	ConntrackGroupNew        = 1
	ConntrackGroupUpdate     = 2
	ConntrackGroupDestroy    = 3
	ConntrackGroupExpNew     = 4
	ConntrackGroupExpUpdate  = 5
	ConntrackGroupExpDestroy = 6

	// The subsystems (NFNL_SUBSYS_CTNETLINK, _CTNETLINK_EXP): the high
	// byte of the message type.
	ConntrackSubsys    = 1
	ConntrackSubsysExp = 2

	// The message types in a subsystem (IPCTNL_MSG_CT_NEW, _DELETE and
	// IPCTNL_MSG_EXP_NEW, _DELETE). A new connection's IPCTNL_MSG_CT_NEW
	// has NLM_F_CREATE set, an update's has not.
	ConntrackMsgNew       = 0
	ConntrackMsgDelete    = 2
	ConntrackExpMsgNew    = 0
	ConntrackExpMsgDelete = 2

	// Attributes of a connection (enum ctattr_type).
	ConntrackAttrTupleOrig     = 1
	ConntrackAttrStatus        = 3
	ConntrackAttrProtoinfo     = 4
	ConntrackAttrCountersOrig  = 9
	ConntrackAttrCountersReply = 10
	ConntrackAttrZone          = 18
	ConntrackAttrTimestamp     = 20

	// Attributes of a tuple (enum ctattr_tuple) and of its protocol
	// (enum ctattr_l4proto).
	ConntrackAttrTupleProto = 2
	ConntrackAttrTupleZone  = 3
	ConntrackAttrProtoNum   = 1

	// TCP's protocol information (enum ctattr_protoinfo,
	// enum ctattr_protoinfo_tcp).
	ConntrackAttrProtoinfoTCP      = 1
	ConntrackAttrProtoinfoTCPState = 1

	// Counters (enum ctattr_counters) and timestamps (enum ctattr_tstamp).
	ConntrackAttrCountersBytes   = 2
	ConntrackAttrCounters32Bytes = 4
	ConntrackAttrTimestampStart  = 1
	ConntrackAttrTimestampStop   = 2

	// Attributes of an expectation (enum ctattr_expect).
	ConntrackAttrExpectTuple    = 2
	ConntrackAttrExpectHelpName = 6
	ConntrackAttrExpectZone     = 7

	// ConntrackStatusSeenReply is IPS_SEEN_REPLY: the connection has seen
	// a packet in the reply direction.
	ConntrackStatusSeenReply = 1 << 1

	// nfgenmsgLen is the size of struct nfgenmsg, before the attributes.
	nfgenmsgLen = 4
	// nlmFCreate is NLM_F_CREATE.
	nlmFCreate = 0x400
	// conntrackHelperNameMax is NF_CT_HELPER_NAME_LEN less the NUL.
	conntrackHelperNameMax = 15
)

// ConntrackGroups are the netfilter multicast groups the conntrack decoder
// reads, by the names a configuration may give them.
var ConntrackGroups = map[string]uint32{
	"conntrack_new":         ConntrackGroupNew,
	"conntrack_update":      ConntrackGroupUpdate,
	"conntrack_destroy":     ConntrackGroupDestroy,
	"conntrack_exp_new":     ConntrackGroupExpNew,
	"conntrack_exp_update":  ConntrackGroupExpUpdate,
	"conntrack_exp_destroy": ConntrackGroupExpDestroy,
}

// conntrackProtos name the layer 4 protocols as /etc/protocols does (the
// names conntrack -E prints), and the others by number: 256 names at most.
var conntrackProtos = func() (names [256][]byte) {
	for p := range names {
		names[p] = strconv.AppendUint(nil, uint64(p), 10)
	}
	for p, name := range map[uint8]string{
		1: "icmp", 2: "igmp", 6: "tcp", 17: "udp", 33: "dccp", 47: "gre",
		58: "icmpv6", 132: "sctp", 136: "udplite",
	} {
		names[p] = []byte(name)
	}
	return names
}()

// conntrackTCPStates name enum tcp_conntrack's states as conntrack -E
// does, in lower case; any other is named by its number.
var conntrackTCPStates = [...][]byte{
	[]byte("none"), []byte("syn_sent"), []byte("syn_recv"), []byte("established"),
	[]byte("fin_wait"), []byte("close_wait"), []byte("last_ack"), []byte("time_wait"),
	[]byte("close"), []byte("syn_sent2"),
}

// Conntrack decodes the kernel's connection tracking events (NETLINK_NETFILTER,
// the groups of ConntrackGroups) into one event per message, named by what
// happened, to which protocol, and how the connection ended:
//
//	new/<proto>                                 a connection is tracked
//	update/<proto>[/<tcp state>]                its state changed (group conntrack_update)
//	destroy/<proto>[/unreplied][/<tcp state>]   it is no longer tracked
//	expect/new/<proto>, expect/destroy/<proto>  a helper's expectation
//
// <proto> is the layer 4 protocol of the original direction (tcp, udp,
// icmp, icmpv6, sctp, gre, ...; a number for those without a name).
// unreplied marks a connection that never saw a packet in the reply
// direction (no IPS_SEEN_REPLY): a TCP connect refused (destroy/tcp/
// unreplied/close) or unanswered (destroy/tcp/unreplied/syn_sent), a UDP
// datagram without an answer. The TCP state is the one at destruction,
// as conntrack -E prints it in lower case (time_wait, close, established,
// ...). Addresses and ports are never part of an event: names stay a
// bounded set.
//
// The object is the connection's conntrack zone (CTA_ZONE, or the zone
// of the original direction's tuple) where it is not the default zone 0,
// else empty. The value of a destroy event is the connection's lifetime in
// seconds where the kernel sends timestamps (net.netfilter.
// nf_conntrack_timestamp=1), else its bytes in both directions where it
// sends counters (nf_conntrack_acct=1), else none. An expectation's
// payload is its helper's name (ftp, sip, ...).
//
// A connection message without the protocol of its original tuple or its
// status, an expectation without its tuple's protocol, or an attribute of
// the wrong size is malformed. Messages of other netfilter subsystems and
// types give no events. Names and objects are built in the decoder's own
// memory for the batch, as the genl decoder does.
type Conntrack struct {
	buf []byte
}

// NewConntrack returns a connection tracking event decoder.
func NewConntrack() *Conntrack {
	return &Conntrack{}
}

// Decode implements Decoder.
func (d *Conntrack) Decode(events []Event, datagram []byte) ([]Event, int) {
	if len(events) == 0 {
		d.buf = d.buf[:0]
	}
	return appendMessages(events, datagram, d)
}

// ctKind is what a message announces.
type ctKind uint8

const (
	ctNew ctKind = iota
	ctUpdate
	ctDestroy
	ctExpNew
	ctExpDestroy
)

// ctKindPrefixes start the event names by kind.
var ctKindPrefixes = [...]string{
	ctNew:        "new/",
	ctUpdate:     "update/",
	ctDestroy:    "destroy/",
	ctExpNew:     "expect/new/",
	ctExpDestroy: "expect/destroy/",
}

func (d *Conntrack) appendMessage(events []Event, m message) ([]Event, bool) {
	var kind ctKind
	switch m.Type {
	case ConntrackSubsys<<8 | ConntrackMsgNew:
		kind = ctUpdate
		if m.Flags&nlmFCreate != 0 {
			kind = ctNew
		}
	case ConntrackSubsys<<8 | ConntrackMsgDelete:
		kind = ctDestroy
	case ConntrackSubsysExp<<8 | ConntrackExpMsgNew:
		kind = ctExpNew
	case ConntrackSubsysExp<<8 | ConntrackExpMsgDelete:
		kind = ctExpDestroy
	default:
		return events, true
	}
	if len(m.Payload) < nfgenmsgLen {
		return events, false
	}
	attrs := m.Payload[nfgenmsgLen:]
	start := len(d.buf)
	var (
		ev   Event
		good bool
	)
	if kind >= ctExpNew {
		good = d.expectation(&ev, kind, attrs)
	} else {
		good = d.connection(&ev, kind, attrs)
	}
	if !good {
		d.buf = d.buf[:start]
		return events, false
	}
	return append(events, ev), true
}

// ctInfo is what a connection message tells of the connection.
type ctInfo struct {
	proto, tcpState   int // -1 where absent
	zone              int
	status            uint32
	hasStatus         bool
	bytes             uint64
	hasBytes          bool
	tsStart, tsStop   uint64
	hasStart, hasStop bool
}

// connection decodes a connection's message, of enum ctattr_type attributes.
func (d *Conntrack) connection(ev *Event, kind ctKind, attrs []byte) bool {
	ci := ctInfo{proto: -1, tcpState: -1}
	r := attrReader{b: attrs}
	for r.next() {
		switch r.typ {
		case ConntrackAttrTupleOrig:
			if !ci.tuple(r.v) {
				return false
			}
		case ConntrackAttrStatus:
			if len(r.v) != 4 {
				return false
			}
			ci.status, ci.hasStatus = binary.BigEndian.Uint32(r.v), true
		case ConntrackAttrProtoinfo:
			if !ci.protoinfo(r.v) {
				return false
			}
		case ConntrackAttrCountersOrig, ConntrackAttrCountersReply:
			if !ci.counters(r.v) {
				return false
			}
		case ConntrackAttrZone:
			if len(r.v) != 2 {
				return false
			}
			ci.zone = int(binary.BigEndian.Uint16(r.v))
		case ConntrackAttrTimestamp:
			if !ci.timestamp(r.v) {
				return false
			}
		}
	}
	if r.bad || ci.proto < 0 || !ci.hasStatus {
		return false
	}
	b := d.buf
	start := len(b)
	b = append(b, ctKindPrefixes[kind]...)
	b = append(b, conntrackProtos[ci.proto]...)
	if kind == ctDestroy && ci.status&ConntrackStatusSeenReply == 0 {
		b = append(b, "/unreplied"...)
	}
	// A new connection's state is where every one starts (SYN_SENT).
	if kind != ctNew && ci.tcpState >= 0 {
		b = append(b, '/')
		if ci.tcpState < len(conntrackTCPStates) {
			b = append(b, conntrackTCPStates[ci.tcpState]...)
		} else {
			b = strconv.AppendUint(b, uint64(ci.tcpState), 10)
		}
	}
	ev.Name = b[start:len(b):len(b)]
	if ci.zone != 0 {
		start = len(b)
		b = strconv.AppendUint(b, uint64(ci.zone), 10)
		ev.Object = b[start:len(b):len(b)]
	}
	d.buf = b
	if kind == ctDestroy {
		switch {
		case ci.hasStart && ci.hasStop && ci.tsStop >= ci.tsStart:
			ev.Value, ev.HasValue = float64(ci.tsStop-ci.tsStart)/1e9, true
		case ci.hasBytes:
			ev.Value, ev.HasValue = float64(ci.bytes), true
		}
	}
	return true
}

// tuple reads the protocol and zone of a tuple (enum ctattr_tuple).
func (ci *ctInfo) tuple(b []byte) bool {
	r := attrReader{b: b}
	for r.next() {
		switch r.typ {
		case ConntrackAttrTupleProto:
			p, ok := tupleProto(r.v)
			if !ok {
				return false
			}
			ci.proto = p
		case ConntrackAttrTupleZone:
			if len(r.v) != 2 {
				return false
			}
			if ci.zone == 0 {
				ci.zone = int(binary.BigEndian.Uint16(r.v))
			}
		}
	}
	return !r.bad
}

// tupleProto returns the protocol number of a tuple's CTA_TUPLE_PROTO.
func tupleProto(b []byte) (int, bool) {
	proto := -1
	r := attrReader{b: b}
	for r.next() {
		if r.typ == ConntrackAttrProtoNum {
			if len(r.v) != 1 {
				return 0, false
			}
			proto = int(r.v[0])
		}
	}
	return proto, !r.bad && proto >= 0
}

// protoinfo reads TCP's state from CTA_PROTOINFO.
func (ci *ctInfo) protoinfo(b []byte) bool {
	r := attrReader{b: b}
	for r.next() {
		if r.typ != ConntrackAttrProtoinfoTCP {
			continue
		}
		t := attrReader{b: r.v}
		for t.next() {
			if t.typ == ConntrackAttrProtoinfoTCPState {
				if len(t.v) != 1 {
					return false
				}
				ci.tcpState = int(t.v[0])
			}
		}
		if t.bad {
			return false
		}
	}
	return !r.bad
}

// counters adds the bytes of a direction's counters (enum
// ctattr_counters), 64 or 32 bits.
func (ci *ctInfo) counters(b []byte) bool {
	r := attrReader{b: b}
	for r.next() {
		switch {
		case r.typ == ConntrackAttrCountersBytes && len(r.v) == 8:
			ci.bytes += binary.BigEndian.Uint64(r.v)
		case r.typ == ConntrackAttrCounters32Bytes && len(r.v) == 4:
			ci.bytes += uint64(binary.BigEndian.Uint32(r.v))
		case r.typ == ConntrackAttrCountersBytes || r.typ == ConntrackAttrCounters32Bytes:
			return false
		default:
			continue
		}
		ci.hasBytes = true
	}
	return !r.bad
}

// timestamp reads a connection's start and stop, in nanoseconds (enum
// ctattr_tstamp).
func (ci *ctInfo) timestamp(b []byte) bool {
	r := attrReader{b: b}
	for r.next() {
		switch r.typ {
		case ConntrackAttrTimestampStart, ConntrackAttrTimestampStop:
			if len(r.v) != 8 {
				return false
			}
			v := binary.BigEndian.Uint64(r.v)
			if r.typ == ConntrackAttrTimestampStart {
				ci.tsStart, ci.hasStart = v, true
			} else {
				ci.tsStop, ci.hasStop = v, true
			}
		}
	}
	return !r.bad
}

// expectation decodes an expectation's message, of enum ctattr_expect
// attributes.
func (d *Conntrack) expectation(ev *Event, kind ctKind, attrs []byte) bool {
	var (
		ci     = ctInfo{proto: -1}
		helper []byte
	)
	r := attrReader{b: attrs}
	for r.next() {
		switch r.typ {
		case ConntrackAttrExpectTuple:
			if !ci.tuple(r.v) {
				return false
			}
		case ConntrackAttrExpectHelpName:
			helper = cString(r.v)
			if len(helper) > conntrackHelperNameMax {
				return false
			}
		case ConntrackAttrExpectZone:
			if len(r.v) != 2 {
				return false
			}
			ci.zone = int(binary.BigEndian.Uint16(r.v))
		}
	}
	if r.bad || ci.proto < 0 {
		return false
	}
	b := d.buf
	start := len(b)
	b = append(b, ctKindPrefixes[kind]...)
	b = append(b, conntrackProtos[ci.proto]...)
	ev.Name = b[start:len(b):len(b)]
	if ci.zone != 0 {
		start = len(b)
		b = strconv.AppendUint(b, uint64(ci.zone), 10)
		ev.Object = b[start:len(b):len(b)]
	}
	d.buf = b
	ev.Payload = helper
	return true
}
