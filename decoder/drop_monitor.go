package decoder

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"os"
	"strconv"
	"time"
)

// The kernel's drop monitor family, as include/uapi/linux/net_dropmon.h
// defines it (net/core/drop_monitor.c, the drop_monitor module). A test
// checks these against the header. There is one monitor for the whole
// kernel, in the initial network namespace: it reports the drops of every
// namespace.
const (
	// DropMonFamily is the family's name.
	DropMonFamily = "NET_DM"
	// DropMonGroup is its one multicast group, on which the alerts come.
	DropMonGroup = "events"

	// Commands (NET_DM_CMD_*). CONFIG, START and STOP need CAP_NET_ADMIN;
	// CONFIG fails while the monitor runs, and START when it already
	// does.
	DropMonCmdAlert       = 1
	DropMonCmdConfig      = 2
	DropMonCmdStart       = 3
	DropMonCmdStop        = 4
	DropMonCmdPacketAlert = 5
	DropMonCmdConfigGet   = 6
	DropMonCmdConfigNew   = 7
	DropMonCmdStatsGet    = 8
	DropMonCmdStatsNew    = 9

	// Attributes (NET_DM_ATTR_*).
	DropMonAttrAlertMode         = 1  // u8
	DropMonAttrPC                = 2  // u64
	DropMonAttrSymbol            = 3  // string
	DropMonAttrInPort            = 4  // nested: DropMonAttrPort*
	DropMonAttrTimestamp         = 5  // u64
	DropMonAttrProto             = 6  // u16
	DropMonAttrPayload           = 7  // binary
	DropMonAttrPad               = 8  //
	DropMonAttrTruncLen          = 9  // u32
	DropMonAttrOrigLen           = 10 // u32
	DropMonAttrQueueLen          = 11 // u32
	DropMonAttrStats             = 12 // nested: DropMonAttrStatsDropped
	DropMonAttrHWStats           = 13 // nested: DropMonAttrStatsDropped
	DropMonAttrOrigin            = 14 // u16
	DropMonAttrHWTrapGroupName   = 15 // string
	DropMonAttrHWTrapName        = 16 // string
	DropMonAttrHWEntries         = 17 // nested: DropMonAttrHWEntry
	DropMonAttrHWEntry           = 18 // nested: trap name, count
	DropMonAttrHWTrapCount       = 19 // u32
	DropMonAttrSWDrops           = 20 // flag
	DropMonAttrHWDrops           = 21 // flag
	DropMonAttrFlowActionCookie  = 22 // binary
	DropMonAttrReason            = 23 // string
	DropMonAttrPortNetdevIfindex = 0  // u32, in DropMonAttrInPort
	DropMonAttrPortNetdevName    = 1  // string, in DropMonAttrInPort
	DropMonAttrStatsDropped      = 0  // u64, in DropMonAttrStats

	// Alert modes (enum net_dm_alert_mode).
	DropMonAlertModeSummary = 0
	DropMonAlertModePacket  = 1

	// Origins (enum net_dm_origin).
	DropMonOriginSW = 0
	DropMonOriginHW = 1

	// DropMonDropPointLen is the size of struct net_dm_drop_point: the
	// code address (pc[8]) and its count (u32).
	DropMonDropPointLen = 12
	// DropMonSymbolMax is the kernel's buffer for NET_DM_ATTR_SYMBOL
	// (NET_DM_MAX_SYMBOL_LEN, with the NUL): a longer "%pS" is cut.
	DropMonSymbolMax = 40
)

// Event names and objects the drop monitor decoder gives where the kernel
// names none.
var (
	// dropUnknown is the event of a software drop whose reason the kernel
	// does not say: every drop of a summary, and packets of kernels before
	// 5.18.
	dropUnknown = []byte("unknown")
	// dropHardware is the object of a summary's drops that NAPI found in
	// a device's rx_dropped counter (code address 0).
	dropHardware = []byte("hardware")
	// inPrefix starts the payload that names the input interface.
	inPrefix = []byte("in=")
)

