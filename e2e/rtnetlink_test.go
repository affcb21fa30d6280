package e2e_test

// Tests of the decoders of the kernel's own event streams against the host
// kernel: rtnetlink against veth pairs in network namespaces that each test
// makes, and proc against the process events connector, which exists in
// the initial network namespace only.

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mdlayher/netlink"
	dto "github.com/prometheus/client_model/go"
	"golang.org/x/sys/unix"

	"github.com/kevent-exporter/kevent_exporter/internal/e2e"
	"github.com/kevent-exporter/kevent_exporter/internal/testenv"
)

// procHelperEnv makes the test binary a child process for the proc tests,
// before the tests' TestMain runs: "exit77" exits with status 77, "wait"
// says "ready" and waits to be killed. Both run four threads, so that the
// kernel reports a process's exit and three threads'.
const procHelperEnv = "KEVENT_TEST_PROC_HELPER"

func init() {
	switch os.Getenv(procHelperEnv) {
	case "exit77":
		procHelperThreads()
		os.Exit(77)
	case "wait":
		procHelperThreads()
		fmt.Println("ready")
		time.Sleep(time.Hour)
		os.Exit(1)
	}
}

// procHelperThreads starts three more OS threads.
func procHelperThreads() {
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			runtime.LockOSThread()
			wg.Done()
			time.Sleep(time.Hour)
		}()
	}
	wg.Wait()
}

// inNetns runs f on an OS thread in the network namespace at path. The
// thread is never unlocked: it ends with its goroutine rather than take the
// namespace to others.
func inNetns(path string, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		ns, err := os.Open(path)
		if err != nil {
			errc <- err
			return
		}
		defer ns.Close()
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("entering %s: %w", path, err)
			return
		}
		errc <- f()
	}()
	return <-errc
}

// newNetns makes a network namespace for the test, held by a sleeping
// child, with lo up (the exporter serves on 127.0.0.1 there), and IPv6
// addresses generated for no interface, so that the test's addresses are
// the namespace's only ones. It returns the namespace's path.
func newNetns(t *testing.T) string {
	t.Helper()
	cmd := exec.Command("sleep", "infinity")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWNET}
	if err := cmd.Start(); err != nil {
		t.Fatalf("making a network namespace: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	path := fmt.Sprintf("/proc/%d/ns/net", cmd.Process.Pid)
	if err := inNetns(path, func() error { return testenv.LinkUp("lo") }); err != nil {
		t.Fatal(err)
	}
	// IN6_ADDR_GEN_MODE_NONE: no link-local address on new interfaces.
	sysctlIn(t, path, "net/ipv6/conf/default/addr_gen_mode", "1")
	return path
}

// sysctlIn sets a network sysctl (a path under /proc/sys) of the namespace
// at ns, which those files show the namespace of the thread that opens them.
func sysctlIn(t *testing.T, ns, key, value string) {
	t.Helper()
	if err := inNetns(ns, func() error { return os.WriteFile("/proc/sys/"+key, []byte(value), 0o644) }); err != nil {
		t.Fatal(err)
	}
}

// startExporterIn runs an exporter in the network namespace at ns, with
// more nsenter options (--setuid) in cred.
func startExporterIn(t *testing.T, ns, config string, cred ...string) *e2e.Exporter {
	t.Helper()
	testenv.RequireRoot(t, "entering network namespaces")
	wrapper := append([]string{"nsenter", "--net=" + ns}, cred...)
	return e2e.Start(t, e2e.Options{Binary: exporterBinary, Config: config, Wrapper: append(wrapper, "--"), Netns: ns})
}

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
	r.do(unix.RTM_NEWLINK, netlink.Acknowledge|netlink.Create|netlink.Excl, ifinfomsg(0, 0, 0, func(ae *netlink.AttributeEncoder) {
		ae.String(unix.IFLA_IFNAME, a)
		ae.Nested(unix.IFLA_LINKINFO, func(li *netlink.AttributeEncoder) error {
			li.String(unix.IFLA_INFO_KIND, "veth")
			li.Nested(unix.IFLA_INFO_DATA, func(d *netlink.AttributeEncoder) error {
				d.Bytes(vethInfoPeer, ifinfomsg(0, 0, 0, func(p *netlink.AttributeEncoder) { p.String(unix.IFLA_IFNAME, b) }))
				return nil
			})
			return nil
		})
	}))
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
// test waits for is notified before the next begins.
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

// eventCounts returns a source's kevent_events_total by "event object".
func eventCounts(mfs map[string]*dto.MetricFamily, source string) map[string]float64 {
	counts := make(map[string]float64)
	for _, m := range mfs["kevent_events_total"].GetMetric() {
		l := make(map[string]string)
		for _, lp := range m.GetLabel() {
			l[lp.GetName()] = lp.GetValue()
		}
		if l["source"] == source {
			counts[l["event"]+" "+l["object"]] = m.GetCounter().GetValue()
		}
	}
	return counts
}

// checkCounts compares a source's every kevent_events_total series with
// want, and its decode errors and lost datagrams with zero.
func checkCounts(t *testing.T, e *e2e.Exporter, source string, want map[string]float64) {
	t.Helper()
	mfs := e.Scrape(t)
	got := eventCounts(mfs, source)
	for k := range got {
		if _, ok := want[k]; !ok {
			want[k] = 0
		}
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("source %s: kevent_events_total{event, object = %s} = %v, want %v", source, k, got[k], w)
		}
	}
	for _, name := range []string{"kevent_decode_errors_total", "kevent_datagrams_lost_total"} {
		if v, ok := e2e.Value(mfs, name, "source", source); !ok || v != 0 {
			t.Errorf("%s{source=%s} = %v (present %v), want 0", name, source, v, ok)
		}
	}
}

