package e2e_test

// A route netlink client on mdlayher/netlink, for the tests that make and
// change interfaces and addresses as iproute2 would, without needing it.

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/kevent-exporter/kevent_exporter/internal/e2e"
)

// rtnl is a route netlink socket in a namespace of the test, that makes and
// changes links and addresses as iproute2 would, without needing it.
type rtnl struct {
	t *testing.T
	c *netlink.Conn
}

const (
	vethInfoPeer = 1 // VETH_INFO_PEER
	operDown     = 2 // IF_OPER_DOWN
	operLLD      = 3 // IF_OPER_LOWERLAYERDOWN
	operUp       = 6 // IF_OPER_UP
)

func dialRtnl(t *testing.T, ns string) *rtnl {
	t.Helper()
	f, err := os.Open(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c, err := netlink.Dial(unix.NETLINK_ROUTE, &netlink.Config{NetNS: int(f.Fd())})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rtnl{t: t, c: c}
}

// do sends a request and returns the kernel's replies.
func (r *rtnl) do(typ netlink.HeaderType, flags netlink.HeaderFlags, data []byte) []netlink.Message {
	r.t.Helper()
	msgs, err := r.c.Execute(netlink.Message{Header: netlink.Header{Type: typ, Flags: netlink.Request | flags}, Data: data})
	if err != nil {
		r.t.Fatalf("route netlink request %d: %v", typ, err)
	}
	return msgs
}

// ifinfomsg builds a struct ifinfomsg followed by attributes.
func ifinfomsg(index int32, flags, change uint32, attrs func(*netlink.AttributeEncoder)) []byte {
	b := make([]byte, unix.SizeofIfInfomsg)
	binary.NativeEndian.PutUint32(b[4:8], uint32(index))
	binary.NativeEndian.PutUint32(b[8:12], flags)
	binary.NativeEndian.PutUint32(b[12:16], change)
	ae := netlink.NewAttributeEncoder()
	attrs(ae)
	a, err := ae.Encode()
	if err != nil {
		panic(err)
	}
	return append(b, a...)
}

// addVeth makes the veth pair a, b, both down.
func (r *rtnl) addVeth(a, b string) {
	r.t.Helper()
	r.addVethIn(a, b, 0, 0)
}

// addVethIn makes the veth pair a, b in group (none if 0), both down; a
// gets ifindex index unless it is 0.
func (r *rtnl) addVethIn(a, b string, index int32, group uint32) {
	r.t.Helper()
	r.do(unix.RTM_NEWLINK, netlink.Acknowledge|netlink.Create|netlink.Excl, ifinfomsg(index, 0, 0, func(ae *netlink.AttributeEncoder) {
		ae.String(unix.IFLA_IFNAME, a)
		if group != 0 {
			ae.Uint32(unix.IFLA_GROUP, group)
		}
		ae.Nested(unix.IFLA_LINKINFO, func(li *netlink.AttributeEncoder) error {
			li.String(unix.IFLA_INFO_KIND, "veth")
			li.Nested(unix.IFLA_INFO_DATA, func(d *netlink.AttributeEncoder) error {
				d.Bytes(vethInfoPeer, ifinfomsg(0, 0, 0, func(p *netlink.AttributeEncoder) {
					p.String(unix.IFLA_IFNAME, b)
					if group != 0 {
						p.Uint32(unix.IFLA_GROUP, group)
					}
				}))
				return nil
			})
			return nil
		})
	}))
}

// delGroup deletes the interfaces of group, and their veth peers, in one
// request.
func (r *rtnl) delGroup(group uint32) {
	r.t.Helper()
	r.do(unix.RTM_DELLINK, netlink.Acknowledge, ifinfomsg(0, 0, 0, func(ae *netlink.AttributeEncoder) { ae.Uint32(unix.IFLA_GROUP, group) }))
}

// rename renames link from to to.
func (r *rtnl) rename(from, to string) {
	r.t.Helper()
	index, _, _ := r.link(from)
	r.do(unix.RTM_NEWLINK, netlink.Acknowledge, ifinfomsg(index, 0, 0, func(ae *netlink.AttributeEncoder) { ae.String(unix.IFLA_IFNAME, to) }))
}

// linkState is what the kernel says of an interface: its index,
// operational state, and its own counts of carrier changes up and down.
type linkState struct {
	index    int32
	oper     uint8
	up, down uint32
}

// links dumps the namespace's interfaces by name.
func (r *rtnl) links() map[string]linkState {
	r.t.Helper()
	out := make(map[string]linkState)
	for _, m := range r.do(unix.RTM_GETLINK, netlink.Dump, make([]byte, unix.SizeofIfInfomsg)) {
		if len(m.Data) < unix.SizeofIfInfomsg {
			continue
		}
		st := linkState{index: int32(binary.NativeEndian.Uint32(m.Data[4:8]))}
		var name string
		ad, err := netlink.NewAttributeDecoder(m.Data[unix.SizeofIfInfomsg:])
		if err != nil {
			r.t.Fatal(err)
		}
		for ad.Next() {
			switch ad.Type() {
			case unix.IFLA_IFNAME:
				name = ad.String()
			case unix.IFLA_OPERSTATE:
				st.oper = ad.Uint8()
			case unix.IFLA_CARRIER_UP_COUNT:
				st.up = ad.Uint32()
			case unix.IFLA_CARRIER_DOWN_COUNT:
				st.down = ad.Uint32()
			}
		}
		out[name] = st
	}
	return out
}

// waitLinks dumps the interfaces until every one of names is in the
// namespace and ok says its state is as wanted, and returns the dump.
func (r *rtnl) waitLinks(names []string, what string, ok func(linkState) bool) map[string]linkState {
	r.t.Helper()
	var all map[string]linkState
	n := 0
	e2e.Eventually(r.t, fmt.Sprintf("%d interfaces %s", len(names), what), func() bool {
		all, n = r.links(), 0
		for _, name := range names {
			if st, there := all[name]; there && ok(st) {
				n++
			}
		}
		return n == len(names)
	}, e2e.Lazy(func() string { return fmt.Sprintf("%d of them are", n) }))
	return all
}

// setAll sets the interfaces names up or down.
func (r *rtnl) setAll(names []string, up bool) {
	r.t.Helper()
	for _, n := range names {
		r.setUp(n, up)
	}
}

// setUp sets link name up or down.
func (r *rtnl) setUp(name string, up bool) {
	r.t.Helper()
	var flags uint32
	if up {
		flags = unix.IFF_UP
	}
	r.do(unix.RTM_NEWLINK, netlink.Acknowledge, ifinfomsg(0, flags, unix.IFF_UP, func(ae *netlink.AttributeEncoder) { ae.String(unix.IFLA_IFNAME, name) }))
}

// delLink deletes link name (and a veth's peer with it).
func (r *rtnl) delLink(name string) {
	r.t.Helper()
	r.do(unix.RTM_DELLINK, netlink.Acknowledge, ifinfomsg(0, 0, 0, func(ae *netlink.AttributeEncoder) { ae.String(unix.IFLA_IFNAME, name) }))
}

// link returns link name's index, operational state and carrier changes.
func (r *rtnl) link(name string) (index int32, oper uint8, carrier uint32) {
	r.t.Helper()
	msgs := r.do(unix.RTM_GETLINK, 0, ifinfomsg(0, 0, 0, func(ae *netlink.AttributeEncoder) { ae.String(unix.IFLA_IFNAME, name) }))
	if len(msgs) != 1 || len(msgs[0].Data) < unix.SizeofIfInfomsg {
		r.t.Fatalf("RTM_GETLINK %s: %d replies", name, len(msgs))
	}
	index = int32(binary.NativeEndian.Uint32(msgs[0].Data[4:8]))
	ad, err := netlink.NewAttributeDecoder(msgs[0].Data[unix.SizeofIfInfomsg:])
	if err != nil {
		r.t.Fatal(err)
	}
	for ad.Next() {
		switch ad.Type() {
		case unix.IFLA_OPERSTATE:
			oper = ad.Uint8()
		case unix.IFLA_CARRIER_CHANGES:
			carrier = ad.Uint32()
		}
	}
	return index, oper, carrier
}

// waitOper polls until link name's operational state is want. The kernel
// sets it (in its link watch work) and then notifies it, both holding
// RTNL, which the test's next change waits for: so each transition the
// test waits for is notified before the next begins. It spins rather than
// wait as e2e.Eventually does, which would make the 24 000 transitions of
// TestRtnetlinkFlapStorm take minutes.
func (r *rtnl) waitOper(name string, want uint8) {
	r.t.Helper()
	deadline := time.Now().Add(e2e.Timeout)
	for {
		if _, oper, _ := r.link(name); oper == want {
			return
		} else if time.Now().After(deadline) {
			r.t.Fatalf("%s: operational state %d, want %d after %v", name, oper, want, e2e.Timeout)
		}
	}
}

// flap sets a down and up again, waiting for both ends of its veth pair
// to follow: two transitions of each.
func (r *rtnl) flap(a, b string) {
	r.t.Helper()
	r.setUp(a, false)
	r.waitOper(a, operDown)
	r.waitOper(b, operLLD)
	r.setUp(a, true)
	r.waitOper(a, operUp)
	r.waitOper(b, operUp)
}

// addr adds (RTM_NEWADDR) or removes (RTM_DELADDR) address p on link index.
func (r *rtnl) addr(typ netlink.HeaderType, index int32, p netip.Prefix) {
	r.t.Helper()
	family := uint8(unix.AF_INET)
	if p.Addr().Is6() {
		family = unix.AF_INET6
	}
	b := binary.NativeEndian.AppendUint32([]byte{family, uint8(p.Bits()), 0, 0}, uint32(index))
	ae := netlink.NewAttributeEncoder()
	ae.Bytes(unix.IFA_LOCAL, p.Addr().AsSlice())
	ae.Bytes(unix.IFA_ADDRESS, p.Addr().AsSlice())
	a, err := ae.Encode()
	if err != nil {
		r.t.Fatal(err)
	}
	flags := netlink.Acknowledge
	if typ == unix.RTM_NEWADDR {
		flags |= netlink.Create | netlink.Excl
	}
	r.do(typ, flags, append(b, a...))
}

// tentative reports whether IPv6 address ip is still tentative (duplicate
// address detection is running).
func (r *rtnl) tentative(ip netip.Addr) bool {
	r.t.Helper()
	for _, m := range r.do(unix.RTM_GETADDR, netlink.Dump, []byte{unix.AF_INET6, 0, 0, 0, 0, 0, 0, 0}) {
		if a, flags := ifaddr(r.t, m); a == ip {
			return flags&unix.IFA_F_TENTATIVE != 0
		}
	}
	r.t.Fatalf("address %s not found", ip)
	return false
}

// ifaddr returns the address and flags of an RTM_NEWADDR or RTM_DELADDR.
func ifaddr(t *testing.T, m netlink.Message) (netip.Addr, uint32) {
	t.Helper()
	if len(m.Data) < unix.SizeofIfAddrmsg {
		return netip.Addr{}, 0
	}
	flags := uint32(m.Data[2])
	var a netip.Addr
	ad, err := netlink.NewAttributeDecoder(m.Data[unix.SizeofIfAddrmsg:])
	if err != nil {
		t.Fatal(err)
	}
	for ad.Next() {
		switch ad.Type() {
		case unix.IFA_ADDRESS:
			a, _ = netip.AddrFromSlice(ad.Bytes())
		case unix.IFA_FLAGS:
			flags = ad.Uint32()
		}
	}
	return a, flags
}
