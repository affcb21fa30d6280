package decoder_test

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/kevent-exporter/kevent_exporter/decoder"
	"github.com/kevent-exporter/kevent_exporter/internal/nlsend"
)

// rtStep is one datagram given to a stateful decoder and what it must give.
type rtStep struct {
	what     string
	datagram []byte
	want     []event
	bad      int
}

// runRtSteps decodes the steps in order with d, each as a batch of its own.
func runRtSteps(t *testing.T, d decoder.Decoder, steps []rtStep) {
	t.Helper()
	for i, s := range steps {
		got, bad := d.Decode(nil, s.datagram)
		if diff := cmp.Diff(s.want, toEvents(got)); diff != "" {
			t.Errorf("step %d (%s): unexpected events (-want +got):\n%s", i, s.what, diff)
		}
		if bad != s.bad {
			t.Errorf("step %d (%s): malformed count %d, want %d", i, s.what, bad, s.bad)
		}
	}
}

// rtMsg builds a route netlink message: its fixed header and attributes,
// with nlmsg_flags flags.
func rtMsg(typ, flags uint16, hdr []byte, attrs ...[]byte) []byte {
	b := nlsend.AppendMessage(nil, typ, nlSeq, concat(append([][]byte{hdr}, attrs...)...))
	binary.NativeEndian.PutUint16(b[6:8], flags)
	return b
}

// ifinfomsg builds a struct ifinfomsg.
func ifinfomsg(family uint8, index int32, flags, change uint32) []byte {
	b := []byte{family, 0, 1, 0} // ARPHRD_ETHER
	b = binary.NativeEndian.AppendUint32(b, uint32(index))
	b = binary.NativeEndian.AppendUint32(b, flags)
	return binary.NativeEndian.AppendUint32(b, change)
}

const (
	operDown = 2
	operLLD  = 3
	operUp   = 6
	newDev   = 0xffffffff
)

// linkAttrs are the attributes the decoder reads, with some it skips
// around them as the kernel sends them.
func linkAttrs(name string, oper uint8, carrier uint32) [][]byte {
	return [][]byte{
		nlsend.AppendAttr(nil, unix.IFLA_IFNAME, cstr(name)),
		nlsend.AppendAttr(nil, unix.IFLA_TXQLEN, u32(1000)),
		nlsend.AppendAttr(nil, unix.IFLA_OPERSTATE, []byte{oper}),
		nlsend.AppendAttr(nil, unix.IFLA_LINKMODE, []byte{0}),
		nlsend.AppendAttr(nil, unix.IFLA_MTU, u32(1500)),
		nlsend.AppendAttr(nil, unix.IFLA_CARRIER_CHANGES, u32(carrier)),
		nlsend.AppendAttr(nil, unix.IFLA_STATS64|0x8000, make([]byte, 200)),
	}
}

// link builds an RTM_NEWLINK or RTM_DELLINK notification.
func link(typ uint16, index int32, change uint32, name string, oper uint8, carrier uint32) []byte {
	return rtMsg(typ, 0, ifinfomsg(unix.AF_UNSPEC, index, 0x1003, change), linkAttrs(name, oper, carrier)...)
}

// newlink is an RTM_NEWLINK notification of a change.
func newlink(index int32, name string, oper uint8, carrier uint32) []byte {
	return link(unix.RTM_NEWLINK, index, 0, name, oper, carrier)
}

// dumpLink is the kernel's reply to the link dump for one interface.
func dumpLink(index int32, name string, oper uint8, carrier uint32) []byte {
	return rtMsg(unix.RTM_NEWLINK, unix.NLM_F_MULTI, ifinfomsg(unix.AF_UNSPEC, index, 0x1003, 0), linkAttrs(name, oper, carrier)...)
}

// linkEv is a link event's expected form.
func linkEv(name, object string, carrier float64, oper string) event {
	return event{Name: name, Object: object, Value: carrier, HasValue: true, Payload: oper}
}

// delEv is a link/del event's expected form: the interface is gone.
func delEv(object string, carrier float64, oper string) event {
	e := linkEv("link/del", object, carrier, oper)
	e.Gone = object
	return e
}

// renameEv is a link/rename event's expected form.
func renameEv(from, to string) event {
	return event{Name: "link/rename", Object: to, Payload: from, Gone: from}
}

