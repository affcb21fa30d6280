package decoder

import (
	"encoding/binary"
	"net/netip"
	"strconv"
)

// RtnetlinkGroups are the rtnetlink multicast groups the rtnetlink decoder
// reads, by the names a configuration may give them.
var RtnetlinkGroups = map[string]uint32{
	"link":        rtnlgrpLink,
	"neigh":       rtnlgrpNeigh,
	"ipv4_ifaddr": rtnlgrpIPv4Ifaddr,
	"ipv6_ifaddr": rtnlgrpIPv6Ifaddr,
}

const (
	// RtnetlinkMaxLinks bounds the interfaces whose state an rtnetlink
	// decoder keeps, and RtnetlinkMaxAddrs the addresses.
	RtnetlinkMaxLinks = 65536
	RtnetlinkMaxAddrs = 65536

	// ifNameMax is IFNAMSIZ less the NUL.
	ifNameMax = 15
	// ifiChangeNew is the ifi_change of the RTM_NEWLINK that announces a
	// device registered in, or moved into, the namespace: the kernel's
	// rtmsg_ifinfo(RTM_NEWLINK, dev, ~0U, ...).
	ifiChangeNew = 0xffffffff
	// ifOperUp is IF_OPER_UP (RFC 2863's operational state "up").
	ifOperUp = 6
)

// The rtnetlink decoder's event names.
var (
	rtnlLinkNew       = []byte("link/new")
	rtnlLinkDel       = []byte("link/del")
	rtnlLinkRename    = []byte("link/rename")
	rtnlLinkUp        = []byte("link/up")
	rtnlLinkDown      = []byte("link/down")
	rtnlLinkUntracked = []byte("link/untracked")
	rtnlAddrNew       = []byte("addr/new")
	rtnlAddrDel       = []byte("addr/del")
	rtnlAddrUntracked = []byte("addr/untracked")
	rtnlNeighFailed   = []byte("neigh/failed")
)

// rtnlOperStates name IF_OPER_* as /sys/class/net/*/operstate does.
var rtnlOperStates = [...][]byte{
	[]byte("unknown"), []byte("notpresent"), []byte("down"), []byte("lowerlayerdown"),
	[]byte("testing"), []byte("dormant"), []byte("up"),
}

// rtnlLink is what the decoder keeps of an interface.
type rtnlLink struct {
	name    [ifNameMax]byte
	nameLen uint8
	up      bool
}

// rtnlAddr identifies an address: the kernel's own key is the interface,
// family, local address and prefix length.
type rtnlAddr struct {
	index  int32
	family uint8
	plen   uint8
	addr   [16]byte
}

// Rtnetlink decodes the kernel's route netlink notifications of links,
// addresses and neighbours (groups RTNLGRP_LINK, RTNLGRP_IPV4_IFADDR,
// RTNLGRP_IPV6_IFADDR and RTNLGRP_NEIGH) into events about interfaces:
//
//   - link/new and link/del when an interface appears in the namespace (the
//     RTM_NEWLINK whose ifi_change is ~0, which the kernel sends for a
//     device registered or moved in) or goes (RTM_DELLINK);
//   - link/rename when an interface's name changes;
//   - link/up when an interface's operational state (IFLA_OPERSTATE)
//     becomes up, link/down when it leaves up: one event per transition,
//     however many RTM_NEWLINKs the kernel sends that change nothing;
//   - addr/new and addr/del when an address is added or removed, once each
//     however often the kernel re-announces the address (IPv6 duplicate
//     address detection, lifetime updates);
//   - neigh/failed when a neighbour entry enters NUD_FAILED (address
//     resolution failed).
//
// The object is the interface's name. The value of link events is the
// kernel's count of carrier changes (IFLA_CARRIER_CHANGES), which moves
// with every transition, including those whose messages were lost; their
// payload is the operational state. Address events carry the address and
// prefix length, neighbour events the neighbour's address.
//
// A renamed interface gives link/rename, about its new name, with its
// former name as payload; the events that follow are about the new name.
//
// Events say which objects are gone (Event.Gone): link/del the deleted
// interface, link/rename the former name, and a link/new on the index of
// an interface of another name whose deletion was lost (the kernel reuses
// indexes) that interface. A name that comes back is a new object, which
// the collector counts from zero; only a new interface of the same name
// on the same index, after its predecessor's deletion was lost, continues
// its counts.
//
// Transitions are counted from a known state: the decoder keeps each
// interface's state by ifindex, set silently by the kernel's answer to the
// link dump the source asks for each time its socket opens
// (RtnetlinkDumpRequest), and by every RTM_NEWLINK after it. An
// interface's first RTM_NEWLINK is a transition only when it announces a
// new device: link/new, then link/up if it is already up; any other first
// RTM_NEWLINK (one that overtook the dump) only teaches the decoder the
// interface's state. RTM_DELLINK drops the state, after a link/down if the
// interface was up and its deletion says it is not. Addresses are
// kept likewise, so that an address is new once; one the decoder has not
// seen whose cache information says the kernel changed it after creating
// it is an old address being updated, not a new one.
//
// At most RtnetlinkMaxLinks interfaces and RtnetlinkMaxAddrs addresses
// are kept. Past the bound, the RTM_NEWLINKs of interfaces that are not
// kept cannot be told apart from transitions and count as link/untracked,
// and the RTM_NEWADDRs of addresses that are not kept as addr/untracked;
// link/new, link/del and addr/del, which need no state, are still counted
// exactly.
//
// Messages of other families (a bridge's per-port RTM_NEWLINK, which is
// not about the device's existence) and other types (RTM_DELNEIGH, the
// dump's NLMSG_DONE) give no events. Objects and payloads are built in the
// decoder's own memory for the batch, as the genl decoder does.
type Rtnetlink struct {
	faults
	links map[int32]rtnlLink
	addrs map[rtnlAddr]struct{}
	buf   []byte
}

