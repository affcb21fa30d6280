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
	faults
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

func (d *Conntrack) diagnose(datagram []byte) []Problem {
	return diagnoseMessages(datagram, NewConntrack())
}

// The headers' names of the attributes the decoder reads, for faults.
var (
	ctAttrNames = attrNames{
		ConntrackAttrTupleOrig: "CTA_TUPLE_ORIG", 2: "CTA_TUPLE_REPLY", ConntrackAttrStatus: "CTA_STATUS",
		ConntrackAttrProtoinfo: "CTA_PROTOINFO", ConntrackAttrCountersOrig: "CTA_COUNTERS_ORIG",
		ConntrackAttrCountersReply: "CTA_COUNTERS_REPLY", ConntrackAttrZone: "CTA_ZONE",
		ConntrackAttrTimestamp: "CTA_TIMESTAMP",
	}
	ctTupleAttrNames     = attrNames{1: "CTA_TUPLE_IP", ConntrackAttrTupleProto: "CTA_TUPLE_PROTO", ConntrackAttrTupleZone: "CTA_TUPLE_ZONE"}
	ctProtoAttrNames     = attrNames{ConntrackAttrProtoNum: "CTA_PROTO_NUM"}
	ctProtoinfoAttrNames = attrNames{ConntrackAttrProtoinfoTCP: "CTA_PROTOINFO_TCP"}
	ctTCPAttrNames       = attrNames{ConntrackAttrProtoinfoTCPState: "CTA_PROTOINFO_TCP_STATE"}
	ctCountersAttrNames  = attrNames{1: "CTA_COUNTERS_PACKETS", ConntrackAttrCountersBytes: "CTA_COUNTERS_BYTES", 3: "CTA_COUNTERS32_PACKETS", ConntrackAttrCounters32Bytes: "CTA_COUNTERS32_BYTES"}
	ctTimestampAttrNames = attrNames{ConntrackAttrTimestampStart: "CTA_TIMESTAMP_START", ConntrackAttrTimestampStop: "CTA_TIMESTAMP_STOP"}
	ctExpectAttrNames    = attrNames{1: "CTA_EXPECT_MASTER", ConntrackAttrExpectTuple: "CTA_EXPECT_TUPLE", ConntrackAttrExpectHelpName: "CTA_EXPECT_HELP_NAME", ConntrackAttrExpectZone: "CTA_EXPECT_ZONE"}
)

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
		return events, d.fail(m, faultf("ctnetlink message with a %d-byte payload, too short for struct nfgenmsg (%d bytes)", len(m.Payload), nfgenmsgLen))
	}
	var (
		ev   Event
		good bool
	)
	if kind >= ctExpNew {
		good = d.expectation(&ev, kind, m)
	} else {
		good = d.connection(&ev, kind, m)
	}
	if !good {
		return events, false
	}
	return append(events, ev), true
}

// ctInfo is what a message tells of a connection or an expectation.
type ctInfo struct {
	proto, tcpState   int // -1 where absent
	zone              int
	status            uint32
	hasStatus         bool
	bytes             uint64
	hasBytes          bool
	tsStart, tsStop   uint64
	hasStart, hasStop bool
	helper            []byte
}

