package decoder_test

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kevent-exporter/kevent_exporter/decoder"
	"github.com/kevent-exporter/kevent_exporter/internal/nlsend"
)

// dropKallsyms is a /proc/kallsyms of the functions the tests drop in, with
// a data symbol and a module's function among them.
const dropKallsyms = `ffffffff81000000 T _text
ffffffff81a00000 t __udp4_lib_rcv
ffffffff81a00c30 T udp_v4_early_demux
ffffffff81b00000 D some_data
ffffffff81c00000 t a_very_long_function_name_that_the_kernel_cuts
ffffffff81c00100 W weak_function
ffffffffc0a00000 t nft_do_chain	[nf_tables]
`

// Code addresses inside the functions of dropKallsyms.
const (
	pcUDP     = 0xffffffff81a009a2
	pcLong    = 0xffffffff81c00042
	pcModule  = 0xffffffffc0a0001c
	pcNowhere = 0xffffffff80000010
)

// writeKallsyms writes a kallsyms file and returns its path.
func writeKallsyms(t testing.TB, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kallsyms")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// dropPacket describes a packet alert as net_dm_packet_report_fill sends
// it: origin, pc (padded for its 64-bit alignment), reason, symbol, the
// input port, timestamp, original length, protocol and payload.
type dropPacket struct {
	pc               uint64
	reason, symbol   string
	ifindex, origLen uint32
	// hw makes it a devlink trap's alert: the trap and its group instead
	// of pc, reason and symbol, and the port's name.
	hw              bool
	trap, group     string
	ifname          string
	noReason, noLen bool
}

func (p dropPacket) attrs() [][]byte {
	u16attr := func(typ uint16, v uint16) []byte {
		return nlsend.AppendAttr(nil, typ, binary.NativeEndian.AppendUint16(nil, v))
	}
	u64attr := func(typ uint16, v uint64) []byte {
		return concat(nlsend.AppendAttr(nil, decoder.DropMonAttrPad, nil), nlsend.AppendAttr(nil, typ, u64(v)))
	}
	var port [][]byte
	if p.ifindex != 0 {
		port = append(port, u32attr(decoder.DropMonAttrPortNetdevIfindex, p.ifindex))
	}
	if p.ifname != "" {
		port = append(port, strAttr(decoder.DropMonAttrPortNetdevName, p.ifname))
	}
	var a [][]byte
	if p.hw {
		a = append(a,
			u16attr(decoder.DropMonAttrOrigin, decoder.DropMonOriginHW),
			strAttr(decoder.DropMonAttrHWTrapGroupName, p.group),
			strAttr(decoder.DropMonAttrHWTrapName, p.trap))
	} else {
		a = append(a, u16attr(decoder.DropMonAttrOrigin, decoder.DropMonOriginSW), u64attr(decoder.DropMonAttrPC, p.pc))
		if !p.noReason {
			a = append(a, strAttr(decoder.DropMonAttrReason, p.reason))
		}
		a = append(a, strAttr(decoder.DropMonAttrSymbol, p.symbol))
	}
	a = append(a, nlsend.AppendAttr(nil, decoder.DropMonAttrInPort|0x8000, concat(port...)),
		u64attr(decoder.DropMonAttrTimestamp, 1700000000123456789))
	if !p.noLen {
		a = append(a, u32attr(decoder.DropMonAttrOrigLen, p.origLen))
	}
	return append(a,
		u16attr(decoder.DropMonAttrProto, 0x0800),
		nlsend.AppendAttr(nil, decoder.DropMonAttrPayload, []byte{0x45}))
}

func (p dropPacket) msg() []byte {
	return genlMsg(decoder.DropMonCmdPacketAlert, p.attrs()...)
}

// dropSummary builds a summary alert as trace_drop_common fills it: an
// attribute of type 0 holding struct net_dm_alert_msg.
func dropSummary(points ...[2]uint64) []byte {
	v := u32(uint32(len(points)))
	for _, p := range points {
		v = append(v, u64(p[0])...)
		v = append(v, u32(uint32(p[1]))...)
	}
	return genlMsg(decoder.DropMonCmdAlert, nlsend.AppendAttr(nil, 0, v))
}

// hwSummary builds a hardware summary as net_dm_hw_summary_report_fill
// does: an empty struct net_dm_alert_msg, then the traps' entries.
func hwSummary(traps map[string]uint32) []byte {
	var entries []byte
	for name, count := range traps {
		entries = append(entries, nlsend.AppendAttr(nil, decoder.DropMonAttrHWEntry|0x8000,
			concat(strAttr(decoder.DropMonAttrHWTrapName, name), u32attr(decoder.DropMonAttrHWTrapCount, count)))...)
	}
	return genlMsg(decoder.DropMonCmdAlert, nlsend.AppendAttr(nil, 0, u32(0)),
		nlsend.AppendAttr(nil, decoder.DropMonAttrHWEntries|0x8000, entries))
}

// dropEvent is a decoded event with its Count.
type dropEvent struct {
	Name, Object, Payload string
	Value                 float64
	Count                 uint64
}

func toDropEvents(evs []decoder.Event) []dropEvent {
	var out []dropEvent
	for _, e := range evs {
		if !e.HasValue {
			e.Value = -1
		}
		out = append(out, dropEvent{Name: string(e.Name), Object: string(e.Object), Payload: string(e.Payload), Value: e.Value, Count: e.Count})
	}
	return out
}

func TestDropMon(t *testing.T) {
	kallsyms := writeKallsyms(t, dropKallsyms)
	hidden := writeKallsyms(t, "0000000000000000 T _text\n0000000000000000 t __udp4_lib_rcv\n")
	missing := filepath.Join(t.TempDir(), "none")
	udp := dropPacket{pc: pcUDP, reason: "NO_SOCKET", symbol: "__udp4_lib_rcv+0x9a2/0xc30", ifindex: 1, origLen: 29}
	long := dropPacket{pc: pcLong, reason: "NOT_SPECIFIED", symbol: "a_very_long_function_name_that_the_ker", origLen: 60}
	if len(long.symbol) != decoder.DropMonSymbolMax-2 {
		// One short of the cut: whole.
		t.Fatalf("symbol of %d bytes", len(long.symbol))
	}
	cut := long
	cut.symbol = "a_very_long_function_name_that_the_kern"
	wrongPC := udp.attrs()
	wrongPC[1] = nlsend.AppendAttr(nil, decoder.DropMonAttrPC, u32(1))
	wrongLen := udp.attrs()
	wrongLen[6] = nlsend.AppendAttr(nil, decoder.DropMonAttrOrigLen, u64(29))
	badPort := udp.attrs()
	badPort[4] = nlsend.AppendAttr(nil, decoder.DropMonAttrInPort, nlsend.AppendAttr(nil, decoder.DropMonAttrPortNetdevIfindex, []byte{1}))
	tooMany := dropSummary([2]uint64{pcUDP, 1})
	binary.NativeEndian.PutUint32(tooMany[16+4+4:], 2)

	for _, c := range []struct {
		name       string
		kallsyms   string
		interfaces bool
		datagram   []byte
		want       []dropEvent
		bad        int
	}{
		{"packet: reason at a function", kallsyms, false, udp.msg(),
			[]dropEvent{{Name: "NO_SOCKET", Object: "__udp4_lib_rcv", Value: 29}}, 0},
		{"packet: a module's function", kallsyms, false,
			dropPacket{pc: pcModule, reason: "NETFILTER_DROP", symbol: "nft_do_chain+0x1c/0x50 [nf_tables]", origLen: 84}.msg(),
			[]dropEvent{{Name: "NETFILTER_DROP", Object: "nft_do_chain", Value: 84}}, 0},
		{"packet: a symbol shorter than the cut is whole", missing, false, long.msg(),
			[]dropEvent{{Name: "NOT_SPECIFIED", Object: long.symbol, Value: 60}}, 0},
		{"packet: a cut symbol is looked up by its address", kallsyms, false, cut.msg(),
			[]dropEvent{{Name: "NOT_SPECIFIED", Object: "a_very_long_function_name_that_the_kernel_cuts", Value: 60}}, 0},
		{"packet: a cut symbol where kallsyms hides addresses", hidden, false, cut.msg(),
			[]dropEvent{{Name: "NOT_SPECIFIED", Object: cut.symbol, Value: 60}}, 0},
		{"packet: a cut symbol without kallsyms", missing, false, cut.msg(),
			[]dropEvent{{Name: "NOT_SPECIFIED", Object: cut.symbol, Value: 60}}, 0},
		{"packet: an address without a symbol", kallsyms, false,
			dropPacket{pc: pcNowhere, reason: "NO_SOCKET", symbol: "0xffffffff80000010", origLen: 1}.msg(),
			[]dropEvent{{Name: "NO_SOCKET", Object: "0xffffffff80000010", Value: 1}}, 0},
		{"packet: no reason (before 5.18)", kallsyms, false, dropPacket{pc: pcUDP, symbol: "__udp4_lib_rcv+0x9a2/0xc30", noReason: true, origLen: 29}.msg(),
			[]dropEvent{{Name: "unknown", Object: "__udp4_lib_rcv", Value: 29}}, 0},
		{"packet: no length", kallsyms, false, dropPacket{pc: pcUDP, reason: "NO_SOCKET", symbol: "__udp4_lib_rcv+0x9a2/0xc30", noLen: true}.msg(),
			[]dropEvent{{Name: "NO_SOCKET", Object: "__udp4_lib_rcv", Value: -1}}, 0},
		{"packet: input interface asked for", kallsyms, true, udp.msg(),
			[]dropEvent{{Name: "NO_SOCKET", Object: "__udp4_lib_rcv", Value: 29, Payload: "in=lo"}}, 0},
		{"packet: an index the namespace does not have", kallsyms, true,
			dropPacket{pc: pcUDP, reason: "NO_SOCKET", symbol: "__udp4_lib_rcv+0x9a2/0xc30", ifindex: 0x7ffffff0, origLen: 29}.msg(),
			[]dropEvent{{Name: "NO_SOCKET", Object: "__udp4_lib_rcv", Value: 29, Payload: "in=if2147483632"}}, 0},
		{"packet: no input interface (sent, not received)", kallsyms, true,
			dropPacket{pc: pcUDP, reason: "NO_SOCKET", symbol: "__udp4_lib_rcv+0x9a2/0xc30", origLen: 29}.msg(),
			[]dropEvent{{Name: "NO_SOCKET", Object: "__udp4_lib_rcv", Value: 29}}, 0},
		{"packet: a hardware trap", kallsyms, true,
			dropPacket{hw: true, trap: "ingress_vlan_filter", group: "l2_drops", ifindex: 7, ifname: "swp1", origLen: 1500}.msg(),
			[]dropEvent{{Name: "ingress_vlan_filter", Object: "l2_drops", Value: 1500, Payload: "in=swp1"}}, 0},

		{"summary: counts at functions", kallsyms, false, dropSummary([2]uint64{pcUDP, 100}, [2]uint64{pcModule, 2}, [2]uint64{0, 3}),
			[]dropEvent{
				{Name: "unknown", Object: "__udp4_lib_rcv", Value: 100, Count: 100},
				{Name: "unknown", Object: "nft_do_chain", Value: 2, Count: 2},
				{Name: "unknown", Object: "hardware", Value: 3, Count: 3},
			}, 0},
		{"summary: an address below every symbol", kallsyms, false, dropSummary([2]uint64{pcNowhere, 1}),
			[]dropEvent{{Name: "unknown", Object: "0xffffffff80000010", Value: 1, Count: 1}}, 0},
		{"summary: hidden addresses", hidden, false, dropSummary([2]uint64{pcUDP, 5}),
			[]dropEvent{{Name: "unknown", Object: "0xffffffff81a009a2", Value: 5, Count: 5}}, 0},
		{"summary: no kallsyms", missing, false, dropSummary([2]uint64{pcUDP, 5}),
			[]dropEvent{{Name: "unknown", Object: "0xffffffff81a009a2", Value: 5, Count: 5}}, 0},
		{"summary: empty", kallsyms, false, dropSummary(), nil, 0},
		{"summary: hardware traps", kallsyms, false, hwSummary(map[string]uint32{"blackhole_route": 7}),
			[]dropEvent{{Name: "blackhole_route", Value: 7, Count: 7}}, 0},
		{"two messages", kallsyms, false, concat(udp.msg(), dropSummary([2]uint64{pcUDP, 2})),
			[]dropEvent{
				{Name: "NO_SOCKET", Object: "__udp4_lib_rcv", Value: 29},
				{Name: "unknown", Object: "__udp4_lib_rcv", Value: 2, Count: 2},
			}, 0},

		{"no generic netlink header", kallsyms, false, nlsend.AppendMessage(nil, genlFamilyID, 0, []byte{5, 2}), nil, 1},
		{"another command", kallsyms, false, genlMsg(decoder.DropMonCmdStatsNew), nil, 1},
		{"32-bit pc", kallsyms, false, genlMsg(decoder.DropMonCmdPacketAlert, wrongPC...), nil, 1},
		{"64-bit original length", kallsyms, false, genlMsg(decoder.DropMonCmdPacketAlert, wrongLen...), nil, 1},
		{"8-bit ifindex", kallsyms, true, genlMsg(decoder.DropMonCmdPacketAlert, badPort...), nil, 1},
		{"attribute length past the message", kallsyms, false, genlMsg(decoder.DropMonCmdPacketAlert, rawAttr(200, decoder.DropMonAttrReason, cstr("x"))), nil, 1},
		{"summary: more points than it holds", kallsyms, false, tooMany, nil, 1},
		{"summary: no number of points", kallsyms, false, genlMsg(decoder.DropMonCmdAlert, nlsend.AppendAttr(nil, 0, []byte{1})), nil, 1},
		{"summary: a trap without a count", kallsyms, false,
			genlMsg(decoder.DropMonCmdAlert, nlsend.AppendAttr(nil, decoder.DropMonAttrHWEntries, nlsend.AppendAttr(nil, decoder.DropMonAttrHWEntry, strAttr(decoder.DropMonAttrHWTrapName, "x")))), nil, 1},
		{"bad message beside a good one", kallsyms, false, concat(tooMany, udp.msg()),
			[]dropEvent{{Name: "NO_SOCKET", Object: "__udp4_lib_rcv", Value: 29}}, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, bad := decoder.NewDropMonKallsyms(c.kallsyms, c.interfaces).Decode(nil, c.datagram)
			if diff := cmp.Diff(c.want, toDropEvents(got)); diff != "" {
				t.Errorf("unexpected events (-want +got):\n%s", diff)
			}
			if bad != c.bad {
				t.Errorf("malformed: %d, want %d", bad, c.bad)
			}
		})
	}
}