// NewRtnetlink returns an rtnetlink decoder.
func NewRtnetlink() *Rtnetlink {
	return &Rtnetlink{links: make(map[int32]rtnlLink), addrs: make(map[rtnlAddr]struct{})}
}

// RtnetlinkDumpRequest returns the RTM_GETLINK dump request that a source
// of the rtnetlink decoder sends when its socket opens, so that the
// decoder knows every interface's state before the first notification.
func RtnetlinkDumpRequest() []byte {
	b := make([]byte, nlmsgHeaderLen+sizeofIfInfomsg)
	binary.NativeEndian.PutUint32(b[0:4], uint32(len(b)))
	binary.NativeEndian.PutUint16(b[4:6], rtmGetlink)
	binary.NativeEndian.PutUint16(b[6:8], nlmFRequest|nlmFDump)
	binary.NativeEndian.PutUint32(b[8:12], 1)
	// struct ifinfomsg of family AF_UNSPEC (0): every interface.
	return b
}

// Decode implements Decoder. A message gives up to two events (link/new
// and link/up, link/down and link/del) or none (a notification that
// changes nothing).
func (d *Rtnetlink) Decode(events []Event, datagram []byte) ([]Event, int) {
	if len(events) == 0 {
		d.buf = d.buf[:0]
	}
	return appendMessages(events, datagram, d)
}

func (d *Rtnetlink) diagnose(datagram []byte) []Problem {
	return diagnoseMessages(datagram, NewRtnetlink())
}

func (d *Rtnetlink) appendMessage(events []Event, m message) ([]Event, bool) {
	start, n := len(d.buf), len(events)
	var good bool
	switch m.Type {
	case rtmNewlink, rtmDellink:
		events, good = d.link(events, m)
	case rtmNewaddr, rtmDeladdr:
		events, good = d.addr(events, m)
	case rtmNewneigh:
		events, good = d.neigh(events, m)
	default:
		good = true
	}
	if !good {
		// Nothing of a malformed message stays.
		d.buf = d.buf[:start]
		events = events[:n]
	}
	return events, good
}

// The names of the attributes the decoder reads, by message.
var (
	rtnlLinkAttrNames  = attrNames{iflaIfname: "IFLA_IFNAME", iflaOperstate: "IFLA_OPERSTATE", iflaCarrierChanges: "IFLA_CARRIER_CHANGES"}
	rtnlAddrAttrNames  = attrNames{ifaAddress: "IFA_ADDRESS", ifaLocal: "IFA_LOCAL", ifaLabel: "IFA_LABEL", ifaCacheinfo: "IFA_CACHEINFO"}
	rtnlNeighAttrNames = attrNames{ndaDst: "NDA_DST"}
)