func TestRtnetlinkLinks(t *testing.T) {
	runRtSteps(t, decoder.NewRtnetlink(), []rtStep{
		{"a veth end appears, down", link(unix.RTM_NEWLINK, 3, newDev, "kvA", operDown, 1),
			[]event{linkEv("link/new", "kvA", 1, "down")}, 0},
		{"set up: running, no carrier yet", newlink(3, "kvA", operLLD, 1), nil, 0},
		{"carrier: up", newlink(3, "kvA", operUp, 2), []event{linkEv("link/up", "kvA", 2, "up")}, 0},
		{"a notification that changes nothing", newlink(3, "kvA", operUp, 2), nil, 0},
		{"down", newlink(3, "kvA", operDown, 3), []event{linkEv("link/down", "kvA", 3, "down")}, 0},
		{"down again, another reason", newlink(3, "kvA", operLLD, 3), nil, 0},
		{"renamed while down", newlink(3, "kvRenamed", operLLD, 3), []event{renameEv("kvA", "kvRenamed")}, 0},
		{"up under the new name", newlink(3, "kvRenamed", operUp, 4), []event{linkEv("link/up", "kvRenamed", 4, "up")}, 0},
		{"a bridge port's notification is not the device's",
			rtMsg(unix.RTM_DELLINK, 0, ifinfomsg(unix.AF_BRIDGE, 3, 0, 0), linkAttrs("kvRenamed", operDown, 4)...), nil, 0},
		{"still up: its close was lost, its deletion says down",
			link(unix.RTM_DELLINK, 3, newDev, "kvRenamed", operDown, 5),
			[]event{linkEv("link/down", "kvRenamed", 5, "down"), delEv("kvRenamed", 5, "down")}, 0},
		{"index 3 is unknown again: its first notification only teaches its state", newlink(3, "kvB", operUp, 7), nil, 0},
		{"then its transitions count", newlink(3, "kvB", operDown, 8), []event{linkEv("link/down", "kvB", 8, "down")}, 0},
		{"a device created up: new, then up", link(unix.RTM_NEWLINK, 4, newDev, "kvC", operUp, 0),
			[]event{linkEv("link/new", "kvC", 0, "up"), linkEv("link/up", "kvC", 0, "up")}, 0},
		{"a new device over a known index starts afresh: the old one is gone", link(unix.RTM_NEWLINK, 3, newDev, "kvD", operDown, 1),
			[]event{{Name: "link/new", Object: "kvD", Value: 1, HasValue: true, Payload: "down", Gone: "kvB"}}, 0},
		{"renamed and up in one message", newlink(3, "kvD2", operUp, 2),
			[]event{renameEv("kvD", "kvD2"), linkEv("link/up", "kvD2", 2, "up")}, 0},
		{"renamed back, in the dump after a new socket", dumpLink(3, "kvD", operUp, 2), []event{renameEv("kvD2", "kvD")}, 0},
		{"deleting an unknown interface still counts", link(unix.RTM_DELLINK, 99, newDev, "kvE", operDown, 1),
			[]event{delEv("kvE", 1, "down")}, 0},
		{"an operational state the decoder has no name for",
			newlink(4, "kvC", 9, 1), []event{linkEv("link/down", "kvC", 1, "9")}, 0},
		{"no carrier count: no value",
			rtMsg(unix.RTM_NEWLINK, 0, ifinfomsg(unix.AF_UNSPEC, 4, 0, 0),
				nlsend.AppendAttr(nil, unix.IFLA_OPERSTATE, []byte{operUp}), nlsend.AppendAttr(nil, unix.IFLA_IFNAME, cstr("kvC"))),
			[]event{{Name: "link/up", Object: "kvC", Payload: "up"}}, 0},
		{"a name without its NUL, and the last attribute without padding",
			rtMsg(unix.RTM_NEWLINK, 0, ifinfomsg(unix.AF_UNSPEC, 4, 0, 0),
				nlsend.AppendAttr(nil, unix.IFLA_OPERSTATE, []byte{operDown}), withoutAttrPadding(nlsend.AppendAttr(nil, unix.IFLA_IFNAME, []byte("kvC")))),
			[]event{{Name: "link/down", Object: "kvC", Payload: "down"}}, 0},
		{"two transitions in one datagram", concat(newlink(4, "kvC", operUp, 2), newlink(4, "kvC", operDown, 3)),
			[]event{linkEv("link/up", "kvC", 2, "up"), linkEv("link/down", "kvC", 3, "down")}, 0},
	})
}

// TestRtnetlinkDump: the dump's replies set the state of the interfaces
// there are, silently, so that the first notification after it is a
// transition or not.
func TestRtnetlinkDump(t *testing.T) {
	runRtSteps(t, decoder.NewRtnetlink(), []rtStep{
		{"a notification overtakes the dump", newlink(2, "eth0", operUp, 1), nil, 0},
		{"the dump: eth0 (known, now down), eth1 up, eth2 down, and its end",
			concat(dumpLink(2, "eth0", operDown, 2), dumpLink(5, "eth1", operUp, 4), dumpLink(6, "eth2", operDown, 0),
				nlsend.AppendMessage(nil, unix.NLMSG_DONE, nlSeq, u32(0))), nil, 0},
		{"eth0 comes up from the state the dump read", newlink(2, "eth0", operUp, 3), []event{linkEv("link/up", "eth0", 3, "up")}, 0},
		{"eth1 goes down", newlink(5, "eth1", operDown, 5), []event{linkEv("link/down", "eth1", 5, "down")}, 0},
		{"eth2 comes up", newlink(6, "eth2", operUp, 1), []event{linkEv("link/up", "eth2", 1, "up")}, 0},
		{"an error message (a failed dump) is not an event",
			nlsend.AppendMessage(nil, unix.NLMSG_ERROR, nlSeq, make([]byte, 20)), nil, 0},
	})
}