// TestDropMonKallsymsOnce: an address is looked up in kallsyms once; a
// new one reads it again.
func TestDropMonKallsymsOnce(t *testing.T) {
	path := writeKallsyms(t, dropKallsyms)
	d := decoder.NewDropMonKallsyms(path, false)
	if evs, _ := d.Decode(nil, dropSummary([2]uint64{pcUDP, 1})); string(evs[0].Object) != "__udp4_lib_rcv" {
		t.Fatalf("object %q", evs[0].Object)
	}
	// Renamed in the file: the remembered name stays, a new address reads
	// the new file.
	if err := os.WriteFile(path, []byte("ffffffff81a00000 t renamed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	evs, _ := d.Decode(nil, dropSummary([2]uint64{pcUDP, 1}, [2]uint64{pcUDP + 1, 1}))
	if got := toDropEvents(evs); got[0].Object != "__udp4_lib_rcv" || got[1].Object != "renamed" {
		t.Fatalf("objects %q, %q", got[0].Object, got[1].Object)
	}
}

// TestDropMonUAPI checks the decoder's commands, attributes, modes and
// origins against include/uapi/linux/net_dropmon.h.
func TestDropMonUAPI(t *testing.T) {
	const header = "/usr/include/linux/net_dropmon.h"
	// parseHeader counts enum members, not expressions: the _MAX ones go.
	src := regexp.MustCompile(`\w+\s*=\s*__\w+\s*-\s*1`).ReplaceAllString(readSystemHeader(t, header), "")
	consts := parseHeader(t, src)
	want := map[string]int64{
		"NET_DM_CMD_UNSPEC":               0,
		"NET_DM_CMD_ALERT":                decoder.DropMonCmdAlert,
		"NET_DM_CMD_CONFIG":               decoder.DropMonCmdConfig,
		"NET_DM_CMD_START":                decoder.DropMonCmdStart,
		"NET_DM_CMD_STOP":                 decoder.DropMonCmdStop,
		"NET_DM_CMD_PACKET_ALERT":         decoder.DropMonCmdPacketAlert,
		"NET_DM_CMD_CONFIG_GET":           decoder.DropMonCmdConfigGet,
		"NET_DM_CMD_CONFIG_NEW":           decoder.DropMonCmdConfigNew,
		"NET_DM_CMD_STATS_GET":            decoder.DropMonCmdStatsGet,
		"NET_DM_CMD_STATS_NEW":            decoder.DropMonCmdStatsNew,
		"NET_DM_ATTR_UNSPEC":              0,
		"NET_DM_ATTR_ALERT_MODE":          decoder.DropMonAttrAlertMode,
		"NET_DM_ATTR_PC":                  decoder.DropMonAttrPC,
		"NET_DM_ATTR_SYMBOL":              decoder.DropMonAttrSymbol,
		"NET_DM_ATTR_IN_PORT":             decoder.DropMonAttrInPort,
		"NET_DM_ATTR_TIMESTAMP":           decoder.DropMonAttrTimestamp,
		"NET_DM_ATTR_PROTO":               decoder.DropMonAttrProto,
		"NET_DM_ATTR_PAYLOAD":             decoder.DropMonAttrPayload,
		"NET_DM_ATTR_PAD":                 decoder.DropMonAttrPad,
		"NET_DM_ATTR_TRUNC_LEN":           decoder.DropMonAttrTruncLen,
		"NET_DM_ATTR_ORIG_LEN":            decoder.DropMonAttrOrigLen,
		"NET_DM_ATTR_QUEUE_LEN":           decoder.DropMonAttrQueueLen,
		"NET_DM_ATTR_STATS":               decoder.DropMonAttrStats,
		"NET_DM_ATTR_HW_STATS":            decoder.DropMonAttrHWStats,
		"NET_DM_ATTR_ORIGIN":              decoder.DropMonAttrOrigin,
		"NET_DM_ATTR_HW_TRAP_GROUP_NAME":  decoder.DropMonAttrHWTrapGroupName,
		"NET_DM_ATTR_HW_TRAP_NAME":        decoder.DropMonAttrHWTrapName,
		"NET_DM_ATTR_HW_ENTRIES":          decoder.DropMonAttrHWEntries,
		"NET_DM_ATTR_HW_ENTRY":            decoder.DropMonAttrHWEntry,
		"NET_DM_ATTR_HW_TRAP_COUNT":       decoder.DropMonAttrHWTrapCount,
		"NET_DM_ATTR_SW_DROPS":            decoder.DropMonAttrSWDrops,
		"NET_DM_ATTR_HW_DROPS":            decoder.DropMonAttrHWDrops,
		"NET_DM_ATTR_FLOW_ACTION_COOKIE":  decoder.DropMonAttrFlowActionCookie,
		"NET_DM_ATTR_REASON":              decoder.DropMonAttrReason,
		"NET_DM_ATTR_PORT_NETDEV_IFINDEX": decoder.DropMonAttrPortNetdevIfindex,
		"NET_DM_ATTR_PORT_NETDEV_NAME":    decoder.DropMonAttrPortNetdevName,
		"NET_DM_ATTR_STATS_DROPPED":       decoder.DropMonAttrStatsDropped,
		"NET_DM_ALERT_MODE_SUMMARY":       decoder.DropMonAlertModeSummary,
		"NET_DM_ALERT_MODE_PACKET":        decoder.DropMonAlertModePacket,
		"NET_DM_ORIGIN_SW":                decoder.DropMonOriginSW,
		"NET_DM_ORIGIN_HW":                decoder.DropMonOriginHW,
		"NET_DM_GRP_ALERT":                1,
		"NET_DM_CFG_VERSION":              0,
		"NET_DM_CFG_ALERT_COUNT":          1,
		"NET_DM_CFG_ALERT_DELAY":          2,
	}
	checkConsts(t, header, consts, want, nil, "NET_DM_")
}

func FuzzDropMon(f *testing.F) {
	f.Add(dropPacket{pc: pcUDP, reason: "NO_SOCKET", symbol: "__udp4_lib_rcv+0x9a2/0xc30", ifindex: 1, origLen: 29}.msg())
	f.Add(dropPacket{pc: pcLong, reason: "NOT_SPECIFIED", symbol: "a_very_long_function_name_that_the_kern", origLen: 60}.msg())
	f.Add(dropSummary([2]uint64{pcUDP, 100}, [2]uint64{0, 3}))
	f.Add(hwSummary(map[string]uint32{"blackhole_route": 7}))
	path := writeKallsyms(f, dropKallsyms)
	f.Fuzz(func(t *testing.T, datagram []byte) {
		events, bad := decoder.NewDropMonKallsyms(path, true).Decode(nil, datagram)
		if bad < 0 {
			t.Fatalf("negative malformed count %d", bad)
		}
		for _, e := range events {
			if len(e.Name) == 0 {
				t.Fatalf("event without a name about %q", e.Object)
			}
		}
	})
}

// BenchmarkDropMonDecode decodes packet alerts, the packet mode's one
// message per dropped packet, and summaries.
func BenchmarkDropMonDecode(b *testing.B) {
	path := writeKallsyms(b, dropKallsyms)
	b.Run("packet", func(b *testing.B) {
		benchmarkDecode(b, decoder.NewDropMonKallsyms(path, false),
			dropPacket{pc: pcUDP, reason: "NO_SOCKET", symbol: "__udp4_lib_rcv+0x9a2/0xc30", ifindex: 1, origLen: 29}.msg())
	})
	b.Run("packet_interface", func(b *testing.B) {
		benchmarkDecode(b, decoder.NewDropMonKallsyms(path, true),
			dropPacket{pc: pcUDP, reason: "NO_SOCKET", symbol: "__udp4_lib_rcv+0x9a2/0xc30", ifindex: 1, origLen: 29}.msg())
	})
	b.Run("summary", func(b *testing.B) {
		benchmarkDecode(b, decoder.NewDropMonKallsyms(path, false),
			dropSummary([2]uint64{pcUDP, 100}, [2]uint64{pcModule, 2}, [2]uint64{0, 3}))
	})
}

// TestDropMonDiagnose: Diagnose says why a drop monitor message is
// malformed, naming the attribute and where it is.
func TestDropMonDiagnose(t *testing.T) {
	tooMany := dropSummary([2]uint64{pcUDP, 1})
	binary.NativeEndian.PutUint32(tooMany[16+4+4:], 2)
	wrongPC := dropPacket{pc: pcUDP, reason: "NO_SOCKET", symbol: "x+0x1/0x2"}.attrs()
	wrongPC[1] = nlsend.AppendAttr(nil, decoder.DropMonAttrPC, u32(1))
	for _, c := range []struct {
		name     string
		datagram []byte
		want     string
	}{
		{"points", tooMany, "at byte 0: attribute NET_DM_ATTR_UNSPEC (0) at byte 20 counts 2 points, but holds 1"},
		{"pc", genlMsg(decoder.DropMonCmdPacketAlert, wrongPC...), "at byte 0: attribute NET_DM_ATTR_PC (2) at byte 28 carries 4 bytes, want 8"},
		{"command", genlMsg(decoder.DropMonCmdStatsNew), "at byte 0: generic netlink command 9 is neither NET_DM_CMD_PACKET_ALERT (5) nor NET_DM_CMD_ALERT (1)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var got []string
			for _, p := range decoder.Diagnose(decoder.NewDropMon(false), c.datagram) {
				got = append(got, p.String())
			}
			if len(got) != 1 || got[0] != c.want {
				t.Errorf("Diagnose: %q, want %q", got, c.want)
			}
		})
	}
}
