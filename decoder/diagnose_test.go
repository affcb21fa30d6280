package decoder_test

import (
	"encoding/binary"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/kevent-exporter/kevent_exporter/decoder"
	"github.com/kevent-exporter/kevent_exporter/internal/nlsend"
)

// The helpers of this file are prefixed with diag so that they cannot clash
// with those of the decoders' tests.

// diagU64 returns v in native byte order.
func diagU64(v uint64) []byte { return binary.NativeEndian.AppendUint64(nil, v) }

// diagKevent returns a well-formed kevent message of 84 bytes: the header
// and five 12-byte attributes (seq, instance, timestamp, name "tick",
// value), then the 8-byte payload attribute "p".
func diagKevent(seq uint64) []byte {
	return nlsend.AppendKevent(nil, nlsend.KeventEvent{Seq: seq, Instance: 7, Name: "tick", Value: 1, Payload: "p"})
}

// diagKeventAttrs returns a KEVENT_MSG_EVENT message carrying attrs.
func diagKeventAttrs(attrs ...[]byte) []byte {
	return nlsend.AppendMessage(nil, decoder.KeventMsgEvent, 1, diagConcat(attrs...))
}

// diagAttr returns an attribute.
func diagAttr(typ uint16, v []byte) []byte { return nlsend.AppendAttr(nil, typ, v) }

// diagName returns a KEVENT_A_NAME attribute of name; it is 12 bytes for
// names of 4-7 bytes.
func diagName(name string) []byte { return diagAttr(decoder.KeventAttrName, append([]byte(name), 0)) }

func diagConcat(bs ...[]byte) []byte {
	var out []byte
	for _, b := range bs {
		out = append(out, b...)
	}
	return out
}

// diagSetLen overwrites the length field of the message at the start of b.
func diagSetLen(b []byte, l uint32) []byte {
	binary.NativeEndian.PutUint32(b[0:4], l)
	return b
}

// diagLibudev returns a udev re-broadcast of props with its header's
// fields at byte off overwritten by v, if v is not nil.
func diagLibudev(props string, off int, v []byte) []byte {
	b := nlsend.AppendLibudev(nil, props)
	copy(b[off:], v)
	return b
}

const diagProps = "ACTION=change\x00DEVPATH=/devices/virtual/net/lo\x00SUBSYSTEM=net\x00SEQNUM=4\x00"

// diagDecoders make the decoders Diagnose explains, by the name the tests
// give them: every decoder of the registry, and kevent-genl, the kevent
// decoder of the module's generic netlink family.
var diagDecoders = func() map[string]func() decoder.Decoder {
	m := make(map[string]func() decoder.Decoder)
	for _, d := range decoder.Infos() {
		m[d.Name] = func() decoder.Decoder { return d.New(decoder.Options{}) }
		if d.Name == "kevent" {
			m["kevent-genl"] = func() decoder.Decoder { return d.New(decoder.Options{Genl: true}) }
		}
	}
	return m
}()

// diagNames are the keys of diagDecoders, in a fixed order.
var diagNames = slices.Sorted(maps.Keys(diagDecoders))

// diagGenl returns a generic netlink message of the family with id 0x1c:
// command cmd, then attrs.
func diagGenl(cmd uint8, attrs ...[]byte) []byte {
	return nlsend.AppendMessage(nil, 0x1c, 1, append([]byte{cmd, 1, 0, 0}, diagConcat(attrs...)...))
}

type diagnoseTest struct {
	name     string
	decoder  string
	datagram []byte
	want     []decoder.Problem
}