const linksConfig = `
sources:
  - name: links
    protocol: route
    groups: [link, neigh, ipv4_ifaddr, ipv6_ifaddr]
    decoder: rtnetlink
`

// TestRtnetlinkVeth: a veth pair in a network namespace of the test, set
// down and up n times, gives exactly n link/down and n+1 link/up for each
// end (the first up included), each about the interface by name; its
// creation and deletion give link/new and link/del, an IPv4 and an IPv6
// address added and removed give addr/new and addr/del once each (though
// the kernel announces the IPv6 address twice, before and after duplicate
// address detection), and a neighbour that does not answer gives
// neigh/failed. An exporter in another namespace sees none of it, and the
// first sees nothing of the other's, which runs as nobody.
func TestRtnetlinkVeth(t *testing.T) {
	t.Parallel()
	testenv.RequireRoot(t, "making network namespaces and veth pairs")
	ns, other := newNetns(t), newNetns(t)
	e := startExporterIn(t, ns, linksConfig)
	// rtnetlink's kernel socket lets anyone listen: the other exporter
	// runs as nobody, as root where a probe finds otherwise.
	cred := []string{"--setuid=65534", "--setgid=65534"}
	if err := testenv.JoinAsNobody(t, other, unix.NETLINK_ROUTE, unix.RTNLGRP_LINK); err != nil {
		t.Logf("uid 65534 may not join rtnetlink's link group (%v): the other exporter runs as root", err)
		cred = nil
	}
	eo := startExporterIn(t, other, linksConfig, cred...)
	e.WaitFor(t, 1, "kevent_source_up", "source", "links")
	eo.WaitFor(t, 1, "kevent_source_up", "source", "links")
	if uid := processUID(t, eo.Cmd.Process.Pid); cred != nil && uid != "65534" {
		t.Fatalf("exporter runs as uid %s, want 65534", uid)
	}
	// A listener of the test's own counts the kernel's IPv6 announcements.
	announced := ipv6Announcements(t, ns)

	r := dialRtnl(t, ns)
	r.addVeth("kvA", "kvB")
	r.setUp("kvB", true)
	r.waitOper("kvB", operLLD)
	r.setUp("kvA", true)
	r.waitOper("kvA", operUp)
	r.waitOper("kvB", operUp)
	const n = 5
	for range n {
		r.flap("kvA", "kvB")
	}
	for _, end := range []string{"kvA", "kvB"} {
		e.WaitFor(t, n, "kevent_events_total", "source", "links", "event", "link/down", "object", end)
		e.WaitFor(t, n+1, "kevent_events_total", "source", "links", "event", "link/up", "object", end)
	}
	e.WaitFor(t, 1, "kevent_event_last_payload_info", "source", "links", "event", "link/down", "object", "kvB", "payload", "lowerlayerdown")
	_, _, carrier := r.link("kvA")
	e.WaitFor(t, float64(carrier), "kevent_event_last_value", "source", "links", "event", "link/up", "object", "kvA")

	// Addresses, and a neighbour that never answers: kvB has no address,
	// and kvA gives up on ARP after 3 probes 10 ms apart.
	index, _, _ := r.link("kvA")
	sysctlIn(t, ns, "net/ipv4/neigh/kvA/retrans_time_ms", "10")
	v4, v6 := netip.MustParsePrefix("10.9.0.1/24"), netip.MustParsePrefix("2001:db8::1/64")
	r.addr(unix.RTM_NEWADDR, index, v4)
	e.WaitFor(t, 1, "kevent_event_last_payload_info", "source", "links", "event", "addr/new", "object", "kvA", "payload", "10.9.0.1/24")
	if err := inNetns(ns, func() error {
		c, err := net.Dial("udp4", "10.9.0.2:9")
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write([]byte("anyone?"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	e.WaitFor(t, 1, "kevent_event_last_payload_info", "source", "links", "event", "neigh/failed", "object", "kvA", "payload", "10.9.0.2")
	r.addr(unix.RTM_NEWADDR, index, v6)
	e2e.Eventually(t, "duplicate address detection ends", func() bool { return !r.tentative(v6.Addr()) })
	r.addr(unix.RTM_DELADDR, index, v6)
	r.addr(unix.RTM_DELADDR, index, v4)
	e.WaitFor(t, 2, "kevent_events_total", "source", "links", "event", "addr/del", "object", "kvA")
	if got := announced(v6.Addr()); got < 2 {
		t.Errorf("the kernel announced the IPv6 address %d times, want at least 2 (tentative, then after duplicate address detection): the test does not show the decoder counts it once", got)
	}

	// The other namespace's own pair, made before and deleted after the
	// first pair's deletion, so that each exporter has seen the other's
	// events, had it received them, by the time its last event arrives.
	ro := dialRtnl(t, other)
	ro.addVeth("kvX", "kvY")
	r.delLink("kvA")
	ro.delLink("kvX")
	e.WaitFor(t, 1, "kevent_events_total", "source", "links", "event", "link/del", "object", "kvB")
	eo.WaitFor(t, 1, "kevent_events_total", "source", "links", "event", "link/del", "object", "kvY")
	checkCounts(t, e, "links", map[string]float64{
		"link/new kvA": 1, "link/new kvB": 1,
		"link/up kvA": n + 1, "link/up kvB": n + 1,
		// The deletion closes both ends first.
		"link/down kvA": n + 1, "link/down kvB": n + 1,
		"link/del kvA": 1, "link/del kvB": 1,
		"addr/new kvA": 2, "addr/del kvA": 2,
		"neigh/failed kvA": 1,
	})
	checkCounts(t, eo, "links", map[string]float64{
		"link/new kvX": 1, "link/new kvY": 1, "link/del kvX": 1, "link/del kvY": 1,
	})
}

// ipv6Announcements subscribes to the IPv6 address notifications of
// namespace ns. The function it returns reads them, in the kernel's order,
// up to the deletion of address ip, and returns how many times the kernel
// announced ip (RTM_NEWADDR) before: a count that does not depend on when
// the test asks for it.
func ipv6Announcements(t *testing.T, ns string) func(ip netip.Addr) int {
	t.Helper()
	f, err := os.Open(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c, err := netlink.Dial(unix.NETLINK_ROUTE, &netlink.Config{NetNS: int(f.Fd()), Groups: 1 << (unix.RTNLGRP_IPV6_IFADDR - 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return func(ip netip.Addr) int {
		t.Helper()
		if err := c.SetReadDeadline(time.Now().Add(e2e.Timeout)); err != nil {
			t.Fatal(err)
		}
		n := 0
		for {
			msgs, err := c.Receive()
			if err != nil {
				t.Fatalf("reading the kernel's IPv6 address notifications up to the deletion of %s (%d announcements so far): %v", ip, n, err)
			}
			for _, m := range msgs {
				if a, _ := ifaddr(t, m); a != ip {
					continue
				}
				switch m.Header.Type {
				case unix.RTM_NEWADDR:
					n++
				case unix.RTM_DELADDR:
					return n
				}
			}
		}
	}
}

// linkCounters are what one exporter says of one end of the storm's pair.
type linkCounters struct {
	up, down, carrier float64
}

// stormCounters scrapes an exporter for the storm's identity.
func stormCounters(t *testing.T, e *e2e.Exporter, ends ...string) (counters map[string]linkCounters, received, lost float64) {
	t.Helper()
	mfs := e.Scrape(t)
	counters = make(map[string]linkCounters)
	for _, end := range ends {
		var c linkCounters
		c.up, _ = e2e.Value(mfs, "kevent_events_total", "source", "links", "event", "link/up", "object", end)
		c.down, _ = e2e.Value(mfs, "kevent_events_total", "source", "links", "event", "link/down", "object", end)
		// The carrier count of the last transition seen: the storm's
		// last transitions are ups, and the counts only grow.
		u, _ := e2e.Value(mfs, "kevent_event_last_value", "source", "links", "event", "link/up", "object", end)
		d, _ := e2e.Value(mfs, "kevent_event_last_value", "source", "links", "event", "link/down", "object", end)
		c.carrier = max(u, d)
		counters[end] = c
	}
	received, _ = e2e.Value(mfs, "kevent_datagrams_received_total", "source", "links")
	lost, _ = e2e.Value(mfs, "kevent_datagrams_lost_total", "source", "links")
	return counters, received, lost
}

// TestRtnetlinkFlapStorm flaps a veth pair 6000 times (24 000 transitions
// of the two ends) in a namespace of its own, watched by two exporters: a
// reference one with a 64 MiB receive buffer, and one with a small buffer
// that is stopped (SIGSTOP) for most of the storm, so that the kernel drops
// most of what it sends it.
//
// The reference loses nothing and counts every transition: for each end,
// link/up + link/down == transitions made. The lossy one accounts for
// every datagram the kernel sent (received + lost == what the reference
// received) and for every transition: transitions seen (its events) plus
// transitions hidden by lost datagrams == transitions made, where the
// hidden ones are what the carrier change count it exports (the events'
// value) moved by beyond what it saw; each lost datagram hides at most two
// transitions (itself and the one its loss makes look like no change).
func TestRtnetlinkFlapStorm(t *testing.T) {
	t.Parallel()
	testenv.RequireRoot(t, "making network namespaces and veth pairs")
	ns := newNetns(t)
	const cfg = `
sources:
  - name: links
    protocol: route
    groups: [link]
    decoder: rtnetlink
    receive_buffer_bytes: %d
`
	ref := startExporterIn(t, ns, fmt.Sprintf(cfg, 64<<20))
	lossy := startExporterIn(t, ns, fmt.Sprintf(cfg, 16<<10))
	ref.WaitFor(t, 1, "kevent_source_up", "source", "links")
	lossy.WaitFor(t, 1, "kevent_source_up", "source", "links")

	const a, b = "kfA", "kfB"
	r := dialRtnl(t, ns)
	r.addVeth(a, b)
	r.setUp(b, true)
	r.setUp(a, true)
	r.waitOper(a, operUp)
	r.waitOper(b, operUp)
	for _, e := range []*e2e.Exporter{ref, lossy} {
		for _, end := range []string{a, b} {
			e.WaitFor(t, 1, "kevent_events_total", "source", "links", "event", "link/up", "object", end)
		}
	}
	ref0, refRecv0, _ := stormCounters(t, ref, a, b)
	lossy0, lossyRecv0, lossyLost0 := stormCounters(t, lossy, a, b)

	const before, stopped, after = 1000, 4000, 1000
	cycles := 0
	start := time.Now()
	for range before {
		r.flap(a, b)
		cycles++
	}
	lossy.Signal(t, syscall.SIGSTOP)
	for range stopped {
		r.flap(a, b)
		cycles++
	}
	lossy.Signal(t, syscall.SIGCONT)
	for range after {
		r.flap(a, b)
		cycles++
	}
	storm := time.Since(start)

	// The reference sees every transition.
	made := float64(2 * cycles)
	for _, end := range []string{a, b} {
		ref.WaitFor(t, ref0[end].up+made/2, "kevent_events_total", "source", "links", "event", "link/up", "object", end)
		ref.WaitFor(t, ref0[end].down+made/2, "kevent_events_total", "source", "links", "event", "link/down", "object", end)
	}
	_, refRecv, refLost := stormCounters(t, ref, a, b)
	if refLost != 0 {
		t.Fatalf("the reference exporter lost %v datagrams", refLost)
	}
	// Slow cycles until the lossy exporter has every datagram the kernel
	// sent it accounted for and has seen the last transition, so that the
	// carrier count it exports is the kernel's.
	var lossyEnds map[string]linkCounters
	var lossyRecv, lossyLost float64
	for try := 0; ; try++ {
		e2e.Eventually(t, "the lossy exporter accounts for what the reference received", func() bool {
			_, refRecv, _ = stormCounters(t, ref, a, b)
			lossyEnds, lossyRecv, lossyLost = stormCounters(t, lossy, a, b)
			return lossyRecv-lossyRecv0+lossyLost-lossyLost0 == refRecv-refRecv0
		})
		_, _, ca := r.link(a)
		_, _, cb := r.link(b)
		if lossyEnds[a].carrier == float64(ca) && lossyEnds[b].carrier == float64(cb) {
			break
		}
		if try == 10 {
			t.Fatalf("after %d slow cycles the lossy exporter's carrier counts are %v, the kernel's %d and %d", try, lossyEnds, ca, cb)
		}
		r.flap(a, b)
		cycles++
		made += 2
	}
	refEnds, refRecv, _ := stormCounters(t, ref, a, b)

	var hidden, seen float64
	for _, end := range []string{a, b} {
		rs := refEnds[end].up - ref0[end].up + refEnds[end].down - ref0[end].down
		if rs != made {
			t.Errorf("%s: the reference saw %v transitions, %v were made", end, rs, made)
		}
		if d := refEnds[end].carrier - ref0[end].carrier; d != made {
			t.Errorf("%s: the kernel counted %v carrier changes, the test made %v transitions", end, d, made)
		}
		s := lossyEnds[end].up - lossy0[end].up + lossyEnds[end].down - lossy0[end].down
		h := lossyEnds[end].carrier - lossy0[end].carrier - s
		if s+h != made || h < 0 {
			t.Errorf("%s: the lossy exporter saw %v transitions and the carrier count shows %v hidden: %v, want %v made", end, s, h, s+h, made)
		}
		seen += s
		hidden += h
	}
	lost := lossyLost - lossyLost0
	received := lossyRecv - lossyRecv0
	t.Logf("%d cycles (%v transitions of both ends) in %v; the kernel sent each exporter %v datagrams; the lossy one received %v and lost %v; it saw %v transitions, %v hidden",
		cycles, 2*made, storm.Round(time.Millisecond), refRecv-refRecv0, received, lost, seen, hidden)
	if 2*made < 20000 {
		t.Errorf("%v transitions made, want at least 20000", 2*made)
	}
	switch {
	case lost == 0 || hidden == 0:
		t.Errorf("the stopped exporter lost %v datagrams, hiding %v transitions: the storm did not test loss", lost, hidden)
	case hidden > 2*lost:
		t.Errorf("%v transitions hidden by %v lost datagrams: each hides at most two", hidden, lost)
	}
}

// procGroup is the connector's group of process events, CN_IDX_PROC.
const procGroup = 1

// procConfig is the proc source of the tests.
const procConfig = `
sources:
  - name: procs
    protocol: connector
    groups: [1]
    decoder: proc
`

// procExit is an exit of a thread group leader (a process) as an
// independent listener of the test reads it.
type procExit struct {
	pid  uint32
	code uint32
}

// procName names an exit as the proc decoder must, for the exits the test
// makes: exit/77, signal/SIGKILL, and SIGQUIT with or without a core.
func procName(code uint32) string {
	switch code & 0xffff {
	case 77 << 8:
		return "exit/77"
	case uint32(unix.SIGKILL):
		return "signal/SIGKILL"
	case uint32(unix.SIGQUIT):
		return "signal/SIGQUIT"
	case 0x80 | uint32(unix.SIGQUIT):
		return "coredump/SIGQUIT"
	}
	return ""
}

// procListener is the test's own subscription to the process events
// connector, in the initial network namespace, with a large buffer: it
// records every process's exit, in the order the kernel multicast them,
// which is the order every subscriber receives them in.
type procListener struct {
	fd int

	mu       sync.Mutex
	exits    []procExit
	threads  map[uint32]int // thread exits by process
	overflow bool
	done     chan struct{}
}

func listenProc(t *testing.T) *procListener {
	t.Helper()
	l := &procListener{threads: make(map[uint32]int), done: make(chan struct{})}
	err := inNetns(testenv.HostNetns(), func() error {
		fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_CONNECTOR)
		if err != nil {
			return err
		}
		l.fd = fd
		if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: 1}); err != nil {
			return fmt.Errorf("joining CN_IDX_PROC: %w", err)
		}
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 64<<20); err != nil {
			return err
		}
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: 100000}); err != nil {
			return err
		}
		// PROC_CN_MCAST_LISTEN, then (on 6.6 and later) exits only.
		for i, op := range [][]byte{{1, 0, 0, 0}, {1, 0, 0, 0, 0, 0, 0, 0x80}} {
			c := make([]byte, 36, 36+len(op))
			binary.NativeEndian.PutUint32(c[0:4], uint32(36+len(op)))
			binary.NativeEndian.PutUint16(c[4:6], unix.NLMSG_DONE)
			binary.NativeEndian.PutUint32(c[16:20], 1) // CN_IDX_PROC
			binary.NativeEndian.PutUint32(c[20:24], 1) // CN_VAL_PROC
			binary.NativeEndian.PutUint32(c[24:28], uint32(100+i))
			binary.NativeEndian.PutUint16(c[32:34], uint16(len(op)))
			if err := unix.Sendto(fd, append(c, op...), 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		if l.fd > 0 {
			unix.Close(l.fd)
		}
		t.Fatalf("listening to process events: %v", err)
	}
	stop := make(chan struct{})
	go l.read(stop)
	t.Cleanup(func() {
		close(stop)
		<-l.done
		unix.Close(l.fd)
	})
	return l
}

func (l *procListener) read(stop chan struct{}) {
	defer close(l.done)
	buf := make([]byte, 1<<16)
	for {
		select {
		case <-stop:
			return
		default:
		}
		n, _, err := unix.Recvfrom(l.fd, buf, 0)
		switch {
		case err == unix.ENOBUFS:
			l.mu.Lock()
			l.overflow = true
			l.mu.Unlock()
			continue
		case err != nil:
			continue
		}
		// nlmsghdr, cn_msg, then struct proc_event: what at 0, the exit's
		// pid, tgid and exit_code at 16, 20 and 24.
		if n < 36+28 || binary.NativeEndian.Uint32(buf[36:40]) != 0x80000000 {
			continue
		}
		pid, tgid, code := binary.NativeEndian.Uint32(buf[52:56]), binary.NativeEndian.Uint32(buf[56:60]), binary.NativeEndian.Uint32(buf[60:64])
		l.mu.Lock()
		if pid == tgid {
			l.exits = append(l.exits, procExit{pid: pid, code: code})
		} else {
			l.threads[tgid]++
		}
		l.mu.Unlock()
	}
}

// position returns the index of the last exit named name of process pid,
// or -1.
func (l *procListener) position(name string, pid uint32) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := len(l.exits) - 1; i >= 0; i-- {
		if x := l.exits[i]; x.pid == pid && procName(x.code) == name {
			return i
		}
	}
	return -1
}

// between returns the pids of the exits named name after position from, up
// to and including position to.
func (l *procListener) between(name string, from, to int) []uint32 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var pids []uint32
	for _, x := range l.exits[from+1 : to+1] {
		if procName(x.code) == name {
			pids = append(pids, x.pid)
		}
	}
	return pids
}

// nameOf waits until the listener has seen process pid exit, and returns
// the exit's name.
func (l *procListener) nameOf(t *testing.T, pid uint32) string {
	t.Helper()
	var name string
	e2e.Eventually(t, fmt.Sprintf("the test's listener sees process %d exit", pid), func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		for _, x := range l.exits {
			if x.pid == pid {
				name = procName(x.code)
				return true
			}
		}
		return false
	})
	return name
}

// procChild runs the test binary as a helper (procHelperEnv) and returns
// it running.
func procChild(t *testing.T, mode string) *exec.Cmd {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), procHelperEnv+"="+mode)
	return cmd
}

