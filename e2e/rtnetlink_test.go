package e2e_test

// Tests of the rtnetlink decoder against the host kernel: veth pairs in
// network namespaces that each test makes.

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/mdlayher/netlink"
	dto "github.com/prometheus/client_model/go"
	"golang.org/x/sys/unix"

	"github.com/kevent-exporter/kevent_exporter/internal/e2e"
	"github.com/kevent-exporter/kevent_exporter/internal/testenv"
)

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
	if err := testenv.InNetns(ns, func() error {
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
