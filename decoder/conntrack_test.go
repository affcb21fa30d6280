package decoder_test

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"regexp"
	"strings"
	"testing"

	"github.com/kevent-exporter/kevent_exporter/decoder"
	"github.com/kevent-exporter/kevent_exporter/internal/nlsend"
)

const (
	nlaNested = 0x8000 // NLA_F_NESTED, which ctnetlink's nla_nest_start sets
	afInet    = 2
	afInet6   = 10
	// NLM_F_CREATE|NLM_F_EXCL, the flags of a new connection's message.
	nlmCreateExcl = 0x400 | 0x200
)

// nested returns a nested attribute holding attrs.
func nested(typ uint16, attrs ...[]byte) []byte {
	return nlsend.AppendAttr(nil, typ|nlaNested, concat(attrs...))
}

func be16attr(typ, v uint16) []byte {
	return nlsend.AppendAttr(nil, typ, binary.BigEndian.AppendUint16(nil, v))
}

func be32attr(typ uint16, v uint32) []byte {
	return nlsend.AppendAttr(nil, typ, binary.BigEndian.AppendUint32(nil, v))
}

func be64attr(typ uint16, v uint64) []byte {
	return nlsend.AppendAttr(nil, typ, binary.BigEndian.AppendUint64(nil, v))
}

// ctMsg returns a ctnetlink message: the netlink header, struct nfgenmsg
// of family and NFNETLINK_V0, and attrs.
func ctMsg(subsys, typ, flags uint16, family uint8, attrs ...[]byte) []byte {
	m := nlsend.AppendMessage(nil, subsys<<8|typ, 0, concat([]byte{family, 0, 0, 0}, concat(attrs...)))
	binary.NativeEndian.PutUint16(m[6:8], flags)
	return m
}

// ctTuple returns a tuple as ctnetlink_dump_tuples puts it: addresses,
// then the protocol and its ports (addresses and ports are never read).
func ctTuple(typ uint16, proto uint8) []byte {
	return nested(typ,
		nested(1, // CTA_TUPLE_IP
			nlsend.AppendAttr(nil, 1, []byte{127, 0, 0, 1}),  // CTA_IP_V4_SRC
			nlsend.AppendAttr(nil, 2, []byte{127, 0, 0, 1})), // CTA_IP_V4_DST
		nested(decoder.ConntrackAttrTupleProto,
			nlsend.AppendAttr(nil, decoder.ConntrackAttrProtoNum, []byte{proto}),
			be16attr(2, 40152), // CTA_PROTO_SRC_PORT
			be16attr(3, 80)))   // CTA_PROTO_DST_PORT
}

// ctConn describes a connection's event as ctnetlink_conntrack_event
// (net/netfilter/nf_conntrack_netlink.c) sends it.
type ctConn struct {
	typ, flags uint16
	proto      uint8
	status     uint32
	zone       uint16
	// tcpState is TCP's state plus one, 0 for none.
	tcpState uint8
	// bytes are the counters of each direction, 0 for none.
	bytes [2]uint64
	// start and stop are the timestamps, 0 for none.
	start, stop uint64
}

const (
	ipsConfirmed = 1 << 3
	ipsAssured   = 1 << 2
	seenReply    = decoder.ConntrackStatusSeenReply
)