// exit77 runs a helper that exits with status 77 and returns its pid.
func exit77(t *testing.T) uint32 {
	t.Helper()
	cmd := procChild(t, "exit77")
	err := cmd.Run()
	if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 77 {
		t.Fatalf("helper exited with %v, want status 77", err)
	}
	return uint32(cmd.Process.Pid)
}

// killed runs a helper, kills it with SIGKILL once its threads run, and
// returns its pid.
func killed(t *testing.T) uint32 {
	t.Helper()
	cmd := procChild(t, "wait")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if line, err := bufio.NewReader(out).ReadString('\n'); line != "ready\n" {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("helper said %q (%v), want ready", line, err)
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("helper ended with %v, want SIGKILL", cmd.ProcessState)
	}
	return uint32(cmd.Process.Pid)
}

// quit runs sleep in dir with no limit on core dumps and ends it with
// SIGQUIT, whose default action dumps core (where the kernel's core_pattern
// lets it), and returns its pid.
func quit(t *testing.T, dir string) uint32 {
	t.Helper()
	cmd := exec.Command("sleep", "1000")
	cmd.Dir = dir
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	unlimited := unix.Rlimit{Cur: unix.RLIM_INFINITY, Max: unix.RLIM_INFINITY}
	if err := unix.Prlimit(cmd.Process.Pid, unix.RLIMIT_CORE, &unlimited, nil); err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatal(err)
	}
	_ = cmd.Process.Signal(syscall.SIGQUIT)
	_ = cmd.Wait()
	return uint32(cmd.Process.Pid)
}