var diagnoseTests = []diagnoseTest{
	{name: "kevent well-formed", decoder: "kevent", datagram: diagConcat(diagKevent(1), diagKevent(2))},
	{name: "kevent empty datagram", decoder: "kevent", datagram: []byte{}},
	{
		name: "kevent wrong type", decoder: "kevent",
		datagram: nlsend.AppendMessage(nil, 0x11, 1, diagName("tick")),
		want:     []decoder.Problem{{Offset: 0, Reason: "message type 0x11 is not KEVENT_MSG_EVENT (0x10)"}},
	},
	{
		name: "kevent value of 4 bytes", decoder: "kevent",
		datagram: diagKeventAttrs(diagAttr(decoder.KeventAttrSeq, diagU64(1)), diagName("tick"),
			diagAttr(decoder.KeventAttrValue, []byte{1, 0, 0, 0})),
		want: []decoder.Problem{{Offset: 0, Reason: "attribute KEVENT_A_VALUE (5) at byte 40 carries 4 bytes, want 8"}},
	},
	{
		name: "kevent bad message between good ones", decoder: "kevent",
		datagram: diagConcat(diagKevent(1), diagKeventAttrs(diagAttr(decoder.KeventAttrSeq, diagU64(2))), diagKevent(3)),
		want:     []decoder.Problem{{Offset: 84, Reason: "no event name: KEVENT_A_NAME is missing or empty"}},
	},
	{
		name: "kevent two bad messages", decoder: "kevent",
		datagram: diagConcat(
			diagKeventAttrs(diagAttr(decoder.KeventAttrInstance, []byte{1})),
			diagKevent(2),
			diagKeventAttrs(diagName(strings.Repeat("n", 64))),
		),
		want: []decoder.Problem{
			{Offset: 0, Reason: "attribute KEVENT_A_INSTANCE (2) at byte 16 carries 1 bytes, want 8"},
			{Offset: 24 + 84, Reason: "event name of 64 bytes, longer than 63 (KEVENT_NAME_MAX with the NUL)"},
		},
	},
	{
		name: "kevent payload too long", decoder: "kevent",
		datagram: diagKeventAttrs(diagName("tick"), diagAttr(decoder.KeventAttrPayload, []byte(strings.Repeat("p", 256)))),
		want:     []decoder.Problem{{Offset: 0, Reason: "payload of 256 bytes, longer than 255 (KEVENT_PAYLOAD_MAX with the NUL)"}},
	},
	{
		name: "kevent attribute length past the message", decoder: "kevent",
		datagram: func() []byte {
			b := diagKeventAttrs(diagAttr(decoder.KeventAttrSeq, diagU64(1)), diagName("tick"))
			binary.NativeEndian.PutUint16(b[28:30], 100)
			return b
		}(),
		want: []decoder.Problem{{Offset: 0, Reason: "attribute KEVENT_A_NAME (4) at byte 28 has length 100, outside 4-12 (its header to the end of the message)"}},
	},
	{
		name: "kevent unknown attribute with a short length", decoder: "kevent",
		datagram: func() []byte {
			b := diagKeventAttrs(diagName("tick"), diagAttr(42, []byte{1, 2, 3, 4}))
			binary.NativeEndian.PutUint16(b[28:30], 2)
			return b
		}(),
		want: []decoder.Problem{{Offset: 0, Reason: "attribute type 42 at byte 28 has length 2, outside 4-8 (its header to the end of the message)"}},
	},
	{
		name: "kevent stray bytes after the attributes", decoder: "kevent",
		datagram: diagKeventAttrs(diagName("tick"), []byte{1, 2}),
		want:     []decoder.Problem{{Offset: 0, Reason: "2 bytes left at byte 28, too few for an attribute header (4 bytes)"}},
	},
	{
		name: "kevent truncated datagram", decoder: "kevent",
		datagram: diagKevent(1)[:40],
		want:     []decoder.Problem{{Offset: 0, Reason: "message length 84 runs past the end of the datagram (40 bytes left)"}},
	},
	{
		name: "kevent stray bytes after a message", decoder: "kevent",
		datagram: diagConcat(diagKevent(1), make([]byte, 10)),
		want:     []decoder.Problem{{Offset: 84, Reason: "10 bytes left, too few for a netlink message header (16 bytes)"}},
	},
	{
		name: "kevent length under the header", decoder: "kevent",
		datagram: diagConcat(diagKevent(1), diagSetLen(diagKevent(2), 8)),
		want:     []decoder.Problem{{Offset: 84, Reason: "message length 8 is shorter than the netlink message header (16 bytes)"}},
	},
	{
		name: "kevent object too long", decoder: "kevent",
		datagram: diagConcat(
			nlsend.AppendKevent(nil, nlsend.KeventEvent{Seq: 1, Instance: 7, Name: "tick", Object: "eth0"}),
			nlsend.AppendKevent(nil, nlsend.KeventEvent{Seq: 2, Instance: 7, Name: "tick", Object: strings.Repeat("o", 64)}),
		),
		want: []decoder.Problem{{Offset: 88, Reason: "object of 64 bytes, longer than 63 (KEVENT_OBJECT_MAX with the NUL)"}},
	},
	{
		name: "kevent-genl well-formed", decoder: "kevent-genl",
		datagram: diagConcat(
			diagGenl(decoder.KeventCmdEvent, nlsend.AppendKeventAttrs(nil, nlsend.KeventEvent{Seq: 1, Instance: 7, Name: "tick", Object: "eth0"})),
			diagGenl(decoder.KeventCmdEvent, diagName("tock")),
		),
	},
	{
		name: "kevent-genl classic message", decoder: "kevent-genl",
		datagram: diagKeventAttrs(diagName("tick")),
		want:     []decoder.Problem{{Offset: 0, Reason: "generic netlink command 9 is not KEVENT_CMD_EVENT (1)"}},
	},
	{
		name: "kevent-genl short payload", decoder: "kevent-genl",
		datagram: nlsend.AppendMessage(nil, 0x1c, 1, []byte{1, 1}),
		want:     []decoder.Problem{{Offset: 0, Reason: "generic netlink message with a 2-byte payload, too short for its header (4 bytes)"}},
	},
	{
		name: "kevent-genl value of 4 bytes", decoder: "kevent-genl",
		datagram: diagConcat(diagGenl(decoder.KeventCmdEvent, diagName("tock")), diagGenl(decoder.KeventCmdEvent,
			diagAttr(decoder.KeventAttrSeq, diagU64(1)), diagName("tick"), diagAttr(decoder.KeventAttrValue, []byte{1, 0, 0, 0}))),
		want: []decoder.Problem{{Offset: 32, Reason: "attribute KEVENT_A_VALUE (5) at byte 76 carries 4 bytes, want 8"}},
	},
	{
		name: "genl well-formed", decoder: "genl",
		datagram: diagConcat(diagGenl(3, diagAttr(1, []byte("eth0\x00")), diagAttr(2, []byte{1, 2, 3, 4})), diagGenl(4)),
	},
	{
		name: "genl short payload", decoder: "genl",
		datagram: diagConcat(diagGenl(3), nlsend.AppendMessage(nil, 0x1c, 1, nil)),
		want:     []decoder.Problem{{Offset: 20, Reason: "generic netlink message with a 0-byte payload, too short for its header (4 bytes)"}},
	},
	{
		name: "genl attribute length past the message", decoder: "genl",
		datagram: func() []byte {
			b := diagGenl(3, diagAttr(3, []byte{1, 2, 3, 4}))
			binary.NativeEndian.PutUint16(b[20:22], 100)
			return b
		}(),
		want: []decoder.Problem{{Offset: 0, Reason: "attribute type 3 at byte 20 has length 100, outside 4-8 (its header to the end of the message)"}},
	},
	{name: "raw well-formed", decoder: "raw", datagram: diagConcat(nlsend.AppendMessage(nil, 16, 1, []byte("5\x00")), nlsend.AppendMessage(nil, 2, 1, make([]byte, 20)))},
	{
		name: "raw short NLMSG_ERROR", decoder: "raw",
		datagram: diagConcat(nlsend.AppendMessage(nil, 16, 1, []byte("x")), nlsend.AppendMessage(nil, 2, 1, []byte{1, 2})),
		want:     []decoder.Problem{{Offset: 20, Reason: "NLMSG_ERROR message with a 2-byte payload, too short for its errno (4 bytes)"}},
	},
	{
		name: "raw truncated header", decoder: "raw",
		datagram: []byte("Hello from kernel"),
		want:     []decoder.Problem{{Offset: 0, Reason: "message length 1819043144 runs past the end of the datagram (17 bytes left)"}},
	},
	{name: "proc well-formed", decoder: "proc", datagram: diagConcat(procExit(42, 42, 0), cnMsg(1, 1, procEvent(procEventFork, 1, 1, 2, 2)))},
	{
		name: "proc another message type", decoder: "proc",
		datagram: nlsend.AppendMessage(nil, 0x10, 1, make([]byte, 40)),
		want:     []decoder.Problem{{Offset: 0, Reason: "message type 0x10 is not the connector's NLMSG_DONE (0x3)"}},
	},
	{
		name: "proc payload shorter than cn_msg", decoder: "proc",
		datagram: diagConcat(procExit(42, 42, 0), nlsend.AppendMessage(nil, 3, 1, make([]byte, 12))),
		want:     []decoder.Problem{{Offset: 76, Reason: "payload of 12 bytes, too short for struct cn_msg (20 bytes)"}},
	},
	{
		name: "proc another connector", decoder: "proc",
		datagram: cnMsg(2, 1, procEvent(procEventExit, 42, 42, 0)),
		want:     []decoder.Problem{{Offset: 0, Reason: "connector id 2:1 is not process events' (CN_IDX_PROC:CN_VAL_PROC, 1:1)"}},
	},
	{
		name: "proc data length past the message", decoder: "proc",
		datagram: func() []byte {
			b := procExit(42, 42, 0)
			binary.NativeEndian.PutUint16(b[32:34], 41)
			return b
		}(),
		want: []decoder.Problem{{Offset: 0, Reason: "cn_msg length 41 runs past the message (40 bytes after struct cn_msg)"}},
	},
	{
		name: "proc data shorter than an event", decoder: "proc",
		datagram: cnMsg(1, 1, procEvent(procEventExit)[:12]),
		want:     []decoder.Problem{{Offset: 0, Reason: "cn_msg length 12 is shorter than struct proc_event's header (16 bytes)"}},
	},
	{
		name: "proc exit event cut short", decoder: "proc",
		datagram: cnMsg(1, 1, procEvent(procEventExit, 42, 42)[:24]),
		want:     []decoder.Problem{{Offset: 0, Reason: "exit event of 24 bytes, too short for its struct exit_proc_event (32 bytes)"}},
	},
	{name: "acpi well-formed", decoder: "acpi", datagram: acpiMsg(acpiStruct("button/power", "LNXPWRBN:00", 0x80, 1))},
	{
		name: "acpi another command", decoder: "acpi",
		datagram: genlMsg(decoder.ACPICmdEvent+1, nlsend.AppendAttr(nil, decoder.ACPIAttrEvent, acpiStruct("x", "y", 1, 1))),
		want:     []decoder.Problem{{Offset: 0, Reason: "generic netlink command 2 is not ACPI_GENL_CMD_EVENT (1)"}},
	},
	{
		name: "acpi no event attribute", decoder: "acpi",
		datagram: diagConcat(acpiMsg(acpiStruct("x", "y", 1, 1)), genlMsg(decoder.ACPICmdEvent, nlsend.AppendAttr(nil, 2, u32(7)))),
		want:     []decoder.Problem{{Offset: 68, Reason: "no attribute ACPI_GENL_ATTR_EVENT (1)"}},
	},
	{
		name: "acpi struct one byte short", decoder: "acpi",
		datagram: acpiMsg(acpiStruct("x", "y", 1, 1)[:decoder.ACPIEventLen-1]),
		want: []decoder.Problem{{Offset: 0, Reason: "attribute ACPI_GENL_ATTR_EVENT (1) at byte 20 carries 43 bytes, " +
			"want at least 44 (struct acpi_genl_event)"}},
	},
	{
		name: "acpi empty device class", decoder: "acpi",
		datagram: genlMsg(decoder.ACPICmdEvent, nlsend.AppendAttr(nil, 2, u32(7)), nlsend.AppendAttr(nil, decoder.ACPIAttrEvent, acpiStruct("", "y", 1, 1))),
		want:     []decoder.Problem{{Offset: 0, Reason: "attribute ACPI_GENL_ATTR_EVENT (1) at byte 28: device_class is empty or lacks its NUL"}},
	},
	{
		name: "acpi bus id without its NUL", decoder: "acpi",
		datagram: acpiMsg(acpiStruct("battery", strings.Repeat("b", decoder.ACPIBusIDLen), 1, 1)),
		want:     []decoder.Problem{{Offset: 0, Reason: "attribute ACPI_GENL_ATTR_EVENT (1) at byte 20: bus_id lacks its NUL"}},
	},
	{
		name: "quota well-formed", decoder: "quota",
		datagram: quotaWarning{warning: decoder.QuotaBHardWarn, major: 8, minor: 1, excessID: 1000, causedID: 1000, pad: true}.msg(),
	},
	{
		name: "quota another command", decoder: "quota",
		datagram: genlMsg(decoder.QuotaCmdWarning+1, quotaWarning{}.attrs()...),
		want:     []decoder.Problem{{Offset: 0, Reason: "generic netlink command 2 is not QUOTA_NL_C_WARNING (1)"}},
	},
	{
		name: "quota quota type of 8 bytes", decoder: "quota",
		datagram: genlMsg(decoder.QuotaCmdWarning, append([][]byte{nlsend.AppendAttr(nil, decoder.QuotaAttrQtype, u64(0))}, quotaWarning{}.attrs()[1:]...)...),
		want:     []decoder.Problem{{Offset: 0, Reason: "attribute QUOTA_NL_A_QTYPE (1) at byte 20 carries 8 bytes, want 4"}},
	},
	{
		name: "quota no caused_by", decoder: "quota",
		datagram: genlMsg(decoder.QuotaCmdWarning, quotaWarning{}.attrs()[:5]...),
		want:     []decoder.Problem{{Offset: 0, Reason: "no attribute QUOTA_NL_A_CAUSED_ID (6), which every warning carries"}},
	},
	{
		name: "quota unknown warning", decoder: "quota",
		datagram: quotaWarning{warning: decoder.QuotaBSoftBelow + 1}.msg(),
		want:     []decoder.Problem{{Offset: 0, Reason: "warning 11 is not one quota.h defines (0-10)"}},
	},
	{name: "thermal well-formed", decoder: "thermal", datagram: diagConcat(tzCreate(3, "acpitz"), tripCrossed(decoder.ThermalEventTzTripUp, 3, 1, 85000), cpuCaps(0, 1))},
	{
		name: "thermal missing attribute", decoder: "thermal",
		datagram: diagConcat(tzCreate(3, "acpitz"), tzEvent(decoder.ThermalEventTzTripUp, 3)),
		want:     []decoder.Problem{{Offset: 40, Reason: `no attribute THERMAL_GENL_ATTR_TZ_TRIP_ID (5), which every "trip/up" message (command 5) carries`}},
	},
	{
		name: "thermal name without its NUL", decoder: "thermal",
		datagram: genlMsg(decoder.ThermalEventTzCreate, u32attr(decoder.ThermalAttrTzID, 3), nlsend.AppendAttr(nil, decoder.ThermalAttrTzName, []byte("acpitz"))),
		want:     []decoder.Problem{{Offset: 0, Reason: "attribute THERMAL_GENL_ATTR_TZ_NAME (10) at byte 28 holds 6 bytes, not a NUL-terminated name of 1-19 characters"}},
	},
	{
		name: "thermal zone id of 8 bytes", decoder: "thermal",
		datagram: genlMsg(decoder.ThermalSamplingTemp, nlsend.AppendAttr(nil, decoder.ThermalAttrTzID, u64(3)), u32attr(decoder.ThermalAttrTzTemp, 85000)),
		want:     []decoder.Problem{{Offset: 0, Reason: "attribute THERMAL_GENL_ATTR_TZ_ID (2) at byte 20 carries 8 bytes, want 4"}},
	},
	{
		name: "thermal nested attribute past its nest", decoder: "thermal",
		datagram: genlMsg(decoder.ThermalEventCPUCapabilityChange,
			nlsend.AppendAttr(nil, decoder.ThermalAttrCPUCapability|nlaFNested, rawAttr(100, decoder.ThermalAttrCPUCapabilityID, u32(1)))),
		want: []decoder.Problem{{Offset: 0, Reason: "attribute THERMAL_GENL_ATTR_CPU_CAPABILITY_ID (21) at byte 24 has length 100, " +
			"outside 4-8 (its header to the end of the message)"}},
	},
	{
		name: "rtnetlink well-formed", decoder: "rtnetlink",
		datagram: diagConcat(newlink(3, "kvA", operUp, 1), addr4(unix.RTM_NEWADDR, 3, ip4a, 24, "kvA", 1, 1),
			neighMsg(unix.RTM_NEWNEIGH, 3, unix.NUD_FAILED, ip4b[:]), rtMsg(unix.NLMSG_DONE, unix.NLM_F_MULTI, u32(0))),
	},
	{
		name: "rtnetlink link message short of its header", decoder: "rtnetlink",
		datagram: rtMsg(unix.RTM_NEWLINK, 0, make([]byte, 8)),
		want:     []decoder.Problem{{Offset: 0, Reason: "link message with a 8-byte payload, too short for struct ifinfomsg (16 bytes)"}},
	},
	{
		name: "rtnetlink link without its operational state", decoder: "rtnetlink",
		datagram: rtMsg(unix.RTM_NEWLINK, 0, ifinfomsg(unix.AF_UNSPEC, 3, 0, 0), nlsend.AppendAttr(nil, unix.IFLA_IFNAME, cstr("kvA"))),
		want:     []decoder.Problem{{Offset: 0, Reason: "no attribute IFLA_OPERSTATE (16), which every link message carries"}},
	},
	{
		name: "rtnetlink link name too long", decoder: "rtnetlink",
		datagram: diagConcat(newlink(3, "kvA", operUp, 1), link(unix.RTM_DELLINK, 4, 0, strings.Repeat("n", 16), operUp, 1)),
		want:     []decoder.Problem{{Offset: 284, Reason: "attribute IFLA_IFNAME (3) at byte 316 holds a name of 16 bytes, want 1-15"}},
	},
	{
		name: "rtnetlink operational state of 4 bytes", decoder: "rtnetlink",
		datagram: rtMsg(unix.RTM_NEWLINK, 0, ifinfomsg(unix.AF_UNSPEC, 3, 0, 0), nlsend.AppendAttr(nil, unix.IFLA_IFNAME, cstr("kvA")),
			nlsend.AppendAttr(nil, unix.IFLA_OPERSTATE, u32(operUp))),
		want: []decoder.Problem{{Offset: 0, Reason: "attribute IFLA_OPERSTATE (16) at byte 40 carries 4 bytes, want 1"}},
	},
	{
		name: "rtnetlink IPv4 address of 16 bytes", decoder: "rtnetlink",
		datagram: rtMsg(unix.RTM_NEWADDR, 0, ifaddrmsg(unix.AF_INET, 24, 3), nlsend.AppendAttr(nil, unix.IFA_LOCAL, ip6a[:])),
		want:     []decoder.Problem{{Offset: 0, Reason: "attribute IFA_LOCAL (2) at byte 24 carries 16 bytes, want 4"}},
	},
	{
		name: "rtnetlink address without an address", decoder: "rtnetlink",
		datagram: rtMsg(unix.RTM_DELADDR, 0, ifaddrmsg(unix.AF_INET6, 64, 3), cacheinfo(1, 1)),
		want:     []decoder.Problem{{Offset: 0, Reason: "no address: neither attribute IFA_LOCAL nor IFA_ADDRESS"}},
	},
	{
		name: "rtnetlink neighbour attribute cut short", decoder: "rtnetlink",
		datagram: rtMsg(unix.RTM_NEWNEIGH, 0, ndmsg(unix.AF_INET, 3, unix.NUD_FAILED), rawAttr(2, unix.NDA_DST, nil)),
		want:     []decoder.Problem{{Offset: 0, Reason: "attribute NDA_DST (1) at byte 28 has length 2, outside 4-4 (its header to the end of the message)"}},
	},
	{name: "uevent kernel", decoder: "uevent", datagram: []byte("change@/devices/virtual/net/lo\x00" + diagProps)},
	{name: "uevent libudev", decoder: "uevent", datagram: diagLibudev(diagProps, 0, nil)},
	{
		name: "uevent without a NUL", decoder: "uevent",
		datagram: []byte("garbage"),
		want:     []decoder.Problem{{Offset: 0, Reason: `no NUL-terminated ACTION@DEVPATH line: "garbage"`}},
	},
	{
		name: "uevent long first line", decoder: "uevent",
		datagram: []byte(strings.Repeat("a", 100) + "\x00" + diagProps),
		want:     []decoder.Problem{{Offset: 0, Reason: `first line "` + strings.Repeat("a", 64) + `"... is not ACTION@DEVPATH`}},
	},
	{
		name: "uevent first line starting with @", decoder: "uevent",
		datagram: []byte("@/devices\x00" + diagProps),
		want:     []decoder.Problem{{Offset: 0, Reason: `first line "@/devices" is not ACTION@DEVPATH`}},
	},
	{
		name: "uevent without SUBSYSTEM", decoder: "uevent",
		datagram: []byte("add@/devices/x\x00ACTION=add\x00DEVPATH=/devices/x\x00SUBSYSTEM=\x00"),
		want:     []decoder.Problem{{Offset: 15, Reason: "no SUBSYSTEM property (or it is empty)"}},
	},
	{
		name: "uevent without ACTION", decoder: "uevent",
		datagram: diagLibudev("SUBSYSTEM=net\x00", 0, nil),
		want:     []decoder.Problem{{Offset: 40, Reason: "no ACTION property (or it is empty)"}},
	},
	{
		name: "uevent without either", decoder: "uevent",
		datagram: []byte("add@/devices/x\x00=add\x00"),
		want:     []decoder.Problem{{Offset: 15, Reason: "no ACTION and no SUBSYSTEM property (or both empty)"}},
	},
	{
		name: "uevent short libudev header", decoder: "uevent",
		datagram: diagLibudev(diagProps, 0, nil)[:30],
		want:     []decoder.Problem{{Offset: 0, Reason: "libudev message of 30 bytes, shorter than its header (40 bytes)"}},
	},
	{
		name: "uevent libudev magic", decoder: "uevent",
		datagram: diagLibudev(diagProps, 8, []byte{0xca, 0xfe, 0xfe, 0xed}),
		want:     []decoder.Problem{{Offset: 8, Reason: "libudev magic 0xcafefeed, want 0xfeedcafe"}},
	},
	{
		name: "uevent libudev properties past the end", decoder: "uevent",
		datagram: diagLibudev(diagProps, 20, binary.NativeEndian.AppendUint32(nil, 1000)),
		want: []decoder.Problem{{Offset: 16, Reason: "libudev properties of 1000 bytes at byte 40 lie outside the message's " +
			"69 bytes after its header"}},
	},
}