// connection decodes a connection's message, of enum ctattr_type
// attributes, whose numbers are in network byte order. Each nest is read
// by a method of its own, which keeps the walks inlined.
func (d *Conntrack) connection(ev *Event, kind ctKind, m message) bool {
	ci := ctInfo{proto: -1, tcpState: -1}
	var ad attrDecoder
	d.attrs(&ad, m, nfgenmsgLen, ctAttrNames)
	for typ, v := range ad.All {
		ok := true
		switch typ & nlaTypeMask {
		case ConntrackAttrTupleOrig:
			ok = d.tuple(&ci, &ad, v, m)
		case ConntrackAttrStatus:
			if v := ad.Sized(v, 4); v != nil {
				ci.status, ci.hasStatus = binary.BigEndian.Uint32(v), true
			}
		case ConntrackAttrProtoinfo:
			ok = d.protoinfo(&ci, &ad, v, m)
		case ConntrackAttrCountersOrig, ConntrackAttrCountersReply:
			ok = d.counters(&ci, &ad, v, m)
		case ConntrackAttrZone:
			if v := ad.Sized(v, 2); v != nil {
				ci.zone = int(binary.BigEndian.Uint16(v))
			}
		case ConntrackAttrTimestamp:
			ok = d.timestamp(&ci, &ad, v, m)
		}
		if !ok {
			return false
		}
	}
	switch {
	case ad.Failed():
		return d.fail(m, ad.Err())
	case ci.proto < 0:
		return d.fail(m, faultf("no CTA_PROTO_NUM in CTA_TUPLE_ORIG, which every connection's message carries"))
	case !ci.hasStatus:
		return d.fail(m, attrFaultf(ctAttrNames, ConntrackAttrStatus, "no attribute %s, which every connection's message carries"))
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
	d.buf = b
	d.zone(ev, ci.zone)
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

// zone makes a zone other than the default one ev's object.
func (d *Conntrack) zone(ev *Event, zone int) {
	if zone != 0 {
		start := len(d.buf)
		d.buf = strconv.AppendUint(d.buf, uint64(zone), 10)
		ev.Object = d.buf[start:len(d.buf):len(d.buf)]
	}
}

// tuple reads the protocol and zone of a tuple v of ad's (enum
// ctattr_tuple), or fails m.
func (d *Conntrack) tuple(ci *ctInfo, ad *attrDecoder, v []byte, m message) bool {
	var t attrDecoder
	ad.Nested(&t, v, ctTupleAttrNames)
	for typ, v := range t.All {
		switch typ & nlaTypeMask {
		case ConntrackAttrTupleProto:
			if !d.proto(ci, &t, v, m) {
				return false
			}
		case ConntrackAttrTupleZone:
			if v := t.Sized(v, 2); v != nil && ci.zone == 0 {
				ci.zone = int(binary.BigEndian.Uint16(v))
			}
		}
	}
	if t.Failed() {
		return d.fail(m, t.Err())
	}
	return true
}

// proto reads the protocol number of a tuple's CTA_TUPLE_PROTO v of ad's
// (enum ctattr_l4proto), or fails m.
func (d *Conntrack) proto(ci *ctInfo, ad *attrDecoder, v []byte, m message) bool {
	return d.nestedByte(&ci.proto, ad, v, ctProtoAttrNames, ConntrackAttrProtoNum, m)
}

// nestedByte reads the one-byte attribute want among the attributes
// nested in v of ad's into *dst, or fails m.
func (d *Conntrack) nestedByte(dst *int, ad *attrDecoder, v []byte, names attrNames, want uint16, m message) bool {
	var p attrDecoder
	ad.Nested(&p, v, names)
	for typ, v := range p.All {
		if typ&nlaTypeMask == want {
			if v := p.Sized(v, 1); v != nil {
				*dst = int(v[0])
			}
		}
	}
	if p.Failed() {
		return d.fail(m, p.Err())
	}
	return true
}

// protoinfo reads TCP's state from a CTA_PROTOINFO v of ad's, or fails m.
func (d *Conntrack) protoinfo(ci *ctInfo, ad *attrDecoder, v []byte, m message) bool {
	var p attrDecoder
	ad.Nested(&p, v, ctProtoinfoAttrNames)
	for typ, v := range p.All {
		if typ&nlaTypeMask == ConntrackAttrProtoinfoTCP && !d.tcpState(ci, &p, v, m) {
			return false
		}
	}
	if p.Failed() {
		return d.fail(m, p.Err())
	}
	return true
}

// tcpState reads the state of a CTA_PROTOINFO_TCP v of ad's, or fails m.
func (d *Conntrack) tcpState(ci *ctInfo, ad *attrDecoder, v []byte, m message) bool {
	return d.nestedByte(&ci.tcpState, ad, v, ctTCPAttrNames, ConntrackAttrProtoinfoTCPState, m)
}

// counters adds the bytes of a direction's counters v of ad's (enum
// ctattr_counters), 64 or 32 bits, or fails m.
func (d *Conntrack) counters(ci *ctInfo, ad *attrDecoder, v []byte, m message) bool {
	var c attrDecoder
	ad.Nested(&c, v, ctCountersAttrNames)
	for typ, v := range c.All {
		switch typ & nlaTypeMask {
		case ConntrackAttrCountersBytes:
			if v := c.Sized(v, 8); v != nil {
				ci.bytes, ci.hasBytes = ci.bytes+binary.BigEndian.Uint64(v), true
			}
		case ConntrackAttrCounters32Bytes:
			if v := c.Sized(v, 4); v != nil {
				ci.bytes, ci.hasBytes = ci.bytes+uint64(binary.BigEndian.Uint32(v)), true
			}
		}
	}
	if c.Failed() {
		return d.fail(m, c.Err())
	}
	return true
}

// timestamp reads a connection's start and stop in nanoseconds from a
// CTA_TIMESTAMP v of ad's (enum ctattr_tstamp), or fails m.
func (d *Conntrack) timestamp(ci *ctInfo, ad *attrDecoder, v []byte, m message) bool {
	var t attrDecoder
	ad.Nested(&t, v, ctTimestampAttrNames)
	for typ, v := range t.All {
		switch typ & nlaTypeMask {
		case ConntrackAttrTimestampStart:
			if v := t.Sized(v, 8); v != nil {
				ci.tsStart, ci.hasStart = binary.BigEndian.Uint64(v), true
			}
		case ConntrackAttrTimestampStop:
			if v := t.Sized(v, 8); v != nil {
				ci.tsStop, ci.hasStop = binary.BigEndian.Uint64(v), true
			}
		}
	}
	if t.Failed() {
		return d.fail(m, t.Err())
	}
	return true
}

// expectation decodes an expectation's message, of enum ctattr_expect
// attributes.
func (d *Conntrack) expectation(ev *Event, kind ctKind, m message) bool {
	ci := ctInfo{proto: -1}
	var ad attrDecoder
	d.attrs(&ad, m, nfgenmsgLen, ctExpectAttrNames)
	for typ, v := range ad.All {
		switch typ & nlaTypeMask {
		case ConntrackAttrExpectTuple:
			if !d.tuple(&ci, &ad, v, m) {
				return false
			}
		case ConntrackAttrExpectHelpName:
			if ci.helper = cString(v); len(ci.helper) > conntrackHelperNameMax {
				return d.fail(m, ad.Faultf(v, "attribute %s at byte %d names a helper of %d bytes, longer than %d", len(ci.helper), conntrackHelperNameMax))
			}
		case ConntrackAttrExpectZone:
			if v := ad.Sized(v, 2); v != nil {
				ci.zone = int(binary.BigEndian.Uint16(v))
			}
		}
	}
	switch {
	case ad.Failed():
		return d.fail(m, ad.Err())
	case ci.proto < 0:
		return d.fail(m, faultf("no CTA_PROTO_NUM in CTA_EXPECT_TUPLE, which every expectation's message carries"))
	}
	start := len(d.buf)
	d.buf = append(d.buf, ctKindPrefixes[kind]...)
	d.buf = append(d.buf, conntrackProtos[ci.proto]...)
	ev.Name = d.buf[start:len(d.buf):len(d.buf)]
	d.zone(ev, ci.zone)
	ev.Payload = ci.helper
	return true
}
