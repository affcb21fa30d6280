package e2e_test

// Tests of the conntrack decoder against the host kernel's connection
// tracking, in a network namespace of each test's own that an iptables
// (legacy) rule makes track connections.

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/kevent-exporter/kevent_exporter/internal/e2e"
	"github.com/kevent-exporter/kevent_exporter/internal/testenv"
)

// requireCommands skips the test unless the commands are installed
// (Debian's iptables and conntrack), failing it under KEVENT_TEST_STRICT=1.
func requireCommands(t *testing.T, names ...string) {
	t.Helper()
	for _, name := range names {
		if _, err := exec.LookPath(name); err != nil {
			msg := fmt.Sprintf("needs %s (.ci/run installs it): %v", name, err)
			if os.Getenv("KEVENT_TEST_STRICT") == "1" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
	}
}

// runIn runs a command in the network namespace at ns and returns its
// standard output.
func runIn(t *testing.T, ns string, argv ...string) string {
	t.Helper()
	cmd := exec.Command("nsenter", append([]string{"--net=" + ns, "--"}, argv...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(argv, " "), err, stderr.Bytes())
	}
	return string(out)
}

// trackConnections makes namespace ns track connections, except those of
// the exporter e's port, so that the test's scrapes are none of the
// events it counts: NOTRACK rules in the raw table for both directions,
// then a rule that matches on conntrack state, which switches connection
// tracking on in the namespace.
func trackConnections(t *testing.T, ns string, e *e2e.Exporter) {
	t.Helper()
	u, err := url.Parse(e.URL)
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{"--dport", "--sport"} {
		runIn(t, ns, "iptables-legacy", "-w", "-t", "raw", "-A", "OUTPUT", "-p", "tcp", dir, u.Port(), "-j", "NOTRACK")
	}
	runIn(t, ns, "iptables-legacy", "-w", "-A", "INPUT", "-m", "conntrack", "--ctstate", "INVALID", "-j", "ACCEPT")
}

// conntrackEvents switches event generation on in namespace ns if it is
// off: a kernel may be built or set with nf_conntrack_events 0, and the
// default 2 (auto) needs a listener, which the exporter is. It returns
// whether timestamps could be switched on too.
func conntrackEvents(t *testing.T, ns string) (timestamps bool) {
	t.Helper()
	var events []byte
	if err := testenv.InNetns(ns, func() (err error) {
		events, err = os.ReadFile("/proc/sys/net/netfilter/nf_conntrack_events")
		return err
	}); err != nil {
		t.Fatalf("connection tracking is not available in a network namespace: %v", err)
	}
	if strings.TrimSpace(string(events)) == "0" {
		sysctlIn(t, ns, "net/netfilter/nf_conntrack_events", "1")
	}
	err := testenv.InNetns(ns, func() error {
		return os.WriteFile("/proc/sys/net/netfilter/nf_conntrack_timestamp", []byte("1"), 0o644)
	})
	if err != nil {
		t.Logf("connection timestamps cannot be switched on (%v): destroy events carry no lifetime", err)
	}
	return err == nil
}

const conntrackConfig = `
sources:
  - name: conntrack
    protocol: netfilter
    groups: [conntrack_new, conntrack_destroy]
    decoder: conntrack
`

// TestConntrackConnections: 200 TCP connections to a local listener, closed
// normally, 100 TCP connects to a closed port and 50 UDP datagrams to a
// port without a listener, then a flush of the table (conntrack -F), give
// exactly 300 new/tcp and 50 new/udp; the closed connections end as 200
// destroy/tcp/time_wait with their lifetime as value, the refused connects
// as 100 destroy/tcp/unreplied/close (the RST is the only answer, and the
// kernel deletes the entry at once), the datagrams as 50
// destroy/udp/unreplied. 10 more datagrams, to port 9 in conntrack zone 7
// (a CT --zone rule), are counted apart, with the zone as object. Nothing
// is lost and nothing else is counted: the exporter's own port is not
// tracked.
func TestConntrackConnections(t *testing.T) {
	t.Parallel()
	testenv.RequireRoot(t, "making network namespaces, iptables rules and flushing their conntrack table")
	requireCommands(t, "iptables-legacy", "conntrack", "nsenter")
	ns := newNetns(t)
	// A connect reusing the port of a connection in TIME_WAIT, which
	// Linux allows on loopback, would end that connection before the
	// flush.
	sysctlIn(t, ns, "net/ipv4/tcp_tw_reuse", "0")
	timestamps := conntrackEvents(t, ns)
	e := startExporterIn(t, ns, conntrackConfig)
	e.WaitFor(t, 1, "kevent_source_up", "source", "conntrack")
	trackConnections(t, ns, e)
	// The exporter asks for no reliable delivery, which would make the
	// kernel retry destroy events and slow the node, and keeps ENOBUFS,
	// its loss signal.
	flags := netfilterSocketFlags(t, ns)
	if len(flags) == 0 {
		t.Fatal("sock_diag shows no NETLINK_NETFILTER socket in the namespace")
	}
	for port, f := range flags {
		if f&(ndiagFlagBroadcastError|ndiagFlagNoENOBUFS) != 0 {
			t.Errorf("NETLINK_NETFILTER socket %d has flags %#x: NETLINK_BROADCAST_ERROR (%#x) or NETLINK_NO_ENOBUFS (%#x) set", port, f, ndiagFlagBroadcastError, ndiagFlagNoENOBUFS)
		}
	}

	const (
		closed  = 200
		refused = 100
		udp     = 50
		zoned   = 10
	)
	runIn(t, ns, "iptables-legacy", "-w", "-t", "raw", "-A", "OUTPUT", "-p", "udp", "--dport", "9", "-j", "CT", "--zone", "7")
	if err := testenv.InNetns(ns, func() error {
		l, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			return err
		}
		defer l.Close()
		for range closed {
			c, err := net.Dial("tcp4", l.Addr().String())
			if err != nil {
				return err
			}
			a, err := l.Accept()
			if err != nil {
				return err
			}
			// The client closes first and ends in TIME_WAIT; the
			// server's read of the FIN makes the order certain.
			c.Close()
			if _, err := a.Read(make([]byte, 1)); err == nil {
				return fmt.Errorf("read data from a closed connection")
			}
			a.Close()
		}
		// A port that was free a moment ago: nothing listens there.
		p, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			return err
		}
		port := p.Addr().(*net.TCPAddr).Port
		p.Close()
		for range refused {
			c, err := net.Dial("tcp4", fmt.Sprintf("127.0.0.1:%d", port))
			if err == nil {
				c.Close()
				return fmt.Errorf("connected to port %d, which should be closed", port)
			}
		}
		// Each datagram from a socket of its own, open till the end so
		// that no two share a port: a connection each.
		for range udp {
			c, err := net.Dial("udp4", fmt.Sprintf("127.0.0.1:%d", port))
			if err != nil {
				return err
			}
			defer c.Close()
			if _, err := c.Write([]byte("anyone?")); err != nil {
				return err
			}
		}
		for range zoned {
			c, err := net.Dial("udp4", "127.0.0.1:9")
			if err != nil {
				return err
			}
			defer c.Close()
			if _, err := c.Write([]byte("anyone?")); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	e.WaitFor(t, closed+refused, "kevent_events_total", "source", "conntrack", "event", "new/tcp", "object", "")
	e.WaitFor(t, udp, "kevent_events_total", "source", "conntrack", "event", "new/udp", "object", "")
	e.WaitFor(t, refused, "kevent_events_total", "source", "conntrack", "event", "destroy/tcp/unreplied/close", "object", "")
	// The last ACK of each close may still be on its way through
	// loopback: the flush waits for every connection to be in TIME_WAIT.
	e2e.Eventually(t, fmt.Sprintf("conntrack -L shows %d TCP connections in TIME_WAIT", closed), func() bool {
		return strings.Count(runIn(t, ns, "conntrack", "-L", "-p", "tcp", "--state", "TIME_WAIT"), "\n") == closed
	})
	runIn(t, ns, "conntrack", "-F")
	e.WaitFor(t, closed, "kevent_events_total", "source", "conntrack", "event", "destroy/tcp/time_wait", "object", "")
	e.WaitFor(t, udp, "kevent_events_total", "source", "conntrack", "event", "destroy/udp/unreplied", "object", "")
	e.WaitFor(t, zoned, "kevent_events_total", "source", "conntrack", "event", "destroy/udp/unreplied", "object", "7")
	checkCounts(t, e, "conntrack", map[string]float64{
		"new/udp 7":                    zoned,
		"destroy/udp/unreplied 7":      zoned,
		"new/tcp ":                     closed + refused,
		"new/udp ":                     udp,
		"destroy/tcp/time_wait ":       closed,
		"destroy/tcp/unreplied/close ": refused,
		"destroy/udp/unreplied ":       udp,
	})
	if timestamps {
		mfs := e.Scrape(t)
		if v, ok := e2e.Value(mfs, "kevent_event_last_value", "source", "conntrack", "event", "destroy/tcp/time_wait", "object", ""); !ok || v <= 0 || v > 3600 {
			t.Errorf("lifetime of the last connection destroyed in TIME_WAIT: %v s (present %v), want more than 0", v, ok)
		}
		if _, ok := e2e.Value(mfs, "kevent_event_last_value", "source", "conntrack", "event", "new/tcp", "object", ""); ok {
			t.Errorf("new/tcp has a value: a connection's lifetime is known at its end only")
		}
	}
}

// sock_diag's view of netlink sockets (linux/netlink_diag.h).
const (
	sockDiagByFamily        = 20 // SOCK_DIAG_BY_FAMILY
	netlinkDiagFlags        = 4  // NETLINK_DIAG_FLAGS
	ndiagShowFlags          = 0x8
	ndiagFlagBroadcastError = 0x4
	ndiagFlagNoENOBUFS      = 0x8
	netlinkDiagMsgLen       = 28 // struct netlink_diag_msg
)

// netfilterSocketFlags returns the NDIAG_FLAG_* flags of every
// NETLINK_NETFILTER socket in namespace ns, by port ID, as sock_diag
// reports them (ss -A netlink reads the same).
func netfilterSocketFlags(t *testing.T, ns string) map[uint32]uint32 {
	t.Helper()
	f, err := os.Open(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c, err := netlink.Dial(unix.NETLINK_SOCK_DIAG, &netlink.Config{NetNS: int(f.Fd())})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// struct netlink_diag_req: family, protocol, pad, inode, show, cookie.
	req := []byte{unix.AF_NETLINK, unix.NETLINK_NETFILTER, 0, 0}
	req = binary.NativeEndian.AppendUint32(req, 0)
	req = binary.NativeEndian.AppendUint32(req, ndiagShowFlags)
	req = append(req, make([]byte, 8)...)
	msgs, err := c.Execute(netlink.Message{
		Header: netlink.Header{Type: sockDiagByFamily, Flags: netlink.Request | netlink.Dump},
		Data:   req,
	})
	if err != nil {
		t.Fatalf("sock_diag of NETLINK_NETFILTER sockets: %v", err)
	}
	flags := make(map[uint32]uint32)
	for _, m := range msgs {
		if len(m.Data) < netlinkDiagMsgLen || m.Data[2] != unix.NETLINK_NETFILTER {
			continue
		}
		port := binary.NativeEndian.Uint32(m.Data[4:8])
		ad, err := netlink.NewAttributeDecoder(m.Data[netlinkDiagMsgLen:])
		if err != nil {
			t.Fatal(err)
		}
		flags[port] = 0
		for ad.Next() {
			if ad.Type() == netlinkDiagFlags {
				flags[port] = ad.Uint32()
			}
		}
		if err := ad.Err(); err != nil {
			t.Fatal(err)
		}
	}
	return flags
}

// TestConntrackLoss: a burst of 1000 new and 1000 destroy events into the
// smallest receive buffer of a stopped exporter overflows it; once the
// exporter runs again every event is counted or lost, exactly: events +
// lost datagrams == 2000, with some lost (one event per datagram).
func TestConntrackLoss(t *testing.T) {
	t.Parallel()
	testenv.RequireRoot(t, "making network namespaces, iptables rules and flushing their conntrack table")
	requireCommands(t, "iptables-legacy", "conntrack", "nsenter")
	ns := newNetns(t)
	conntrackEvents(t, ns)
	e := startExporterIn(t, ns, conntrackConfig+"    receive_buffer_bytes: 4096\n")
	e.WaitFor(t, 1, "kevent_source_up", "source", "conntrack")
	trackConnections(t, ns, e)

	const flows = 1000
	e.Signal(t, syscall.SIGSTOP)
	stopped := true
	t.Cleanup(func() {
		if stopped {
			_ = e.Cmd.Process.Signal(syscall.SIGCONT)
		}
	})
	if err := testenv.InNetns(ns, func() error {
		c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
		if err != nil {
			return err
		}
		defer c.Close()
		// A flow to each of 1000 loopback addresses, where nothing
		// listens (bench/ctfill does the same).
		for i := range flows {
			dst := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 1, byte(i >> 8), byte(i)}), 9)
			if _, err := c.WriteToUDPAddrPort([]byte("anyone?"), dst); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	runIn(t, ns, "conntrack", "-F")
	e.Signal(t, syscall.SIGCONT)
	stopped = false

	var events, lost float64
	e2e.Eventually(t, fmt.Sprintf("events + lost datagrams reach %d", 2*flows), func() bool {
		mfs, err := e.TryScrape()
		if err != nil {
			return false
		}
		events = e2e.Sum(mfs, "kevent_events_total", "source", "conntrack")
		lost = e2e.Sum(mfs, "kevent_datagrams_lost_total", "source", "conntrack")
		return events+lost >= 2*flows
	})
	mfs := e.Scrape(t)
	counts := eventCounts(mfs, "conntrack")
	events = e2e.Sum(mfs, "kevent_events_total", "source", "conntrack")
	lost = e2e.Sum(mfs, "kevent_datagrams_lost_total", "source", "conntrack")
	if events+lost != 2*flows || lost == 0 {
		t.Errorf("events %v + lost %v = %v, want %d with some lost (receive buffer %v bytes)", events, lost, events+lost, 2*flows,
			e2e.Sum(mfs, "kevent_source_receive_buffer_bytes", "source", "conntrack"))
	}
	t.Logf("%v events counted, %v lost", events, lost)
	for k, v := range counts {
		if k != "new/udp " && k != "destroy/udp/unreplied " {
			t.Errorf("kevent_events_total{event, object = %s} = %v: not one of the burst's", k, v)
		}
	}
	if v := e2e.Sum(mfs, "kevent_decode_errors_total", "source", "conntrack"); v != 0 {
		t.Errorf("kevent_decode_errors_total = %v, want 0", v)
	}
}

// TestConntrackDenied: joining the conntrack groups needs CAP_NET_ADMIN,
// so an exporter without it has the source denied, as a probe of the
// kernel says it must be.
func TestConntrackDenied(t *testing.T) {
	t.Parallel()
	testenv.RequireRoot(t, "making network namespaces")
	ns := newNetns(t)
	err := testenv.JoinAsNobody(t, ns, unix.NETLINK_NETFILTER, 3)
	if err == nil {
		t.Skip("this kernel lets uid 65534 join NFNLGRP_CONNTRACK_DESTROY: nothing to deny")
	}
	t.Logf("uid 65534 joining NFNLGRP_CONNTRACK_DESTROY: %v", err)
	e := startExporterIn(t, ns, conntrackConfig, "--setuid=65534", "--setgid=65534")
	e.WaitFor(t, 1, "kevent_source_state", "source", "conntrack", "state", "denied")
}