func TestRtnetlinkLinkMalformed(t *testing.T) {
	good := newlink(3, "kvA", operUp, 1)
	for _, c := range []struct {
		name     string
		datagram []byte
	}{
		{"short ifinfomsg", rtMsg(unix.RTM_NEWLINK, 0, make([]byte, 15))},
		{"no name", rtMsg(unix.RTM_NEWLINK, 0, ifinfomsg(0, 3, 0, 0), nlsend.AppendAttr(nil, unix.IFLA_OPERSTATE, []byte{operUp}))},
		{"no operational state", rtMsg(unix.RTM_DELLINK, 0, ifinfomsg(0, 3, 0, 0), nlsend.AppendAttr(nil, unix.IFLA_IFNAME, cstr("kvA")))},
		{"empty name", rtMsg(unix.RTM_NEWLINK, 0, ifinfomsg(0, 3, 0, 0), nlsend.AppendAttr(nil, unix.IFLA_IFNAME, cstr("")), nlsend.AppendAttr(nil, unix.IFLA_OPERSTATE, []byte{operUp}))},
		{"name longer than IFNAMSIZ", rtMsg(unix.RTM_NEWLINK, 0, ifinfomsg(0, 3, 0, 0), nlsend.AppendAttr(nil, unix.IFLA_IFNAME, cstr("0123456789abcdef")), nlsend.AppendAttr(nil, unix.IFLA_OPERSTATE, []byte{operUp}))},
		{"2-byte operational state", rtMsg(unix.RTM_NEWLINK, 0, ifinfomsg(0, 3, 0, 0), nlsend.AppendAttr(nil, unix.IFLA_IFNAME, cstr("kvA")), nlsend.AppendAttr(nil, unix.IFLA_OPERSTATE, []byte{operUp, 0}))},
		{"2-byte carrier count", rtMsg(unix.RTM_NEWLINK, 0, ifinfomsg(0, 3, 0, 0), concat(linkAttrs("kvA", operUp, 1)...), nlsend.AppendAttr(nil, unix.IFLA_CARRIER_CHANGES, []byte{1, 0}))},
		{"attribute length past the message", rtMsg(unix.RTM_NEWLINK, 0, ifinfomsg(0, 3, 0, 0), concat(linkAttrs("kvA", operUp, 1)...), rawAttr(200, 1, u32(1)))},
		{"attribute length under its header", rtMsg(unix.RTM_NEWLINK, 0, ifinfomsg(0, 3, 0, 0), concat(linkAttrs("kvA", operUp, 1)...), rawAttr(2, 1, nil))},
		{"truncated attribute header", rtMsg(unix.RTM_NEWLINK, 0, ifinfomsg(0, 3, 0, 0), concat(linkAttrs("kvA", operUp, 1)...), []byte{8, 0})},
	} {
		t.Run(c.name, func(t *testing.T) {
			// Known and down first, so that a message that were taken
			// would be a transition.
			d := decoder.NewRtnetlink()
			runRtSteps(t, d, []rtStep{
				{"known", newlink(3, "kvA", operDown, 0), nil, 0},
				{"malformed", c.datagram, nil, 1},
				{"malformed beside a good one", concat(c.datagram, good), []event{linkEv("link/up", "kvA", 1, "up")}, 1},
			})
		})
	}
	t.Run("framing", func(t *testing.T) {
		runRtSteps(t, decoder.NewRtnetlink(), []rtStep{
			{"truncated header", good[:10], nil, 1},
			{"length past the datagram", nlmsghdr(100, unix.RTM_NEWLINK), nil, 1},
		})
	})
}

// ifaddrmsg builds a struct ifaddrmsg.
func ifaddrmsg(family, plen uint8, index int32) []byte {
	return binary.NativeEndian.AppendUint32([]byte{family, plen, 0x80, 0}, uint32(index))
}

// cacheinfo builds IFA_CACHEINFO: preferred and valid lifetimes, created
// and changed timestamps.
func cacheinfo(cstamp, tstamp uint32) []byte {
	return nlsend.AppendAttr(nil, unix.IFA_CACHEINFO, concat(u32(0xffffffff), u32(0xffffffff), u32(cstamp), u32(tstamp)))
}

// addr4 builds an IPv4 address notification as the kernel does: IFA_ADDRESS
// and IFA_LOCAL, the label, flags and cache information.
func addr4(typ uint16, index int32, ip [4]byte, plen uint8, label string, cstamp, tstamp uint32) []byte {
	return rtMsg(typ, 0, ifaddrmsg(unix.AF_INET, plen, index),
		nlsend.AppendAttr(nil, unix.IFA_ADDRESS, ip[:]), nlsend.AppendAttr(nil, unix.IFA_LOCAL, ip[:]),
		nlsend.AppendAttr(nil, unix.IFA_LABEL, cstr(label)), nlsend.AppendAttr(nil, unix.IFA_FLAGS, u32(0x80)),
		cacheinfo(cstamp, tstamp))
}

// addr6 builds an IPv6 address notification: IFA_ADDRESS alone.
func addr6(typ uint16, index int32, ip [16]byte, plen uint8, cstamp, tstamp uint32) []byte {
	return rtMsg(typ, 0, ifaddrmsg(unix.AF_INET6, plen, index),
		nlsend.AppendAttr(nil, unix.IFA_ADDRESS, ip[:]), cacheinfo(cstamp, tstamp), nlsend.AppendAttr(nil, unix.IFA_FLAGS, u32(0x80)))
}

var (
	ip4a = [4]byte{10, 9, 0, 1}
	ip4b = [4]byte{10, 9, 0, 2}
	ip6a = [16]byte{0x20, 0x01, 0x0d, 0xb8, 15: 1}
)