func (c ctConn) attrs() [][]byte {
	a := [][]byte{ctTuple(decoder.ConntrackAttrTupleOrig, c.proto), ctTuple(2, c.proto)}
	if c.zone != 0 {
		a = append(a, be16attr(decoder.ConntrackAttrZone, c.zone))
	}
	a = append(a, be32attr(decoder.ConntrackAttrStatus, c.status), be32attr(12, 0xdeadbeef)) // CTA_ID
	a = append(a, be32attr(7, 120))                                                          // CTA_TIMEOUT
	for i, b := range c.bytes {
		if b != 0 {
			a = append(a, nested(decoder.ConntrackAttrCountersOrig+uint16(i),
				be64attr(1, 3), // CTA_COUNTERS_PACKETS
				be64attr(decoder.ConntrackAttrCountersBytes, b)))
		}
	}
	if c.start != 0 {
		ts := [][]byte{be64attr(decoder.ConntrackAttrTimestampStart, c.start)}
		if c.stop != 0 {
			ts = append(ts, be64attr(decoder.ConntrackAttrTimestampStop, c.stop))
		}
		a = append(a, nested(decoder.ConntrackAttrTimestamp, ts...))
	}
	if c.tcpState != 0 {
		a = append(a, nested(decoder.ConntrackAttrProtoinfo, nested(decoder.ConntrackAttrProtoinfoTCP,
			nlsend.AppendAttr(nil, decoder.ConntrackAttrProtoinfoTCPState, []byte{c.tcpState - 1}),
			nlsend.AppendAttr(nil, 2, []byte{7}), // CTA_PROTOINFO_TCP_WSCALE_ORIGINAL
			nlsend.AppendAttr(nil, 3, []byte{7}))))
	}
	return a
}

func (c ctConn) msg() []byte {
	return ctMsg(decoder.ConntrackSubsys, c.typ, c.flags, afInet, c.attrs()...)
}

// TCP states (enum tcp_conntrack) plus one, as ctConn takes them.
const (
	tcpSynSent     = 1 + 1
	tcpEstablished = 3 + 1
	tcpTimeWait    = 7 + 1
	tcpClose       = 8 + 1
)

var (
	ctNewTCP       = ctConn{typ: decoder.ConntrackMsgNew, flags: nlmCreateExcl, proto: 6, status: ipsConfirmed, tcpState: tcpSynSent}
	ctTimeWait     = ctConn{typ: decoder.ConntrackMsgDelete, proto: 6, status: ipsConfirmed | ipsAssured | seenReply, tcpState: tcpTimeWait}
	ctRefused      = ctConn{typ: decoder.ConntrackMsgDelete, proto: 6, status: ipsConfirmed, tcpState: tcpClose}
	ctUDPUnreplied = ctConn{typ: decoder.ConntrackMsgDelete, proto: 17, status: ipsConfirmed}
)