// DropMon decodes the kernel's drop monitor alerts. A packet alert
// (NET_DM_CMD_PACKET_ALERT, the monitor's packet mode) is one dropped
// packet: its event is the drop reason (NET_DM_ATTR_REASON, e.g.
// NO_SOCKET), its object the kernel function that dropped it, without the
// offset the kernel appends ("__udp4_lib_rcv+0x9a2/0xc30" gives
// __udp4_lib_rcv; a name the kernel cut at 39 characters is looked up by
// its code address in /proc/kallsyms), its value the packet's original
// length. A summary (NET_DM_CMD_ALERT, the summary mode) carries up to 64
// (code address, count) pairs: each is an event "unknown" (the summary has
// no reason) about the function at that address, as /proc/kallsyms names
// it (the address in hex where kallsyms hides addresses), whose value and
// Count are the drops counted there. Hardware drops (devlink traps) are
// events named by their trap, about the trap's group in packet mode.
//
// The payload is empty, unless the input interface is asked for: then
// "in=NAME", the interface the packet came in on as this network namespace
// names its index (in=if7 for an index it does not have). The kernel sends
// the index of the packet's own namespace, which the exporter's may give to
// another interface.
//
// Looking up names takes system calls the first time an address or
// interface is seen; after that, decoding allocates nothing. Payloads are
// built in the decoder's own memory (see Genl).
type DropMon struct {
	faults
	syms       kallsyms
	interfaces bool
	ifnames    ifnames
	buf        []byte
	// points and pcs are scratch memory for a summary's points and the
	// addresses to look up.
	points []dropPoint
	pcs    []uint64
}

// NewDropMon returns a drop monitor decoder; interfaces says whether
// payloads name the input interface.
func NewDropMon(interfaces bool) *DropMon {
	return &DropMon{
		syms:       kallsyms{path: "/proc/kallsyms"},
		interfaces: interfaces,
	}
}

// Decode implements Decoder.
func (d *DropMon) Decode(events []Event, datagram []byte) ([]Event, int) {
	if len(events) == 0 {
		d.buf = d.buf[:0]
	}
	return appendMessages(events, datagram, d)
}

func (d *DropMon) diagnose(datagram []byte) []Problem {
	// Without looking names up: whether a message is malformed does not
	// depend on them.
	x := NewDropMon(false)
	x.syms.path = ""
	return diagnoseMessages(datagram, x)
}

// dropMonAttrNames are net_dropmon.h's names of the attributes.
var dropMonAttrNames = attrNames{
	0:                           "NET_DM_ATTR_UNSPEC",
	DropMonAttrAlertMode:        "NET_DM_ATTR_ALERT_MODE",
	DropMonAttrPC:               "NET_DM_ATTR_PC",
	DropMonAttrSymbol:           "NET_DM_ATTR_SYMBOL",
	DropMonAttrInPort:           "NET_DM_ATTR_IN_PORT",
	DropMonAttrTimestamp:        "NET_DM_ATTR_TIMESTAMP",
	DropMonAttrProto:            "NET_DM_ATTR_PROTO",
	DropMonAttrPayload:          "NET_DM_ATTR_PAYLOAD",
	DropMonAttrPad:              "NET_DM_ATTR_PAD",
	DropMonAttrTruncLen:         "NET_DM_ATTR_TRUNC_LEN",
	DropMonAttrOrigLen:          "NET_DM_ATTR_ORIG_LEN",
	DropMonAttrQueueLen:         "NET_DM_ATTR_QUEUE_LEN",
	DropMonAttrStats:            "NET_DM_ATTR_STATS",
	DropMonAttrHWStats:          "NET_DM_ATTR_HW_STATS",
	DropMonAttrOrigin:           "NET_DM_ATTR_ORIGIN",
	DropMonAttrHWTrapGroupName:  "NET_DM_ATTR_HW_TRAP_GROUP_NAME",
	DropMonAttrHWTrapName:       "NET_DM_ATTR_HW_TRAP_NAME",
	DropMonAttrHWEntries:        "NET_DM_ATTR_HW_ENTRIES",
	DropMonAttrHWEntry:          "NET_DM_ATTR_HW_ENTRY",
	DropMonAttrHWTrapCount:      "NET_DM_ATTR_HW_TRAP_COUNT",
	DropMonAttrSWDrops:          "NET_DM_ATTR_SW_DROPS",
	DropMonAttrHWDrops:          "NET_DM_ATTR_HW_DROPS",
	DropMonAttrFlowActionCookie: "NET_DM_ATTR_FLOW_ACTION_COOKIE",
	DropMonAttrReason:           "NET_DM_ATTR_REASON",
}