func TestRtnetlinkAddrs(t *testing.T) {
	runRtSteps(t, decoder.NewRtnetlink(), []rtStep{
		{"the link", dumpLink(3, "kvA", operUp, 2), nil, 0},
		{"an IPv4 address added", addr4(unix.RTM_NEWADDR, 3, ip4a, 24, "kvA", 100, 100),
			[]event{{Name: "addr/new", Object: "kvA", Payload: "10.9.0.1/24"}}, 0},
		{"announced again (its lifetime changed)", addr4(unix.RTM_NEWADDR, 3, ip4a, 24, "kvA", 100, 200), nil, 0},
		{"another prefix length is another address", addr4(unix.RTM_NEWADDR, 3, ip4a, 16, "kvA", 300, 300),
			[]event{{Name: "addr/new", Object: "kvA", Payload: "10.9.0.1/16"}}, 0},
		{"removed", addr4(unix.RTM_DELADDR, 3, ip4a, 24, "kvA", 100, 200),
			[]event{{Name: "addr/del", Object: "kvA", Payload: "10.9.0.1/24"}}, 0},
		{"added again", addr4(unix.RTM_NEWADDR, 3, ip4a, 24, "kvA", 400, 400),
			[]event{{Name: "addr/new", Object: "kvA", Payload: "10.9.0.1/24"}}, 0},
		{"IPv6, tentative", addr6(unix.RTM_NEWADDR, 3, ip6a, 64, 500, 500),
			[]event{{Name: "addr/new", Object: "kvA", Payload: "2001:db8::1/64"}}, 0},
		{"IPv6, duplicate address detection done", addr6(unix.RTM_NEWADDR, 3, ip6a, 64, 500, 500), nil, 0},
		{"an address from before the decoder, updated", addr6(unix.RTM_NEWADDR, 3, [16]byte{0xfe, 0x80, 15: 7}, 64, 5, 600), nil, 0},
		{"which is known from then on", addr6(unix.RTM_NEWADDR, 3, [16]byte{0xfe, 0x80, 15: 7}, 64, 5, 600), nil, 0},
		{"and counts when it goes", addr6(unix.RTM_DELADDR, 3, [16]byte{0xfe, 0x80, 15: 7}, 64, 5, 600),
			[]event{{Name: "addr/del", Object: "kvA", Payload: "fe80::7/64"}}, 0},
		{"an unknown interface, by its label", addr4(unix.RTM_NEWADDR, 8, ip4b, 8, "eth9:1", 1, 1),
			[]event{{Name: "addr/new", Object: "eth9:1", Payload: "10.9.0.2/8"}}, 0},
		{"an unknown interface without a label", addr6(unix.RTM_NEWADDR, 8, ip6a, 128, 1, 1),
			[]event{{Name: "addr/new", Object: "if8", Payload: "2001:db8::1/128"}}, 0},
		{"point-to-point: the local address, not the peer's",
			rtMsg(unix.RTM_NEWADDR, 0, ifaddrmsg(unix.AF_INET, 32, 3),
				nlsend.AppendAttr(nil, unix.IFA_ADDRESS, []byte{192, 0, 2, 2}), nlsend.AppendAttr(nil, unix.IFA_LOCAL, []byte{192, 0, 2, 1})),
			[]event{{Name: "addr/new", Object: "kvA", Payload: "192.0.2.1/32"}}, 0},
		{"another family", rtMsg(unix.RTM_NEWADDR, 0, ifaddrmsg(unix.AF_PACKET, 0, 3), nlsend.AppendAttr(nil, unix.IFA_ADDRESS, []byte{1, 2})), nil, 0},
		{"the link goes, its DELADDRs lost", link(unix.RTM_DELLINK, 3, newDev, "kvA", operDown, 3),
			[]event{linkEv("link/down", "kvA", 3, "down"), delEv("kvA", 3, "down")}, 0},
		{"its addresses went with it", addr4(unix.RTM_NEWADDR, 3, ip4a, 24, "", 900, 900),
			[]event{{Name: "addr/new", Object: "if3", Payload: "10.9.0.1/24"}}, 0},
		{"without cache information an unknown address is new",
			rtMsg(unix.RTM_NEWADDR, 0, ifaddrmsg(unix.AF_INET, 24, 3), nlsend.AppendAttr(nil, unix.IFA_LOCAL, ip4b[:])),
			[]event{{Name: "addr/new", Object: "if3", Payload: "10.9.0.2/24"}}, 0},
	})
}

func TestRtnetlinkAddrMalformed(t *testing.T) {
	for _, c := range []struct {
		name     string
		datagram []byte
	}{
		{"short ifaddrmsg", rtMsg(unix.RTM_NEWADDR, 0, []byte{unix.AF_INET, 24, 0, 0, 3, 0, 0})},
		{"no address", rtMsg(unix.RTM_NEWADDR, 0, ifaddrmsg(unix.AF_INET, 24, 3), cacheinfo(1, 1))},
		{"IPv4 address of 16 bytes", rtMsg(unix.RTM_NEWADDR, 0, ifaddrmsg(unix.AF_INET, 24, 3), nlsend.AppendAttr(nil, unix.IFA_ADDRESS, ip6a[:]))},
		{"IPv6 local address of 4 bytes", rtMsg(unix.RTM_DELADDR, 0, ifaddrmsg(unix.AF_INET6, 64, 3), nlsend.AppendAttr(nil, unix.IFA_ADDRESS, ip6a[:]), nlsend.AppendAttr(nil, unix.IFA_LOCAL, ip4a[:]))},
		{"label longer than IFNAMSIZ", rtMsg(unix.RTM_NEWADDR, 0, ifaddrmsg(unix.AF_INET, 24, 3), nlsend.AppendAttr(nil, unix.IFA_LOCAL, ip4a[:]), nlsend.AppendAttr(nil, unix.IFA_LABEL, cstr("0123456789abcdef")))},
		{"short cache information", rtMsg(unix.RTM_NEWADDR, 0, ifaddrmsg(unix.AF_INET, 24, 3), nlsend.AppendAttr(nil, unix.IFA_LOCAL, ip4a[:]), nlsend.AppendAttr(nil, unix.IFA_CACHEINFO, u64(1)))},
		{"attribute length past the message", rtMsg(unix.RTM_NEWADDR, 0, ifaddrmsg(unix.AF_INET, 24, 3), nlsend.AppendAttr(nil, unix.IFA_LOCAL, ip4a[:]), rawAttr(40, 1, nil))},
		{"truncated attribute header", rtMsg(unix.RTM_DELADDR, 0, ifaddrmsg(unix.AF_INET, 24, 3), nlsend.AppendAttr(nil, unix.IFA_LOCAL, ip4a[:]), []byte{4, 0})},
	} {
		t.Run(c.name, func(t *testing.T) {
			runRtSteps(t, decoder.NewRtnetlink(), []rtStep{
				{"malformed", c.datagram, nil, 1},
				{"malformed beside a good one", concat(c.datagram, addr4(unix.RTM_DELADDR, 3, ip4a, 24, "kvA", 1, 1)),
					[]event{{Name: "addr/del", Object: "kvA", Payload: "10.9.0.1/24"}}, 1},
			})
		})
	}
}

// ndmsg builds a struct ndmsg.
func ndmsg(family uint8, index int32, state uint16) []byte {
	b := binary.NativeEndian.AppendUint32([]byte{family, 0, 0, 0}, uint32(index))
	return append(binary.NativeEndian.AppendUint16(b, state), 0, 1)
}