// procScrape returns the proc source's count and last value (a pid) of
// each event named.
func procScrape(t *testing.T, e *e2e.Exporter, names []string) (counts map[string]float64, last map[string]uint32) {
	t.Helper()
	mfs := e.Scrape(t)
	counts, last = make(map[string]float64), make(map[string]uint32)
	for _, name := range names {
		counts[name], _ = e2e.Value(mfs, "kevent_events_total", "source", "procs", "event", name, "object", "")
		v, _ := e2e.Value(mfs, "kevent_event_last_value", "source", "procs", "event", name, "object", "")
		last[name] = uint32(v)
	}
	return counts, last
}

// caughtUp waits until, for each name, the last exit of that name the
// exporter counted is, in the listener's order, at or after the exit of
// process pids[name], and returns the exporter's counts and the listener's
// positions of those last exits (read in one scrape: the collector reads a
// source's counts and values under one lock).
func caughtUp(t *testing.T, e *e2e.Exporter, l *procListener, pids map[string]uint32) (map[string]float64, map[string]int) {
	t.Helper()
	names := slices.Sorted(maps.Keys(pids))
	var counts map[string]float64
	pos := make(map[string]int)
	e2e.Eventually(t, fmt.Sprintf("the exporter counts the exits of %v", pids), func() bool {
		var last map[string]uint32
		counts, last = procScrape(t, e, names)
		for _, n := range names {
			want := l.position(n, pids[n])
			if want < 0 {
				return false
			}
			p := l.position(n, last[n])
			if p < want {
				return false
			}
			pos[n] = p
		}
		return true
	})
	return counts, pos
}