func TestDiagnose(t *testing.T) {
	for _, tt := range diagnoseTests {
		t.Run(tt.name, func(t *testing.T) {
			d := diagDecoders[tt.decoder]()
			if diff := cmp.Diff(tt.want, decoder.Diagnose(d, tt.datagram)); diff != "" {
				t.Errorf("Diagnose (-want +got):\n%s", diff)
			}
			// Diagnose explains what the decoder counts: one problem per
			// malformed message.
			if _, bad := d.Decode(nil, tt.datagram); bad != len(tt.want) {
				t.Errorf("the decoder finds %d malformed messages, the test expects %d problems", bad, len(tt.want))
			}
		})
	}
}

// TestDecodeAllocatesNothing decodes the datagrams of the Diagnose tests,
// well-formed and malformed, and fails if decoding one allocates once the
// decoder has seen it: a flood of bad messages costs no garbage either.
func TestDecodeAllocatesNothing(t *testing.T) {
	for _, tt := range diagnoseTests {
		d := diagDecoders[tt.decoder]()
		events := make([]decoder.Event, 0, 16)
		events, _ = d.Decode(events, tt.datagram)
		if n := testing.AllocsPerRun(10, func() { events, _ = d.Decode(events[:0], tt.datagram) }); n != 0 {
			t.Errorf("%s: %v allocations per Decode", tt.name, n)
		}
	}
}