func neighMsg(typ uint16, index int32, state uint16, dst []byte) []byte {
	return rtMsg(typ, 0, ndmsg(unix.AF_INET, index, state),
		nlsend.AppendAttr(nil, unix.NDA_DST, dst), nlsend.AppendAttr(nil, unix.NDA_PROBES, u32(3)))
}

func TestRtnetlinkNeigh(t *testing.T) {
	runRtSteps(t, decoder.NewRtnetlink(), []rtStep{
		{"the link", newlink(3, "kvA", operUp, 2), nil, 0},
		{"resolution failed", neighMsg(unix.RTM_NEWNEIGH, 3, unix.NUD_FAILED, ip4b[:]),
			[]event{{Name: "neigh/failed", Object: "kvA", Payload: "10.9.0.2"}}, 0},
		{"IPv6, on an unknown interface", neighMsg(unix.RTM_NEWNEIGH, 9, unix.NUD_FAILED, ip6a[:]),
			[]event{{Name: "neigh/failed", Object: "if9", Payload: "2001:db8::1"}}, 0},
		{"no destination", rtMsg(unix.RTM_NEWNEIGH, 0, ndmsg(unix.AF_INET, 3, unix.NUD_FAILED)),
			[]event{{Name: "neigh/failed", Object: "kvA"}}, 0},
		{"other states", concat(neighMsg(unix.RTM_NEWNEIGH, 3, unix.NUD_REACHABLE, ip4b[:]),
			neighMsg(unix.RTM_NEWNEIGH, 3, unix.NUD_STALE, ip4b[:]), neighMsg(unix.RTM_NEWNEIGH, 3, unix.NUD_INCOMPLETE, ip4b[:])), nil, 0},
		{"a failed entry deleted, and the kernel's request to a resolver daemon",
			concat(neighMsg(unix.RTM_DELNEIGH, 3, unix.NUD_FAILED, ip4b[:]), neighMsg(unix.RTM_GETNEIGH, 3, unix.NUD_FAILED, ip4b[:])), nil, 0},
		{"short ndmsg", rtMsg(unix.RTM_NEWNEIGH, 0, make([]byte, 11)), nil, 1},
		{"bad attribute", rtMsg(unix.RTM_NEWNEIGH, 0, ndmsg(unix.AF_INET, 3, unix.NUD_FAILED), rawAttr(3, 1, nil)), nil, 1},
	})
}

// TestRtnetlinkLinkBound fills the link table: past RtnetlinkMaxLinks
// interfaces, a notification of an interface the decoder does not keep is
// link/untracked, while new and deleted interfaces still count; a deletion
// makes room again.
func TestRtnetlinkLinkBound(t *testing.T) {
	d := decoder.NewRtnetlink()
	var dump []byte
	for i := range decoder.RtnetlinkMaxLinks {
		dump = append(dump, dumpLink(int32(1000+i), fmt.Sprint("d", i), operUp, 1)...)
	}
	if evs, bad := d.Decode(nil, dump); len(evs) != 0 || bad != 0 {
		t.Fatalf("dump of %d links: %d events, %d malformed", decoder.RtnetlinkMaxLinks, len(evs), bad)
	}
	runRtSteps(t, d, []rtStep{
		{"a kept interface", newlink(1000, "d0", operDown, 2), []event{linkEv("link/down", "d0", 2, "down")}, 0},
		{"an interface past the bound", newlink(7, "over", operDown, 2), []event{linkEv("link/untracked", "over", 2, "down")}, 0},
		{"which stays untracked", newlink(7, "over", operUp, 3), []event{linkEv("link/untracked", "over", 3, "up")}, 0},
		{"the dump does not add it", dumpLink(7, "over", operUp, 3), nil, 0},
		{"a new interface past the bound counts", link(unix.RTM_NEWLINK, 8, newDev, "new", operUp, 0),
			[]event{linkEv("link/new", "new", 0, "up"), linkEv("link/up", "new", 0, "up")}, 0},
		{"but is not kept", newlink(8, "new", operDown, 1), []event{linkEv("link/untracked", "new", 1, "down")}, 0},
		{"its deletion counts", link(unix.RTM_DELLINK, 8, newDev, "new", operDown, 1), []event{delEv("new", 1, "down")}, 0},
		{"a kept interface goes", link(unix.RTM_DELLINK, 1001, newDev, "d1", operDown, 2),
			[]event{linkEv("link/down", "d1", 2, "down"), delEv("d1", 2, "down")}, 0},
		{"which makes room: 7 is learnt", newlink(7, "over", operUp, 4), nil, 0},
		{"and its transitions count", newlink(7, "over", operDown, 5), []event{linkEv("link/down", "over", 5, "down")}, 0},
		{"the table is full again", newlink(9, "more", operDown, 1), []event{linkEv("link/untracked", "more", 1, "down")}, 0},
	})
}

// TestRtnetlinkAddrBound fills the address table: past RtnetlinkMaxAddrs,
// an address the decoder does not keep is addr/untracked when announced
// and addr/del when removed.
func TestRtnetlinkAddrBound(t *testing.T) {
	d := decoder.NewRtnetlink()
	var msgs []byte
	for i := range decoder.RtnetlinkMaxAddrs {
		msgs = append(msgs, addr4(unix.RTM_NEWADDR, 3, [4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}, 32, "", 1, 1)...)
	}
	if evs, bad := d.Decode(nil, msgs); len(evs) != decoder.RtnetlinkMaxAddrs || bad != 0 {
		t.Fatalf("%d addresses: %d events, %d malformed", decoder.RtnetlinkMaxAddrs, len(evs), bad)
	}
	over := [4]byte{192, 0, 2, 1}
	runRtSteps(t, d, []rtStep{
		{"a kept address, again", addr4(unix.RTM_NEWADDR, 3, [4]byte{10, 0, 0, 0}, 32, "", 1, 1), nil, 0},
		{"an address past the bound", addr4(unix.RTM_NEWADDR, 3, over, 24, "", 1, 1),
			[]event{{Name: "addr/untracked", Object: "if3", Payload: "192.0.2.1/24"}}, 0},
		{"announced again", addr4(unix.RTM_NEWADDR, 3, over, 24, "", 1, 2),
			[]event{{Name: "addr/untracked", Object: "if3", Payload: "192.0.2.1/24"}}, 0},
		{"removed", addr4(unix.RTM_DELADDR, 3, over, 24, "", 1, 2),
			[]event{{Name: "addr/del", Object: "if3", Payload: "192.0.2.1/24"}}, 0},
		{"a kept one removed makes room", addr4(unix.RTM_DELADDR, 3, [4]byte{10, 0, 0, 1}, 32, "", 1, 1),
			[]event{{Name: "addr/del", Object: "if3", Payload: "10.0.0.1/32"}}, 0},
		{"for another", addr4(unix.RTM_NEWADDR, 3, over, 24, "", 5, 5),
			[]event{{Name: "addr/new", Object: "if3", Payload: "192.0.2.1/24"}}, 0},
		{"kept", addr4(unix.RTM_NEWADDR, 3, over, 24, "", 5, 5), nil, 0},
	})
}