// link decodes an RTM_NEWLINK or RTM_DELLINK: struct ifinfomsg and
// attributes, of which the kernel always sends IFLA_IFNAME and
// IFLA_OPERSTATE.
func (d *Rtnetlink) link(events []Event, m message) ([]Event, bool) {
	p := m.Payload
	if len(p) < sizeofIfInfomsg {
		return events, d.fail(m, faultf("link message with a %d-byte payload, too short for struct ifinfomsg (%d bytes)", len(p), sizeofIfInfomsg))
	}
	if p[0] != afUnspec {
		// A bridge's RTM_NEWLINK and RTM_DELLINK of AF_BRIDGE tell of
		// a port joining and leaving it, not of the device.
		return events, true
	}
	index := int32(binary.NativeEndian.Uint32(p[4:8]))
	change := binary.NativeEndian.Uint32(p[12:16])
	var (
		name       []byte
		oper       = -1
		carrier    uint32
		hasCarrier bool
	)
	var a attrDecoder
	d.attrs(&a, m, sizeofIfInfomsg, rtnlLinkAttrNames)
	for typ, v := range a.All {
		switch typ & nlaTypeMask {
		case iflaIfname:
			name = cString(v)
			if len(name) == 0 || len(name) > ifNameMax {
				return events, d.fail(m, a.Faultf(v, "attribute %s at byte %d holds a name of %d bytes, want 1-%d", len(name), ifNameMax))
			}
		case iflaOperstate:
			oper = int(a.Uint8(v))
		case iflaCarrierChanges:
			carrier, hasCarrier = a.Uint32(v), true
		}
	}
	switch {
	case a.Failed():
		return events, d.fail(m, a.Err())
	case name == nil:
		return events, d.fail(m, attrFaultf(rtnlLinkAttrNames, iflaIfname, "no attribute %s, which every link message carries"))
	case oper < 0:
		return events, d.fail(m, attrFaultf(rtnlLinkAttrNames, iflaOperstate, "no attribute %s, which every link message carries"))
	}
	ev := Event{Object: name, Value: float64(carrier), HasValue: hasCarrier, Payload: d.operState(oper)}
	st := rtnlLink{up: oper == ifOperUp}
	st.nameLen = uint8(copy(st.name[:], name))
	prev, known := d.links[index]

	if m.Type == rtmDellink {
		if known {
			if prev.up && !st.up {
				events = appendNamed(events, ev, rtnlLinkDown)
			}
			delete(d.links, index)
		}
		d.dropAddrs(index)
		ev.Gone = name
		return appendNamed(events, ev, rtnlLinkDel), true
	}
	if known && change != ifiChangeNew && string(prev.name[:prev.nameLen]) != string(name) {
		// Renamed: the events that follow are about the new name, and
		// the old one is gone.
		start := len(d.buf)
		d.buf = append(d.buf, prev.name[:prev.nameLen]...)
		old := d.since(start)
		events = append(events, Event{Name: rtnlLinkRename, Object: name, Payload: old, Gone: old})
	}
	switch {
	case m.Flags&nlmFMulti != 0:
		// A reply to the dump (notifications never have NLM_F_MULTI):
		// the state as the dump read it, newer than the notifications
		// queued before it, and never a transition.
	case change == ifiChangeNew:
		if known && string(prev.name[:prev.nameLen]) != string(name) {
			// A new device on the index of one whose deletion was
			// lost: that one is gone.
			start := len(d.buf)
			d.buf = append(d.buf, prev.name[:prev.nameLen]...)
			ev.Gone = d.since(start)
		}
		events = appendNamed(events, ev, rtnlLinkNew)
		ev.Gone = nil
		if st.up {
			events = appendNamed(events, ev, rtnlLinkUp)
		}
	case known && st.up && !prev.up:
		events = appendNamed(events, ev, rtnlLinkUp)
	case known && !st.up && prev.up:
		events = appendNamed(events, ev, rtnlLinkDown)
	case !known && len(d.links) >= RtnetlinkMaxLinks:
		return appendNamed(events, ev, rtnlLinkUntracked), true
	}
	if known || len(d.links) < RtnetlinkMaxLinks {
		d.links[index] = st
	}
	return events, true
}

// appendNamed appends ev called name.
func appendNamed(events []Event, ev Event, name []byte) []Event {
	ev.Name = name
	return append(events, ev)
}

// operState names operational state oper.
func (d *Rtnetlink) operState(oper int) []byte {
	if oper < len(rtnlOperStates) {
		return rtnlOperStates[oper]
	}
	start := len(d.buf)
	d.buf = strconv.AppendInt(d.buf, int64(oper), 10)
	return d.since(start)
}

// since returns what was appended to the batch's memory from start.
func (d *Rtnetlink) since(start int) []byte {
	return d.buf[start:len(d.buf):len(d.buf)]
}

// dropAddrs forgets the addresses of a deleted interface. The kernel
// sends their RTM_DELADDRs first; this catches those that were lost.
func (d *Rtnetlink) dropAddrs(index int32) {
	if len(d.addrs) == 0 {
		return
	}
	for k := range d.addrs {
		if k.index == index {
			delete(d.addrs, k)
		}
	}
}

// object names the interface index for an address or neighbour event: the
// name the decoder knows it by, else label (IFA_LABEL), else "if<index>".
func (d *Rtnetlink) object(index int32, label []byte) []byte {
	if st, ok := d.links[index]; ok {
		start := len(d.buf)
		d.buf = append(d.buf, st.name[:st.nameLen]...)
		return d.since(start)
	}
	if len(label) > 0 {
		return label
	}
	start := len(d.buf)
	d.buf = strconv.AppendInt(append(d.buf, "if"...), int64(index), 10)
	return d.since(start)
}