// TestProcExits runs an exporter with a proc source in the initial network
// namespace (the connector's only one), as root and as uid 65534, and
// counts exactly the exits of n multi-threaded processes that exit with
// status 77, n that are killed with SIGKILL, and 2 that end with SIGQUIT
// (with a core dump where core_pattern allows one). Other processes of the
// machine may end alike meanwhile: a listener of the test's own, started
// before the exporter, records every process's exit in the kernel's order;
// the exporter's last value of each event (the pid) places its count in
// that order, so that the test knows exactly which exits, the test's and
// others', the exporter must have counted between two scrapes. Threads'
// exits, which the listener sees too, must not count.
//
// Whether uid 65534 may join the connector's group depends on the kernel's
// build, not on its version alone: a probe tries it, and where the kernel
// refuses, the exporter run as uid 65534 must have the source down and say
// why instead.
func TestProcExits(t *testing.T) {
	t.Parallel()
	testenv.RequireRoot(t, "entering the initial network namespace")
	t.Run("root", func(t *testing.T) { testProcExits(t, nil) })
	t.Run("nobody", func(t *testing.T) {
		cred := []string{"--setuid=65534", "--setgid=65534"}
		probed := testenv.JoinAsNobody(t, testenv.HostNetns(), unix.NETLINK_CONNECTOR, procGroup)
		if probed == nil {
			t.Log("this kernel lets uid 65534 join the connector's group: the exits are counted")
			testProcExits(t, cred)
			return
		}
		t.Logf("this kernel does not let uid 65534 join the connector's group (%v): the source is down, saying why", probed)
		e := startExporterIn(t, testenv.HostNetns(), procConfig, cred...)
		e.WantAsProbed(t, "procs", procGroup, probed)
	})
}