func TestConntrack(t *testing.T) {
	timed := ctTimeWait
	timed.start, timed.stop, timed.bytes = 1_000_000_000, 2_500_000_000, [2]uint64{60, 40}
	counted := ctUDPUnreplied
	counted.bytes = [2]uint64{100, 0}
	started := ctTimeWait
	started.start, started.bytes = 1_000_000_000, [2]uint64{60, 40}
	zoned := ctUDPUnreplied
	zoned.status |= seenReply
	zoned.zone = 7
	update := ctConn{typ: decoder.ConntrackMsgNew, proto: 6, status: ipsConfirmed | seenReply | ipsAssured, tcpState: tcpEstablished}
	odd := ctConn{typ: decoder.ConntrackMsgNew, flags: nlmCreateExcl, proto: 253, status: ipsConfirmed}
	oddState := ctTimeWait
	oddState.tcpState = 200 + 1

	noStatus := ctRefused.attrs()
	noStatus = append(noStatus[:2], noStatus[4:]...)
	wideProto := ctRefused.attrs()
	wideProto[0] = nested(decoder.ConntrackAttrTupleOrig, nested(decoder.ConntrackAttrTupleProto, u32attr(decoder.ConntrackAttrProtoNum, 6)))
	noProto := ctRefused.attrs()
	noProto[0] = nested(decoder.ConntrackAttrTupleOrig, nested(decoder.ConntrackAttrTupleProto))
	shortStatus := ctRefused.attrs()
	shortStatus[2] = be16attr(decoder.ConntrackAttrStatus, 0)
	badNest := ctRefused.attrs()
	badNest[len(badNest)-1] = nested(decoder.ConntrackAttrProtoinfo, rawAttr(40, decoder.ConntrackAttrProtoinfoTCP, []byte{1, 2, 3, 4}))
	wideState := ctRefused.attrs()
	wideState[len(wideState)-1] = nested(decoder.ConntrackAttrProtoinfo, nested(decoder.ConntrackAttrProtoinfoTCP, u32attr(decoder.ConntrackAttrProtoinfoTCPState, 8)))

	expect := func(typ uint16, helper string, zone uint16) []byte {
		a := [][]byte{ctTuple(1, 6), ctTuple(decoder.ConntrackAttrExpectTuple, 6), ctTuple(3, 6), be32attr(4, 300)}
		if zone != 0 {
			a = append(a, be16attr(decoder.ConntrackAttrExpectZone, zone))
		}
		if helper != "" {
			a = append(a, strAttr(decoder.ConntrackAttrExpectHelpName, helper))
		}
		return ctMsg(decoder.ConntrackSubsysExp, typ, 0, afInet, a...)
	}

	for _, c := range []struct {
		name     string
		datagram []byte
		want     []event
		// reasons are Diagnose's, one per malformed message.
		reasons []string
	}{
		{"new TCP connection", ctNewTCP.msg(), []event{{Name: "new/tcp"}}, nil},
		{"new IPv6 ICMP", ctMsg(decoder.ConntrackSubsys, decoder.ConntrackMsgNew, nlmCreateExcl, afInet6,
			ctTuple(decoder.ConntrackAttrTupleOrig, 58), be32attr(decoder.ConntrackAttrStatus, ipsConfirmed)),
			[]event{{Name: "new/icmpv6"}}, nil},
		{"protocol without a name", odd.msg(), []event{{Name: "new/253"}}, nil},
		{"update", update.msg(), []event{{Name: "update/tcp/established"}}, nil},
		{"destroyed in TIME_WAIT", ctTimeWait.msg(), []event{{Name: "destroy/tcp/time_wait"}}, nil},
		{"lifetime from the timestamps, before the bytes", timed.msg(),
			[]event{{Name: "destroy/tcp/time_wait", Value: 1.5, HasValue: true}}, nil},
		{"bytes without a stop", started.msg(),
			[]event{{Name: "destroy/tcp/time_wait", Value: 100, HasValue: true}}, nil},
		{"refused connect", ctRefused.msg(), []event{{Name: "destroy/tcp/unreplied/close"}}, nil},
		{"UDP without an answer, counted", counted.msg(),
			[]event{{Name: "destroy/udp/unreplied", Value: 100, HasValue: true}}, nil},
		{"zone", zoned.msg(), []event{{Name: "destroy/udp", Object: "7"}}, nil},
		{"TCP state conntrack -E does not name", oddState.msg(), []event{{Name: "destroy/tcp/200"}}, nil},
		{"32-bit counters", ctMsg(decoder.ConntrackSubsys, decoder.ConntrackMsgDelete, 0, afInet,
			ctTuple(decoder.ConntrackAttrTupleOrig, 17), be32attr(decoder.ConntrackAttrStatus, seenReply),
			nested(decoder.ConntrackAttrCountersReply, be32attr(decoder.ConntrackAttrCounters32Bytes, 77))),
			[]event{{Name: "destroy/udp", Value: 77, HasValue: true}}, nil},
		{"zone in the original tuple", ctMsg(decoder.ConntrackSubsys, decoder.ConntrackMsgDelete, 0, afInet,
			nested(decoder.ConntrackAttrTupleOrig, nested(decoder.ConntrackAttrTupleProto,
				nlsend.AppendAttr(nil, decoder.ConntrackAttrProtoNum, []byte{17})), be16attr(decoder.ConntrackAttrTupleZone, 3)),
			be32attr(decoder.ConntrackAttrStatus, seenReply)),
			[]event{{Name: "destroy/udp", Object: "3"}}, nil},
		{"expectation of a helper", expect(decoder.ConntrackExpMsgNew, "ftp", 0),
			[]event{{Name: "expect/new/tcp", Payload: "ftp"}}, nil},
		{"expectation's end, in a zone", expect(decoder.ConntrackExpMsgDelete, "", 2),
			[]event{{Name: "expect/destroy/tcp", Object: "2"}}, nil},
		{"burst", concat(ctNewTCP.msg(), ctRefused.msg(), ctUDPUnreplied.msg(), ctTimeWait.msg()),
			[]event{{Name: "new/tcp"}, {Name: "destroy/tcp/unreplied/close"}, {Name: "destroy/udp/unreplied"}, {Name: "destroy/tcp/time_wait"}}, nil},
		{"other subsystems and types", concat(
			ctMsg(3, 0, 0, afInet, u32attr(1, 1)),         // NFNL_SUBSYS_QUEUE
			ctMsg(decoder.ConntrackSubsys, 1, 0, afInet)), // IPCTNL_MSG_CT_GET
			nil, nil},

		{"no nfgenmsg", nlsend.AppendMessage(nil, decoder.ConntrackSubsys<<8|decoder.ConntrackMsgDelete, 0, []byte{2, 0}), nil, []string{"ctnetlink message with a 2-byte payload, too short for struct nfgenmsg (4 bytes)"}},
		{"no status", ctMsg(decoder.ConntrackSubsys, decoder.ConntrackMsgDelete, 0, afInet, noStatus...), nil, []string{"no attribute CTA_STATUS (3), which every connection's message carries"}},
		{"status of 16 bits", ctMsg(decoder.ConntrackSubsys, decoder.ConntrackMsgDelete, 0, afInet, shortStatus...), nil, []string{"attribute CTA_STATUS (3) at byte 124 carries 2 bytes, want 4"}},
		{"protocol of 32 bits", ctMsg(decoder.ConntrackSubsys, decoder.ConntrackMsgDelete, 0, afInet, wideProto...), nil, []string{"attribute CTA_PROTO_NUM (1) at byte 28 carries 4 bytes, want 1"}},
		{"no protocol", ctMsg(decoder.ConntrackSubsys, decoder.ConntrackMsgDelete, 0, afInet, noProto...), nil, []string{"no CTA_PROTO_NUM in CTA_TUPLE_ORIG, which every connection's message carries"}},
		{"TCP state of 32 bits", ctMsg(decoder.ConntrackSubsys, decoder.ConntrackMsgDelete, 0, afInet, wideState...), nil, []string{"attribute CTA_PROTOINFO_TCP_STATE (1) at byte 156 carries 4 bytes, want 1"}},
		{"protocol information that cannot be framed", ctMsg(decoder.ConntrackSubsys, decoder.ConntrackMsgDelete, 0, afInet, badNest...), nil, []string{"attribute CTA_PROTOINFO_TCP (1) at byte 152 has length 40, outside 4-8 (its header to the end of the message)"}},
		{"expectation without a tuple", ctMsg(decoder.ConntrackSubsysExp, decoder.ConntrackExpMsgNew, 0, afInet, strAttr(decoder.ConntrackAttrExpectHelpName, "ftp")), nil, []string{"no CTA_PROTO_NUM in CTA_EXPECT_TUPLE, which every expectation's message carries"}},
		{"helper name too long", expect(decoder.ConntrackExpMsgNew, strings.Repeat("h", 16), 0), nil, []string{"attribute CTA_EXPECT_HELP_NAME (6) at byte 184 names a helper of 16 bytes, longer than 15"}},
		{"malformed among good ones", concat(ctNewTCP.msg(), ctMsg(decoder.ConntrackSubsys, decoder.ConntrackMsgDelete, 0, afInet, noStatus...), ctRefused.msg()),
			[]event{{Name: "new/tcp"}, {Name: "destroy/tcp/unreplied/close"}}, []string{"no attribute CTA_STATUS (3), which every connection's message carries"}},
		{"truncated datagram", ctRefused.msg()[:40], nil, []string{"message length 180 runs past the end of the datagram (40 bytes left)"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			checkDecode(t, decoder.NewConntrack(), c.datagram, c.want, len(c.reasons))
			checkReasons(t, decoder.NewConntrack(), c.datagram, c.reasons...)
		})
	}
}