// dropMonPortAttrNames name the attributes in NET_DM_ATTR_IN_PORT.
var dropMonPortAttrNames = attrNames{
	DropMonAttrPortNetdevIfindex: "NET_DM_ATTR_PORT_NETDEV_IFINDEX",
	DropMonAttrPortNetdevName:    "NET_DM_ATTR_PORT_NETDEV_NAME",
}

func (d *DropMon) appendMessage(events []Event, m message) ([]Event, bool) {
	cmd, ok := d.genlCommand(m)
	if !ok {
		return events, false
	}
	switch cmd {
	case DropMonCmdPacketAlert:
		events = append(events, Event{})
		if !d.packet(&events[len(events)-1], m) {
			return events[:len(events)-1], false
		}
		return events, true
	case DropMonCmdAlert:
		return d.summary(events, m)
	}
	return events, d.fail(m, faultf("generic netlink command %d is neither NET_DM_CMD_PACKET_ALERT (%d) nor NET_DM_CMD_ALERT (%d)",
		int(cmd), DropMonCmdPacketAlert, DropMonCmdAlert))
}

// packet decodes a packet alert into ev.
func (d *DropMon) packet(ev *Event, m message) bool {
	var (
		origin            uint16
		pc                uint64
		hasPC             bool
		symbol, reason    []byte
		trap, trapGroup   []byte
		port              []byte
		origLen           uint32
		hasOrigLen, hasIn bool
	)
	var ad attrDecoder
	d.attrs(&ad, m, genlHeaderLen, dropMonAttrNames)
	for typ, v := range ad.All {
		switch typ & nlaTypeMask {
		case DropMonAttrOrigin:
			if v := ad.Sized(v, 2); v != nil {
				origin = binary.NativeEndian.Uint16(v)
			}
		case DropMonAttrPC:
			pc, hasPC = ad.Uint64(v), true
		case DropMonAttrSymbol:
			symbol = cString(v)
		case DropMonAttrReason:
			reason = cString(v)
		case DropMonAttrHWTrapName:
			trap = cString(v)
		case DropMonAttrHWTrapGroupName:
			trapGroup = cString(v)
		case DropMonAttrInPort:
			port, hasIn = v, true
		case DropMonAttrOrigLen:
			origLen, hasOrigLen = ad.Uint32(v), true
		}
	}
	if ad.Failed() {
		return d.fail(m, ad.Err())
	}
	var ifindex uint32
	var ifname []byte
	if hasIn {
		var pd attrDecoder
		ad.Nested(&pd, port, dropMonPortAttrNames)
		for typ, v := range pd.All {
			switch typ & nlaTypeMask {
			case DropMonAttrPortNetdevIfindex:
				ifindex = pd.Uint32(v)
			case DropMonAttrPortNetdevName:
				ifname = cString(v)
			}
		}
		if pd.Failed() {
			return d.fail(m, pd.Err())
		}
	}

	if origin == DropMonOriginHW {
		ev.Name, ev.Object = trap, trapGroup
		if len(ev.Name) == 0 {
			ev.Name = dropUnknown
		}
	} else {
		ev.Name = reason
		if len(ev.Name) == 0 {
			ev.Name = dropUnknown
		}
		ev.Object = d.function(symbol, pc, hasPC)
	}
	if hasOrigLen {
		ev.Value, ev.HasValue = float64(origLen), true
	}
	if d.interfaces && (ifindex != 0 || len(ifname) > 0) {
		if len(ifname) == 0 {
			ifname = d.ifnames.name(ifindex)
		}
		start := len(d.buf)
		d.buf = append(d.buf, inPrefix...)
		d.buf = append(d.buf, ifname...)
		ev.Payload = d.buf[start:len(d.buf):len(d.buf)]
	}
	return true
}