func testProcExits(t *testing.T, cred []string) {
	l := listenProc(t)
	e := startExporterIn(t, testenv.HostNetns(), procConfig, cred...)
	e.WaitFor(t, 1, "kevent_source_up", "source", "procs")
	if cred != nil {
		if uid := processUID(t, e.Cmd.Process.Pid); uid != "65534" {
			t.Fatalf("exporter runs as uid %s, want 65534", uid)
		}
	}
	dir := t.TempDir()

	// Anchors: one exit of each kind, which the exporter has counted
	// when the first scrape is taken.
	anchors := map[string]uint32{"exit/77": exit77(t), "signal/SIGKILL": killed(t)}
	q := quit(t, dir)
	quitName := l.nameOf(t, q)
	if quitName == "" {
		t.Fatalf("sleep killed with SIGQUIT did not exit by SIGQUIT")
	}
	anchors[quitName] = q
	if pattern, _ := os.ReadFile("/proc/sys/kernel/core_pattern"); strings.TrimSpace(string(pattern)) == "core" && quitName != "coredump/SIGQUIT" {
		t.Errorf("core_pattern is core and sleep ran without a core limit in a writable directory, but its SIGQUIT exit is %s", quitName)
	}
	counts0, pos0 := caughtUp(t, e, l, anchors)

	const n = 5
	ours := make(map[string][]uint32)
	for range n {
		ours["exit/77"] = append(ours["exit/77"], exit77(t))
		ours["signal/SIGKILL"] = append(ours["signal/SIGKILL"], killed(t))
	}
	for range 2 {
		ours[quitName] = append(ours[quitName], quit(t, dir))
	}
	lasts := make(map[string]uint32)
	for name, pids := range ours {
		lasts[name] = pids[len(pids)-1]
	}
	counts1, pos1 := caughtUp(t, e, l, lasts)

	for name, pids := range ours {
		want := l.between(name, pos0[name], pos1[name])
		for _, p := range pids {
			if !slices.Contains(want, p) {
				t.Errorf("%s: the listener did not see process %d among the exits %v", name, p, want)
			}
		}
		if got := counts1[name] - counts0[name]; got != float64(len(want)) {
			t.Errorf("%s: the exporter counted %v, the kernel sent %d (the test's %d and %d others)", name, got, len(want), len(pids), len(want)-len(pids))
		} else {
			t.Logf("%s: counted %v (the test's %d and %d others)", name, got, len(pids), len(want)-len(pids))
		}
	}
	l.mu.Lock()
	for _, p := range ours["exit/77"] {
		if l.threads[p] < 3 {
			t.Errorf("the listener saw %d thread exits of helper %d, want 3 or more: the test does not show threads are not counted", l.threads[p], p)
		}
	}
	overflow := l.overflow
	l.mu.Unlock()
	if overflow {
		t.Fatal("the test's listener lost process events (ENOBUFS): the counts above prove nothing")
	}
	mfs := e.Scrape(t)
	for _, m := range []string{"kevent_decode_errors_total", "kevent_datagrams_lost_total"} {
		if v, ok := e2e.Value(mfs, m, "source", "procs"); !ok || v != 0 {
			t.Errorf("%s = %v (present %v), want 0", m, v, ok)
		}
	}
}