// appendAddr appends the text of address a of family, with prefix length
// plen if plen >= 0.
func (d *Rtnetlink) appendAddr(a []byte, plen int) []byte {
	start := len(d.buf)
	var ip netip.Addr
	if len(a) == 4 {
		ip = netip.AddrFrom4([4]byte(a))
	} else {
		ip = netip.AddrFrom16([16]byte(a))
	}
	d.buf = ip.AppendTo(d.buf)
	if plen >= 0 {
		d.buf = strconv.AppendInt(append(d.buf, '/'), int64(plen), 10)
	}
	return d.since(start)
}

// addrLen returns the length of family's addresses, 0 for families other
// than IPv4 and IPv6.
func addrLen(family uint8) int {
	switch family {
	case afInet:
		return 4
	case afInet6:
		return 16
	}
	return 0
}

// addr decodes an RTM_NEWADDR or RTM_DELADDR: struct ifaddrmsg and
// attributes. The address is IFA_LOCAL where present (on point-to-point
// links IFA_ADDRESS is the peer's), else IFA_ADDRESS.
func (d *Rtnetlink) addr(events []Event, m message) ([]Event, bool) {
	p := m.Payload
	if len(p) < sizeofIfAddrmsg {
		return events, d.fail(m, faultf("address message with a %d-byte payload, too short for struct ifaddrmsg (%d bytes)", len(p), sizeofIfAddrmsg))
	}
	n := addrLen(p[0])
	if n == 0 {
		return events, true
	}
	key := rtnlAddr{family: p[0], plen: p[1], index: int32(binary.NativeEndian.Uint32(p[4:8]))}
	var local, address, label []byte
	updated := false
	var a attrDecoder
	d.attrs(&a, m, sizeofIfAddrmsg, rtnlAddrAttrNames)
	for typ, v := range a.All {
		switch typ & nlaTypeMask {
		case ifaLocal:
			local = a.Sized(v, n)
		case ifaAddress:
			address = a.Sized(v, n)
		case ifaLabel:
			label = cString(v)
			if len(label) > ifNameMax {
				return events, d.fail(m, a.Faultf(v, "attribute %s at byte %d holds a name of %d bytes, want at most %d", len(label), ifNameMax))
			}
		case ifaCacheinfo:
			// cstamp and tstamp: created and last changed.
			if v := a.Sized(v, sizeofIfaCacheinfo); v != nil {
				updated = binary.NativeEndian.Uint32(v[8:12]) != binary.NativeEndian.Uint32(v[12:16])
			}
		}
	}
	if local == nil {
		local = address
	}
	switch {
	case a.Failed():
		return events, d.fail(m, a.Err())
	case local == nil:
		return events, d.fail(m, faultf("no address: neither attribute IFA_LOCAL nor IFA_ADDRESS"))
	}
	copy(key.addr[:], local)
	_, known := d.addrs[key]
	var name []byte
	switch {
	case m.Type == rtmDeladdr:
		delete(d.addrs, key)
		name = rtnlAddrDel
	case known:
		return events, true
	case len(d.addrs) >= RtnetlinkMaxAddrs:
		name = rtnlAddrUntracked
	default:
		d.addrs[key] = struct{}{}
		if updated || m.Flags&nlmFMulti != 0 {
			// An address that existed before the decoder heard of it.
			return events, true
		}
		name = rtnlAddrNew
	}
	ev := Event{Name: name, Object: d.object(key.index, label)}
	ev.Payload = d.appendAddr(local, int(key.plen))
	return append(events, ev), true
}

// neigh decodes an RTM_NEWNEIGH: struct ndmsg and attributes. Only entries
// entering NUD_FAILED are events; the kernel notifies that state once, as
// resolution fails.
func (d *Rtnetlink) neigh(events []Event, m message) ([]Event, bool) {
	p := m.Payload
	if len(p) < sizeofNdMsg {
		return events, d.fail(m, faultf("neighbour message with a %d-byte payload, too short for struct ndmsg (%d bytes)", len(p), sizeofNdMsg))
	}
	var dst []byte
	var a attrDecoder
	d.attrs(&a, m, sizeofNdMsg, rtnlNeighAttrNames)
	for typ, v := range a.All {
		if typ&nlaTypeMask == ndaDst {
			dst = v
		}
	}
	if a.Failed() {
		return events, d.fail(m, a.Err())
	}
	state := binary.NativeEndian.Uint16(p[8:10])
	if state&nudFailed == 0 || m.Flags&nlmFMulti != 0 {
		return events, true
	}
	ev := Event{Name: rtnlNeighFailed, Object: d.object(int32(binary.NativeEndian.Uint32(p[4:8])), nil)}
	if len(dst) == 4 || len(dst) == 16 {
		ev.Payload = d.appendAddr(dst, -1)
	}
	return append(events, ev), true
}