// function returns the name of the function a packet alert's symbol
// ("%pS": name+offset/size, and " [module]" for a module's) names, looking
// its code address up where the kernel cut the name.
func (d *DropMon) function(symbol []byte, pc uint64, hasPC bool) []byte {
	if i := bytes.IndexByte(symbol, '+'); i > 0 {
		return symbol[:i]
	}
	if len(symbol) < DropMonSymbolMax-1 || !hasPC {
		// Whole: a name without an offset, or the address "%pS" prints
		// when it finds no symbol.
		return symbol
	}
	name, ok := d.syms.cached(pc)
	if !ok {
		d.pcs = append(d.pcs[:0], pc)
		d.syms.resolve(d.pcs)
		name, _ = d.syms.cached(pc)
	}
	if isAddress(name) {
		// Hidden addresses: the cut name says more than the address.
		return symbol
	}
	return name
}

// dropMonEntryAttrNames name the attributes of a hardware summary's
// entry.
var dropMonEntryAttrNames = attrNames{
	DropMonAttrHWTrapName:  "NET_DM_ATTR_HW_TRAP_NAME",
	DropMonAttrHWTrapCount: "NET_DM_ATTR_HW_TRAP_COUNT",
}

// summary appends the events of a summary alert.
func (d *DropMon) summary(events []Event, m message) ([]Event, bool) {
	start := len(events)
	d.points, d.pcs = d.points[:0], d.pcs[:0]
	var ad attrDecoder
	d.attrs(&ad, m, genlHeaderLen, dropMonAttrNames)
	for typ, v := range ad.All {
		switch typ & nlaTypeMask {
		case 0:
			// struct net_dm_alert_msg: the number of points, then the
			// points.
			if len(v) < 4 {
				return events[:start], d.fail(m, ad.Faultf(v, "attribute %s at byte %d carries %d bytes, too few for the number of points (4)", len(v)))
			}
			n := int(binary.NativeEndian.Uint32(v))
			points := v[4:]
			if n < 0 || n > len(points)/DropMonDropPointLen {
				return events[:start], d.fail(m, ad.Faultf(v, "attribute %s at byte %d counts %d points, but holds %d", n, len(points)/DropMonDropPointLen))
			}
			for i := range n {
				p := points[i*DropMonDropPointLen:]
				pt := dropPoint{pc: binary.NativeEndian.Uint64(p[0:8]), count: binary.NativeEndian.Uint32(p[8:12])}
				if pt.count == 0 {
					continue
				}
				d.points = append(d.points, pt)
				if _, ok := d.syms.cached(pt.pc); !ok && pt.pc != 0 {
					d.pcs = append(d.pcs, pt.pc)
				}
			}
		case DropMonAttrHWEntries:
			var ed attrDecoder
			ad.Nested(&ed, v, dropMonAttrNames)
			for typ, v := range ed.All {
				if typ&nlaTypeMask != DropMonAttrHWEntry {
					continue
				}
				var name []byte
				var count uint32
				hasCount := false
				var td attrDecoder
				ed.Nested(&td, v, dropMonEntryAttrNames)
				for typ, v := range td.All {
					switch typ & nlaTypeMask {
					case DropMonAttrHWTrapName:
						name = cString(v)
					case DropMonAttrHWTrapCount:
						count, hasCount = td.Uint32(v), true
					}
				}
				switch {
				case td.Failed():
					return events[:start], d.fail(m, td.Err())
				case len(name) == 0:
					return events[:start], d.fail(m, ed.Faultf(v, "attribute %s at byte %d: no trap name (NET_DM_ATTR_HW_TRAP_NAME), or an empty one"))
				case !hasCount:
					return events[:start], d.fail(m, ed.Faultf(v, "attribute %s at byte %d: no trap count (NET_DM_ATTR_HW_TRAP_COUNT)"))
				}
				if count > 0 {
					events = append(events, Event{Name: name, Value: float64(count), HasValue: true, Count: uint64(count)})
				}
			}
			if ed.Failed() {
				return events[:start], d.fail(m, ed.Err())
			}
		}
	}
	if ad.Failed() {
		return events[:start], d.fail(m, ad.Err())
	}
	if len(d.pcs) > 0 {
		d.syms.resolve(d.pcs)
	}
	for _, pt := range d.points {
		ev := Event{Name: dropUnknown, Object: dropHardware, Value: float64(pt.count), HasValue: true, Count: uint64(pt.count)}
		if pt.pc != 0 {
			ev.Object, _ = d.syms.cached(pt.pc)
		}
		events = append(events, ev)
	}
	return events, true
}