// TestConntrackZeroAllocs decodes a burst as the collector does, into a
// reused events slice: once the buffers have grown, nothing is allocated.
func TestConntrackZeroAllocs(t *testing.T) {
	d := decoder.NewConntrack()
	zoned := ctRefused
	zoned.zone = 9
	dgs := [][]byte{ctNewTCP.msg(), ctTimeWait.msg(), zoned.msg(), ctUDPUnreplied.msg()}
	var events []decoder.Event
	decode := func() {
		events = events[:0]
		for _, dg := range dgs {
			events, _ = d.Decode(events, dg)
		}
	}
	decode()
	if n := testing.AllocsPerRun(100, decode); n != 0 {
		t.Errorf("%v allocations per batch, want 0", n)
	}
}

func BenchmarkConntrackDecode(b *testing.B) {
	timed := ctUDPUnreplied
	timed.start, timed.stop = 1_000_000_000, 31_000_000_000
	benchmarkDecode(b, decoder.NewConntrack(), ctNewTCP.msg(), ctTimeWait.msg(), ctRefused.msg(), timed.msg())
}

func FuzzConntrack(f *testing.F) {
	f.Add(ctNewTCP.msg())
	f.Add(concat(ctTimeWait.msg(), ctRefused.msg()))
	f.Add(ctConn{typ: decoder.ConntrackMsgDelete, proto: 17, zone: 3, bytes: [2]uint64{1, 2}, start: 1, stop: 2}.msg())
	f.Fuzz(func(t *testing.T, datagram []byte) {
		d := decoder.NewConntrack()
		events, bad := d.Decode(nil, datagram)
		checkMessageCounts(t, datagram, events, bad)
		// Diagnose explains every malformed message.
		if p := decoder.Diagnose(d, datagram); len(p) != bad {
			t.Fatalf("%d malformed, Diagnose found %v", bad, p)
		}
	})
}