// TestRtnetlinkBatch: each event of a batch keeps its own object and
// payload, though the decoder builds them in its own memory.
func TestRtnetlinkBatch(t *testing.T) {
	d := decoder.NewRtnetlink()
	d.Decode(nil, concat(dumpLink(3, "kvA", operUp, 1), dumpLink(4, "kvB", operUp, 1)))
	events, _ := d.Decode(nil, addr4(unix.RTM_NEWADDR, 3, ip4a, 24, "", 1, 1))
	events, _ = d.Decode(events, addr6(unix.RTM_NEWADDR, 4, ip6a, 64, 1, 1))
	events, _ = d.Decode(events, neighMsg(unix.RTM_NEWNEIGH, 9, unix.NUD_FAILED, ip4b[:]))
	want := []event{
		{Name: "addr/new", Object: "kvA", Payload: "10.9.0.1/24"},
		{Name: "addr/new", Object: "kvB", Payload: "2001:db8::1/64"},
		{Name: "neigh/failed", Object: "if9", Payload: "10.9.0.2"},
	}
	if diff := cmp.Diff(want, toEvents(events)); diff != "" {
		t.Fatalf("unexpected events (-want +got):\n%s", diff)
	}
}

// TestRtnetlinkObjectAliasesDatagram: a link event's object is the name in
// the datagram, not a copy.
func TestRtnetlinkObjectAliasesDatagram(t *testing.T) {
	dg := link(unix.RTM_NEWLINK, 3, newDev, "kvA", operDown, 1)
	events, _ := decoder.NewRtnetlink().Decode(nil, dg)
	if len(events) != 1 || !within(dg, events[0].Object) {
		t.Fatalf("events %v: object not within the datagram", toEvents(events))
	}
}