// dropPoint is one (code address, count) pair of a summary.
type dropPoint struct {
	pc    uint64
	count uint32
}

// isAddress reports whether a name kallsyms gave is an address: no
// symbol's name starts with a digit.
func isAddress(name []byte) bool {
	return len(name) > 0 && name[0] == '0'
}

const (
	// kallsymsCacheMax bounds the code addresses a decoder remembers the
	// names of: drop sites are few, and a kernel that keeps making new
	// ones (modules loaded again and again) must not grow it forever.
	kallsymsCacheMax = 4096
	// ifnameCacheMax bounds the interface names remembered, as veths come
	// and go.
	ifnameCacheMax = 4096
	// ifnameTTL is how long an interface's name is trusted: an interface
	// may be renamed.
	ifnameTTL = 10 * time.Second
)

// kallsyms names kernel code addresses from /proc/kallsyms, which lists
// the address, type and name of every symbol, those of modules followed by
// the module's name. An address belongs to the text symbol with the
// highest address at or below it. The names found are remembered, so that
// the file is read once per new address.
type kallsyms struct {
	path  string
	names map[uint64][]byte
}

// cached returns the name remembered for pc.
func (k *kallsyms) cached(pc uint64) ([]byte, bool) {
	n, ok := k.names[pc]
	return n, ok
}

// resolve reads the file once and remembers a name for each of pcs: the
// function's, or the address in hex ("0xffffffffc0a01234") when the file
// cannot be read or hides the addresses (kptr_restrict, or a reader
// without CAP_SYSLOG, sees zeros).
func (k *kallsyms) resolve(pcs []uint64) {
	if k.names == nil || len(k.names)+len(pcs) > kallsymsCacheMax {
		k.names = make(map[uint64][]byte, len(pcs))
	}
	best := make([]uint64, len(pcs))
	names := make([][]byte, len(pcs))
	if f, err := os.Open(k.path); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			// "ffffffff81a2b3c0 T __udp4_lib_rcv" and, for a module's,
			// "\t[module]".
			line := sc.Bytes()
			addrText, rest, ok := bytes.Cut(line, []byte{' '})
			if !ok || len(rest) < 3 || rest[1] != ' ' {
				continue
			}
			switch rest[0] {
			case 't', 'T', 'w', 'W':
			default:
				continue
			}
			addr, err := strconv.ParseUint(string(addrText), 16, 64)
			if err != nil || addr == 0 {
				continue
			}
			for i, pc := range pcs {
				if addr <= pc && addr > best[i] {
					best[i] = addr
					name, _, _ := bytes.Cut(rest[2:], []byte{'\t'})
					names[i] = append(names[i][:0], name...)
				}
			}
		}
		f.Close()
	}
	for i, pc := range pcs {
		if best[i] == 0 {
			names[i] = append([]byte("0x"), strconv.FormatUint(pc, 16)...)
		}
		k.names[pc] = names[i]
	}
}

// ifnames names interfaces by index, as the exporter's network namespace
// does (SIOCGIFNAME), remembering each name for ifnameTTL.
type ifnames struct {
	names map[uint32]ifname
}

type ifname struct {
	name []byte
	at   time.Time
}

// name returns the name of interface index i, or "if" and the index.
func (n *ifnames) name(i uint32) []byte {
	now := time.Now()
	if e, ok := n.names[i]; ok && now.Sub(e.at) < ifnameTTL {
		return e.name
	}
	if n.names == nil || len(n.names) >= ifnameCacheMax {
		n.names = make(map[uint32]ifname)
	}
	name, ok := interfaceName(i)
	if !ok {
		name = append([]byte("if"), strconv.FormatUint(uint64(i), 10)...)
	}
	n.names[i] = ifname{name: name, at: now}
	return name
}