// nfnetlinkHeader and conntrackHeader are the kernel's uapi headers of the
// decoder's groups, subsystems, messages and attributes.
const (
	nfnetlinkHeader  = "/usr/include/linux/netfilter/nfnetlink.h"
	conntrackHeader  = "/usr/include/linux/netfilter/nfnetlink_conntrack.h"
	conntrackCommonH = "/usr/include/linux/netfilter/nf_conntrack_common.h"
	conntrackTCPH    = "/usr/include/linux/netfilter/nf_conntrack_tcp.h"
)

// cppLine matches the preprocessor lines inside enums (#define CTA_NAT
// CTA_NAT_SRC), and cEnumAlias the members defined as another
// (CTA_NAT_SEQ_ADJ_ORIG = CTA_SEQ_ADJ_ORIG), which parseHeader does not
// read.
var (
	cppLine    = regexp.MustCompile(`(?m)^[ \t]*#[^\n]*$`)
	cEnumAlias = regexp.MustCompile(`\w+\s*=\s*[A-Za-z_]\w*\s*,`)
)

// parseNetfilterHeader returns parseHeader's constants of a netfilter
// header, whose enums hold #defines and aliases.
func parseNetfilterHeader(t *testing.T, path string) map[string]int64 {
	t.Helper()
	src := readSystemHeader(t, path)
	consts := parseHeader(t, cEnumAlias.ReplaceAllString(cppLine.ReplaceAllString(src, ""), ""))
	for k, v := range parseHeader(t, strings.Join(cppLine.FindAllString(src, -1), "\n")) {
		consts[k] = v
	}
	return consts
}