func TestRtnetlinkNew(t *testing.T) {
	d, err := decoder.New("rtnetlink", decoder.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := d.(*decoder.Rtnetlink); !ok {
		t.Fatalf("New(rtnetlink) = %T", d)
	}
	reqs := decoder.Requests("rtnetlink")
	want := rtMsg(unix.RTM_GETLINK, unix.NLM_F_REQUEST|unix.NLM_F_DUMP, make([]byte, unix.SizeofIfInfomsg))
	if len(reqs) != 1 || !cmp.Equal(reqs[0], want) {
		t.Fatalf("Requests(rtnetlink) = %x, want [%x]", reqs, want)
	}
	if reqs := decoder.Requests("raw"); reqs != nil {
		t.Fatalf("Requests(raw) = %x, want none", reqs)
	}
	for _, name := range []string{"link", "neigh", "ipv4_ifaddr", "ipv6_ifaddr"} {
		if _, ok := decoder.RtnetlinkGroups[name]; !ok {
			t.Errorf("RtnetlinkGroups has no %s", name)
		}
	}
}

func FuzzRtnetlink(f *testing.F) {
	f.Add(link(unix.RTM_NEWLINK, 3, newDev, "kvA", operUp, 1))
	f.Add(concat(dumpLink(3, "kvA", operUp, 1), newlink(3, "kvA", operDown, 2)))
	f.Add(addr4(unix.RTM_NEWADDR, 3, ip4a, 24, "kvA", 1, 1))
	f.Add(addr6(unix.RTM_DELADDR, 3, ip6a, 64, 1, 2))
	f.Add(neighMsg(unix.RTM_NEWNEIGH, 3, unix.NUD_FAILED, ip4b[:]))
	f.Add(rtMsg(unix.RTM_NEWLINK, 0, ifinfomsg(0, 3, 0, 0), rawAttr(2, 1, nil)))
	names := map[string]bool{}
	for _, n := range []string{"link/new", "link/del", "link/rename", "link/up", "link/down", "link/untracked", "addr/new", "addr/del", "addr/untracked", "neigh/failed"} {
		names[n] = true
	}
	f.Fuzz(func(t *testing.T, datagram []byte) {
		d := decoder.NewRtnetlink()
		// Twice, so that the second pass meets the state the first
		// left.
		for range 2 {
			events, bad := d.Decode(nil, datagram)
			if bad < 0 || len(events) > 2*(len(datagram)/16+1) {
				t.Fatalf("%d events and %d malformed from %d bytes", len(events), bad, len(datagram))
			}
			for _, e := range events {
				if !names[string(e.Name)] || len(e.Object) == 0 || len(e.Object) > 16 || len(e.Gone) > 16 {
					t.Fatalf("event %q about %q", e.Name, e.Object)
				}
			}
		}
	})
}

// BenchmarkRtnetlinkDecode: a link flapping (each notification a
// transition, as the kernel sends them, about 300 bytes each with its
// statistics), a notification that changes nothing beside one that does,
// an address removed and added, and a failed neighbour.
func BenchmarkRtnetlinkDecode(b *testing.B) {
	d := decoder.NewRtnetlink()
	d.Decode(nil, dumpLink(3, "eth0", operUp, 1))
	benchmarkDecode(b, d,
		newlink(3, "eth0", operDown, 2),
		newlink(3, "eth0", operUp, 3),
		concat(newlink(3, "eth0", operUp, 3), newlink(3, "eth0", operLLD, 4)),
		newlink(3, "eth0", operUp, 5),
		concat(addr4(unix.RTM_DELADDR, 3, ip4a, 24, "eth0", 1, 1), addr4(unix.RTM_NEWADDR, 3, ip4a, 24, "eth0", 2, 2)),
		concat(addr6(unix.RTM_DELADDR, 3, ip6a, 64, 1, 1), addr6(unix.RTM_NEWADDR, 3, ip6a, 64, 2, 2)),
		neighMsg(unix.RTM_NEWNEIGH, 3, unix.NUD_FAILED, ip4b[:]),
	)
}

// cHeaderProgram compiles and runs a C program against the system's uapi
// headers (/usr/include/linux) and returns its output's lines. Without a C
// compiler it skips, or fails under KEVENT_TEST_STRICT=1, as CI sets it.
func cHeaderProgram(t *testing.T, src string) []string {
	t.Helper()
	cc, err := exec.LookPath("cc")
	if err != nil {
		if os.Getenv("KEVENT_TEST_STRICT") == "1" {
			t.Fatalf("no C compiler to read the uapi headers with: %v", err)
		}
		t.Skipf("no C compiler to read the uapi headers with: %v", err)
	}
	dir := t.TempDir()
	c, bin := filepath.Join(dir, "h.c"), filepath.Join(dir, "h")
	if err := os.WriteFile(c, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(cc, "-Wall", "-Werror", "-o", bin, c).CombinedOutput(); err != nil {
		t.Fatalf("compiling against the uapi headers: %v\n%s", err, out)
	}
	out, err := exec.Command(bin).Output()
	if err != nil {
		t.Fatalf("running the header program: %v", err)
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}

// cHeaderDatagrams reads the lines "name hex" of a header program.
func cHeaderDatagrams(t *testing.T, lines []string) map[string][]byte {
	t.Helper()
	m := make(map[string][]byte)
	for _, l := range lines {
		name, h, ok := strings.Cut(l, " ")
		if !ok {
			t.Fatalf("header program line %q", l)
		}
		b, err := hex.DecodeString(h)
		if err != nil {
			t.Fatalf("header program line %q: %v", l, err)
		}
		m[name] = b
	}
	return m
}

// cMessageHelpers build netlink messages with the headers' own macros.
const cMessageHelpers = `
#include <stdio.h>
#include <string.h>
#include <stddef.h>
#include <sys/socket.h>
#include <linux/if.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/if_link.h>
#include <linux/if_addr.h>
#include <linux/neighbour.h>

static unsigned char buf[8192] __attribute__((aligned(8)));

static void dump(const char *name, const struct nlmsghdr *n) {
	printf("%s ", name);
	for (unsigned i = 0; i < n->nlmsg_len; i++)
		printf("%02x", ((const unsigned char *)n)[i]);
	printf("\n");
}

static struct nlmsghdr *msg(int type, int flags, const void *hdr, size_t len) {
	struct nlmsghdr *n = (struct nlmsghdr *)buf;
	memset(buf, 0, sizeof(buf));
	n->nlmsg_len = NLMSG_LENGTH(len);
	n->nlmsg_type = type;
	n->nlmsg_flags = flags;
	memcpy(NLMSG_DATA(n), hdr, len);
	return n;
}

static void attr(struct nlmsghdr *n, int type, const void *data, int len) {
	struct rtattr *rta = (struct rtattr *)((char *)n + NLMSG_ALIGN(n->nlmsg_len));
	rta->rta_type = type;
	rta->rta_len = RTA_LENGTH(len);
	memcpy(RTA_DATA(rta), data, len);
	n->nlmsg_len = NLMSG_ALIGN(n->nlmsg_len) + RTA_ALIGN(rta->rta_len);
}
`

// TestRtnetlinkUAPI decodes messages that a C program builds with the
// system's uapi headers: their structs (struct ifinfomsg, ifaddrmsg,
// ifa_cacheinfo, ndmsg), their message types, attribute numbers, flags
// (NLM_F_MULTI), operational state (IF_OPER_UP) and neighbour state
// (NUD_FAILED) are the ones the decoder reads, and the dump request and
// group numbers are the headers' own.
func TestRtnetlinkUAPI(t *testing.T) {
	lines := cHeaderProgram(t, cMessageHelpers+`
int main(void) {
	struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC, .ifi_index = 7, .ifi_change = ~0U };
	unsigned char up = IF_OPER_UP, down = IF_OPER_DOWN;
	__u32 carrier = 5;
	struct nlmsghdr *n;

	n = msg(RTM_NEWLINK, 0, &ifi, sizeof(ifi));
	attr(n, IFLA_IFNAME, "kv0", 4);
	attr(n, IFLA_OPERSTATE, &up, 1);
	attr(n, IFLA_CARRIER_CHANGES, &carrier, 4);
	dump("newlink", n);

	struct ifaddrmsg ifa = { .ifa_family = AF_INET, .ifa_prefixlen = 24, .ifa_index = 7 };
	struct ifa_cacheinfo ci = { .ifa_prefered = 1, .ifa_valid = 2, .cstamp = 100, .tstamp = 100 };
	unsigned char ip[4] = { 10, 1, 2, 3 }, peer[4] = { 10, 1, 2, 4 };
	n = msg(RTM_NEWADDR, 0, &ifa, sizeof(ifa));
	attr(n, IFA_LOCAL, ip, 4);
	attr(n, IFA_ADDRESS, peer, 4);
	attr(n, IFA_CACHEINFO, &ci, sizeof(ci));
	dump("newaddr", n);
	ci.tstamp = 200;
	ip[3] = 9;
	n = msg(RTM_NEWADDR, 0, &ifa, sizeof(ifa));
	attr(n, IFA_LOCAL, ip, 4);
	attr(n, IFA_CACHEINFO, &ci, sizeof(ci));
	dump("oldaddr", n);
	n = msg(RTM_DELADDR, 0, &ifa, sizeof(ifa));
	attr(n, IFA_LOCAL, ip, 4);
	attr(n, IFA_LABEL, "kv0:1", 6);
	dump("deladdr", n);

	struct ndmsg nd = { .ndm_family = AF_INET, .ndm_ifindex = 7, .ndm_state = NUD_FAILED };
	n = msg(RTM_NEWNEIGH, 0, &nd, sizeof(nd));
	attr(n, NDA_DST, peer, 4);
	dump("newneigh", n);

	ifi.ifi_index = 8;
	ifi.ifi_change = 0;
	n = msg(RTM_NEWLINK, NLM_F_MULTI, &ifi, sizeof(ifi));
	attr(n, IFLA_IFNAME, "kv1", 4);
	attr(n, IFLA_OPERSTATE, &up, 1);
	dump("dumplink", n);
	n = msg(RTM_NEWLINK, 0, &ifi, sizeof(ifi));
	attr(n, IFLA_IFNAME, "kv1", 4);
	attr(n, IFLA_OPERSTATE, &down, 1);
	dump("newlinkdown", n);

	ifi.ifi_index = 7;
	ifi.ifi_change = ~0U;
	n = msg(RTM_DELLINK, 0, &ifi, sizeof(ifi));
	attr(n, IFLA_IFNAME, "kv0", 4);
	attr(n, IFLA_OPERSTATE, &down, 1);
	attr(n, IFLA_CARRIER_CHANGES, &carrier, 4);
	dump("dellink", n);

	struct ifinfomsg all = { .ifi_family = AF_UNSPEC };
	n = msg(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, &all, sizeof(all));
	n->nlmsg_seq = 1;
	dump("dumprequest", n);

	struct { const char *name; unsigned char oper; } opers[] = {
		{ "unknown", IF_OPER_UNKNOWN }, { "notpresent", IF_OPER_NOTPRESENT }, { "down", IF_OPER_DOWN },
		{ "lowerlayerdown", IF_OPER_LOWERLAYERDOWN }, { "testing", IF_OPER_TESTING },
		{ "dormant", IF_OPER_DORMANT }, { "up", IF_OPER_UP },
	};
	for (unsigned i = 0; i < sizeof(opers) / sizeof(opers[0]); i++) {
		char name[64];
		ifi.ifi_index = 20 + i;
		n = msg(RTM_NEWLINK, 0, &ifi, sizeof(ifi));
		attr(n, IFLA_IFNAME, "kv2", 4);
		attr(n, IFLA_OPERSTATE, &opers[i].oper, 1);
		snprintf(name, sizeof(name), "oper_%s", opers[i].name);
		dump(name, n);
	}

	struct { const char *name; unsigned group; } groups[] = {
		{ "link", RTNLGRP_LINK }, { "neigh", RTNLGRP_NEIGH },
		{ "ipv4_ifaddr", RTNLGRP_IPV4_IFADDR }, { "ipv6_ifaddr", RTNLGRP_IPV6_IFADDR },
	};
	for (unsigned i = 0; i < sizeof(groups) / sizeof(groups[0]); i++)
		printf("group_%s %08x\n", groups[i].name, groups[i].group);
	return 0;
}
`)
	m := cHeaderDatagrams(t, lines)
	for name, want := range decoder.RtnetlinkGroups {
		got, ok := m["group_"+name]
		if !ok || len(got) != 4 || uint32(got[0])<<24|uint32(got[1])<<16|uint32(got[2])<<8|uint32(got[3]) != want {
			t.Errorf("group %s: headers say %x, decoder %d", name, got, want)
		}
	}
	if got, want := decoder.RtnetlinkDumpRequest(), m["dumprequest"]; !cmp.Equal(got, want) {
		t.Errorf("dump request %x, headers build %x", got, want)
	}
	for _, oper := range []string{"unknown", "notpresent", "down", "lowerlayerdown", "testing", "dormant", "up"} {
		want := []event{{Name: "link/new", Object: "kv2", Payload: oper}}
		if oper == "up" {
			want = append(want, event{Name: "link/up", Object: "kv2", Payload: oper})
		}
		runRtSteps(t, decoder.NewRtnetlink(), []rtStep{{"a new device, " + oper, m["oper_"+oper], want, 0}})
	}
	runRtSteps(t, decoder.NewRtnetlink(), []rtStep{
		{"a new device, up", m["newlink"], []event{linkEv("link/new", "kv0", 5, "up"), linkEv("link/up", "kv0", 5, "up")}, 0},
		{"its address (IFA_LOCAL, not the peer's)", m["newaddr"], []event{{Name: "addr/new", Object: "kv0", Payload: "10.1.2.3/24"}}, 0},
		{"an address changed since its creation", m["oldaddr"], nil, 0},
		{"removed", m["deladdr"], []event{{Name: "addr/del", Object: "kv0", Payload: "10.1.2.9/24"}}, 0},
		{"a failed neighbour", m["newneigh"], []event{{Name: "neigh/failed", Object: "kv0", Payload: "10.1.2.4"}}, 0},
		{"a dump reply", m["dumplink"], nil, 0},
		{"then a notification", m["newlinkdown"], []event{{Name: "link/down", Object: "kv1", Payload: "down"}}, 0},
		{"the device goes", m["dellink"], []event{linkEv("link/down", "kv0", 5, "down"), delEv("kv0", 5, "down")}, 0},
	})
}