func TestDiagnoseProblemString(t *testing.T) {
	p := decoder.Problem{Offset: 84, Reason: "no event name"}
	if got, want := p.String(), "at byte 84: no event name"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

// otherDecoder is a Decoder Diagnose does not know.
type otherDecoder struct{}

func (otherDecoder) Decode(events []decoder.Event, _ []byte) ([]decoder.Event, int) { return events, 1 }

func TestDiagnoseUnknownDecoder(t *testing.T) {
	if p := decoder.Diagnose(otherDecoder{}, []byte("x")); p != nil {
		t.Errorf("Diagnose of an unknown decoder = %v, want nil", p)
	}
}

// TestDiagnoseBatchIntact: Diagnose runs on the receive goroutine between
// two Decode calls of a batch; it must not touch the decoder's memory,
// which holds the names of the batch's events.
func TestDiagnoseBatchIntact(t *testing.T) {
	d := decoder.NewUevent()
	events, _ := d.Decode(nil, []byte("change@/devices/virtual/net/lo\x00"+diagProps))
	decoder.Diagnose(d, []byte("add@/x\x00ACTION=add\x00SUBSYSTEM=block\x00"))
	decoder.Diagnose(d, []byte("garbage"))
	if got := string(events[0].Name); got != "net/change" {
		t.Errorf("event name after Diagnose = %q, want net/change", got)
	}
}

// checkDiagnoseCounts fails unless Diagnose finds one problem per message
// the decoder called name counts as malformed, in order of offset, each
// within the datagram.
func checkDiagnoseCounts(t *testing.T, name string, datagram []byte) {
	t.Helper()
	d := diagDecoders[name]()
	_, bad := d.Decode(nil, datagram)
	problems := decoder.Diagnose(d, datagram)
	if len(problems) != bad {
		t.Fatalf("%s decoder: %d malformed, Diagnose found %d problems %v in %q", name, bad, len(problems), problems, datagram)
	}
	last := -1
	for _, p := range problems {
		if p.Offset <= last || p.Offset > len(datagram) || p.Reason == "" {
			t.Fatalf("%s decoder: problems %v out of order or outside the %d-byte datagram %q", name, problems, len(datagram), datagram)
		}
		last = p.Offset
	}
}

// TestDiagnoseAgreesWithDecoders mutates well-formed datagrams at random
// (deterministically) and checks that Diagnose counts what the decoders
// count.
func TestDiagnoseAgreesWithDecoders(t *testing.T) {
	seeds := make(map[string][][]byte)
	for _, tt := range diagnoseTests {
		seeds[tt.decoder] = append(seeds[tt.decoder], tt.datagram)
	}
	r := rand.New(rand.NewPCG(1, 2))
	n := 20000
	if testing.Short() {
		n = 2000
	}
	for name, datagrams := range seeds {
		for i := 0; i < n; i++ {
			b := append([]byte(nil), datagrams[r.IntN(len(datagrams))]...)
			for k := r.IntN(4); k >= 0; k-- {
				switch op := r.IntN(4); {
				case op == 0 && len(b) > 0:
					b[r.IntN(len(b))] = byte(r.UintN(256))
				case op == 1 && len(b) > 0:
					// Small lengths, to hit the framing and attribute checks.
					b[r.IntN(len(b))] = byte(r.IntN(24))
				case op == 2 && len(b) > 0:
					b = b[:r.IntN(len(b))]
				default:
					b = append(b, datagrams[r.IntN(len(datagrams))]...)
				}
			}
			checkDiagnoseCounts(t, name, b)
		}
	}
}

func FuzzDiagnose(f *testing.F) {
	for _, tt := range diagnoseTests {
		f.Add(uint8(slices.Index(diagNames, tt.decoder)), tt.datagram)
	}
	f.Fuzz(func(t *testing.T, which uint8, datagram []byte) {
		checkDiagnoseCounts(t, diagNames[int(which)%len(diagNames)], datagram)
	})
}