// TestConntrackUAPI checks the conntrack decoder's constants against the
// kernel's uapi headers.
func TestConntrackUAPI(t *testing.T) {
	consts := parseNetfilterHeader(t, nfnetlinkHeader)
	for k, v := range parseNetfilterHeader(t, conntrackHeader) {
		consts[k] = v
	}
	// enum ip_conntrack_status's members are expressions: its bit's is
	// read instead.
	bit := regexp.MustCompile(`\bIPS_SEEN_REPLY_BIT\s*=\s*(\d+)`).FindStringSubmatch(readSystemHeader(t, conntrackCommonH))
	if bit == nil || "1<<"+bit[1] != fmt.Sprintf("1<<%d", bits.TrailingZeros(decoder.ConntrackStatusSeenReply)) {
		t.Errorf("IPS_SEEN_REPLY_BIT: %s says %v, decoder says IPS_SEEN_REPLY is %#x", conntrackCommonH, bit, decoder.ConntrackStatusSeenReply)
	}
	for k, v := range parseNetfilterHeader(t, conntrackTCPH) {
		consts[k] = v
	}
	want := map[string]int64{
		"NFNLGRP_CONNTRACK_NEW":         decoder.ConntrackGroupNew,
		"NFNLGRP_CONNTRACK_UPDATE":      decoder.ConntrackGroupUpdate,
		"NFNLGRP_CONNTRACK_DESTROY":     decoder.ConntrackGroupDestroy,
		"NFNLGRP_CONNTRACK_EXP_NEW":     decoder.ConntrackGroupExpNew,
		"NFNLGRP_CONNTRACK_EXP_UPDATE":  decoder.ConntrackGroupExpUpdate,
		"NFNLGRP_CONNTRACK_EXP_DESTROY": decoder.ConntrackGroupExpDestroy,
		"NFNL_SUBSYS_CTNETLINK":         decoder.ConntrackSubsys,
		"NFNL_SUBSYS_CTNETLINK_EXP":     decoder.ConntrackSubsysExp,
		"IPCTNL_MSG_CT_NEW":             decoder.ConntrackMsgNew,
		"IPCTNL_MSG_CT_DELETE":          decoder.ConntrackMsgDelete,
		"IPCTNL_MSG_EXP_NEW":            decoder.ConntrackExpMsgNew,
		"IPCTNL_MSG_EXP_DELETE":         decoder.ConntrackExpMsgDelete,
		"CTA_TUPLE_ORIG":                decoder.ConntrackAttrTupleOrig,
		"CTA_STATUS":                    decoder.ConntrackAttrStatus,
		"CTA_PROTOINFO":                 decoder.ConntrackAttrProtoinfo,
		"CTA_COUNTERS_ORIG":             decoder.ConntrackAttrCountersOrig,
		"CTA_COUNTERS_REPLY":            decoder.ConntrackAttrCountersReply,
		"CTA_ZONE":                      decoder.ConntrackAttrZone,
		"CTA_TIMESTAMP":                 decoder.ConntrackAttrTimestamp,
		"CTA_TUPLE_PROTO":               decoder.ConntrackAttrTupleProto,
		"CTA_TUPLE_ZONE":                decoder.ConntrackAttrTupleZone,
		"CTA_PROTO_NUM":                 decoder.ConntrackAttrProtoNum,
		"CTA_PROTOINFO_TCP":             decoder.ConntrackAttrProtoinfoTCP,
		"CTA_PROTOINFO_TCP_STATE":       decoder.ConntrackAttrProtoinfoTCPState,
		"CTA_COUNTERS_BYTES":            decoder.ConntrackAttrCountersBytes,
		"CTA_COUNTERS32_BYTES":          decoder.ConntrackAttrCounters32Bytes,
		"CTA_TIMESTAMP_START":           decoder.ConntrackAttrTimestampStart,
		"CTA_TIMESTAMP_STOP":            decoder.ConntrackAttrTimestampStop,
		"CTA_EXPECT_TUPLE":              decoder.ConntrackAttrExpectTuple,
		"CTA_EXPECT_HELP_NAME":          decoder.ConntrackAttrExpectHelpName,
		"CTA_EXPECT_ZONE":               decoder.ConntrackAttrExpectZone,
		"TCP_CONNTRACK_SYN_SENT":        tcpSynSent - 1,
		"TCP_CONNTRACK_ESTABLISHED":     tcpEstablished - 1,
		"TCP_CONNTRACK_TIME_WAIT":       tcpTimeWait - 1,
		"TCP_CONNTRACK_CLOSE":           tcpClose - 1,
		"TCP_CONNTRACK_MAX":             10, // the states the decoder names
	}
	checkConsts(t, conntrackHeader, consts, want, nil)
}
