//go:build vmtest

package vmtest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/kevent-exporter/kevent_exporter/decoder"
	"github.com/kevent-exporter/kevent_exporter/internal/e2e"
)

// dropsConfig is a drop monitor source in mode (and its other keys).
func dropsConfig(keys string) string {
	return "sources:\n  - {name: drops, family: NET_DM, groups: [events], decoder: drop_monitor" + keys + "}\n"
}

// netDM sends the drop monitor's commands as another program (dropwatch)
// would.
type netDM struct {
	c      *genetlink.Conn
	family uint16
}

// dialNetDM opens a command socket on the drop monitor family, which must
// be registered; it is closed at the end of the test.
func dialNetDM(t *testing.T) *netDM {
	t.Helper()
	c, err := genetlink.Dial(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	f, err := c.GetFamily(decoder.DropMonFamily)
	if err != nil {
		t.Fatalf("looking up %s: %v", decoder.DropMonFamily, err)
	}
	return &netDM{c: c, family: f.ID}
}

// command sends a command and waits for its acknowledgement.
func (d *netDM) command(cmd uint8, attrs func(*netlink.AttributeEncoder)) error {
	m := genetlink.Message{Header: genetlink.Header{Command: cmd, Version: 2}}
	if attrs != nil {
		ae := netlink.NewAttributeEncoder()
		attrs(ae)
		b, err := ae.Encode()
		if err != nil {
			return err
		}
		m.Data = b
	}
	_, err := d.c.Execute(m, d.family, netlink.Request|netlink.Acknowledge)
	return err
}

// start configures the monitor in packet mode and starts it.
func (d *netDM) start(t *testing.T) {
	t.Helper()
	if err := d.command(decoder.DropMonCmdConfig, func(ae *netlink.AttributeEncoder) {
		ae.Uint8(decoder.DropMonAttrAlertMode, decoder.DropMonAlertModePacket)
		ae.Uint32(decoder.DropMonAttrTruncLen, 64)
	}); err != nil {
		t.Fatalf("NET_DM_CMD_CONFIG: %v", err)
	}
	if err := d.command(decoder.DropMonCmdStart, nil); err != nil {
		t.Fatalf("NET_DM_CMD_START: %v", err)
	}
}

// dropped reads the kernel's count of alerts it could not queue
// (NET_DM_CMD_STATS_GET), cumulative since the module loaded.
func (d *netDM) dropped(t *testing.T) uint64 {
	t.Helper()
	msgs, err := d.c.Execute(genetlink.Message{Header: genetlink.Header{Command: decoder.DropMonCmdStatsGet, Version: 2}}, d.family, netlink.Request)
	if err != nil {
		t.Fatalf("NET_DM_CMD_STATS_GET: %v", err)
	}
	var n uint64
	for _, m := range msgs {
		ad, err := netlink.NewAttributeDecoder(m.Data)
		if err != nil {
			t.Fatal(err)
		}
		for ad.Next() {
			if ad.Type() == decoder.DropMonAttrStats {
				ad.Nested(func(nad *netlink.AttributeDecoder) error {
					for nad.Next() {
						if nad.Type() == decoder.DropMonAttrStatsDropped {
							n += nad.Uint64()
						}
					}
					return nil
				})
			}
		}
	}
	return n
}

// wantStopped checks that the monitor does not run: a START succeeds; it
// is stopped again.
func (d *netDM) wantStopped(t *testing.T) {
	t.Helper()
	if err := d.command(decoder.DropMonCmdStart, nil); err != nil {
		t.Fatalf("NET_DM_CMD_START after the exporter stopped: %v; want it to succeed, the exporter having stopped the monitor", err)
	}
	if err := d.command(decoder.DropMonCmdStop, nil); err != nil {
		t.Fatalf("NET_DM_CMD_STOP: %v", err)
	}
}

// closedPort returns a UDP port of 127.0.0.1 that nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return sa.(*unix.SockaddrInet4).Port
}

// udpPayload is what each datagram carries.
const udpPayload = "drop"

// sendUDP sends n datagrams to a closed port of lo, which the kernel drops
// with reason NO_SOCKET in its UDP receive function. The socket is not
// connected, so the ICMP errors that come back do not fail the sends.
func sendUDP(t *testing.T, n int) {
	t.Helper()
	port := closedPort(t)
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	to := &unix.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}}
	for i := 0; i < n; i++ {
		if err := unix.Sendto(fd, []byte(udpPayload), 0, to); err != nil {
			t.Fatalf("datagram %d: %v", i, err)
		}
	}
}

// udpNoPorts reads the kernel's count of UDP datagrams that found no
// socket ("Udp: NoPorts" of /proc/net/snmp).
func udpNoPorts(t *testing.T) uint64 {
	t.Helper()
	b, err := os.ReadFile("/proc/net/snmp")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "Udp:" {
			continue
		}
		if names == nil {
			names = f
			continue
		}
		for i, n := range names {
			if n == "NoPorts" && i < len(f) {
				v, err := strconv.ParseUint(f[i], 10, 64)
				if err != nil {
					t.Fatal(err)
				}
				return v
			}
		}
	}
	t.Fatal("no Udp NoPorts in /proc/net/snmp")
	return 0
}

// stormBatch is how many datagrams the storm sends before it waits for the
// kernel to have received them: lo's backlog (net.core.netdev_max_backlog,
// 1000) holds each datagram and its ICMP error until the receive softirq
// takes them, and a sender that outruns the softirq (deferred to
// ksoftirqd) has them dropped there (CPU_BACKLOG), before UDP sees them.
const stormBatch = 200

// sendStorm sends n datagrams as sendUDP does, in batches of stormBatch,
// each once the kernel's UDP has found no socket for the last: every
// datagram is dropped at the UDP receive function, none at the backlog.
func sendStorm(t *testing.T, n int) {
	t.Helper()
	start := udpNoPorts(t)
	for sent := 0; sent < n; {
		b := min(stormBatch, n-sent)
		sendUDP(t, b)
		sent += b
		// Polled every millisecond: Eventually's 20 ms between looks
		// would add 10 s to the 500 batches.
		if !poll(e2e.Timeout, time.Millisecond, func() bool { return udpNoPorts(t)-start >= uint64(sent) }) {
			t.Fatalf("after %d datagrams the kernel counts %d without a socket", sent, udpNoPorts(t)-start)
		}
	}
}

// udpReceive is the function of the kernel that drops datagrams to a
// closed port (net/ipv4/udp.c).
const udpReceive = "__udp4_lib_rcv"

// TestDropMonitorPackets: an exporter started before drop_monitor.ko is
// loaded attaches when it is, configures and starts the monitor in packet
// mode, and counts 100 datagrams to a closed port as 100 drops, reason
// NO_SOCKET, at the UDP receive function, with their length; stopping the
// exporter stops the monitor.
func TestDropMonitorPackets(t *testing.T) {
	m := useModule(t, "drop_monitor")
	e := startExporter(t, nil, dropsConfig(""))
	e.WaitLog(t, "Generic netlink family not registered")
	t0 := time.Now()
	m.load(t, "")
	e.WaitFor(t, 1, "kevent_source_up", "source", "drops")
	t.Logf("attached %d ms after insmod", time.Since(t0).Milliseconds())
	e.WaitFor(t, 1, "kevent_drop_monitor_owned", "source", "drops")
	e.WaitLog(t, `msg="Started the kernel's drop monitor" mode=packets`)

	sendUDP(t, 100)
	e.WaitFor(t, 100, "kevent_events_total", "source", "drops", "event", "NO_SOCKET", "object", udpReceive)
	mfs := e.Scrape(t)
	// The Ethernet header lo's packets have, IPv4's and UDP's.
	check(t, mfs, 14+20+8+float64(len(udpPayload)), "kevent_event_last_value", "source", "drops", "event", "NO_SOCKET", "object", udpReceive)
	check(t, mfs, 0, "kevent_kernel_lost_total", "source", "drops")
	check(t, mfs, 0, "kevent_datagrams_lost_total", "source", "drops")
	check(t, mfs, 0, "kevent_decode_errors_total", "source", "drops")
	if other := e2e.Sum(mfs, "kevent_events_total", "source", "drops") - 100; other != 0 {
		t.Logf("other drops while the test ran: %v", other)
	}

	if err, ok := e.Stop(); !ok || err != nil {
		t.Fatalf("exporter stopped with %v (in time: %t); log:\n%s", err, ok, e.Logs)
	}
	if !strings.Contains(e.Logs.String(), `msg="Stopped the kernel's drop monitor"`) {
		t.Errorf("the stop is not logged; log:\n%s", e.Logs)
	}
	dialNetDM(t).wantStopped(t)
}

// TestDropMonitorSummary: in summary mode, the 100 drops are counted at
// the UDP receive function, which kallsyms names.
func TestDropMonitorSummary(t *testing.T) {
	useModule(t, "drop_monitor").load(t, "")
	e := startExporter(t, nil, dropsConfig(", mode: summary"))
	e.WaitFor(t, 1, "kevent_drop_monitor_owned", "source", "drops")
	e.WaitLog(t, `msg="Started the kernel's drop monitor" mode=summary`)
	sendUDP(t, 100)
	// One summary per CPU per second: the count arrives at once.
	e.WaitFor(t, 100, "kevent_events_total", "source", "drops", "event", "unknown", "object", udpReceive)
	mfs := e.Scrape(t)
	check(t, mfs, 0, "kevent_decode_errors_total", "source", "drops")
	t.Logf("datagrams (summaries) received: %s", show(mfs, "kevent_datagrams_received_total", "source", "drops"))
	if err, ok := e.Stop(); !ok || err != nil {
		t.Fatalf("exporter stopped with %v (in time: %t); log:\n%s", err, ok, e.Logs)
	}
	dialNetDM(t).wantStopped(t)
}

// stormDrops is the storm's datagrams, stormQueue the packet mode's queue.
const (
	stormDrops = 100000
	stormQueue = 100
)

// TestDropMonitorStorm: a storm of stormDrops drops with a queue of
// stormQueue packets (sent in batches that lo's backlog holds, so that
// every datagram is dropped at the UDP receive function): the events
// there, what the kernel could not queue (its statistics) and what the
// socket could not take add up to the storm. Other drops while it runs (the scrapes' TCP on
// lo) are events too; they are logged. Then, where run.sh put dropwatch in
// the VM, the same storm through dropwatch, for the received shares side
// by side.
func TestDropMonitorStorm(t *testing.T) {
	useModule(t, "drop_monitor").load(t, "")
	e := startExporter(t, nil, dropsConfig(fmt.Sprintf(", queue_length: %d", stormQueue)))
	e.WaitFor(t, 1, "kevent_drop_monitor_owned", "source", "drops")
	// Other drops during the storm, which the kernel may fail to queue
	// too, would make the sum larger: the scrapes' TCP connections are
	// closed and done with first.
	e.CloseIdleConnections()
	tcpQuiet(t)

	type counts struct{ events, udp, kernelLost, socketLost float64 }
	read := func() (counts, bool) {
		mfs, err := e.TryScrape()
		if err != nil {
			return counts{}, false
		}
		u, _ := e2e.Value(mfs, "kevent_events_total", "source", "drops", "event", "NO_SOCKET", "object", udpReceive)
		k, ok1 := e2e.Value(mfs, "kevent_kernel_lost_total", "source", "drops")
		s, ok2 := e2e.Value(mfs, "kevent_datagrams_lost_total", "source", "drops")
		return counts{e2e.Sum(mfs, "kevent_events_total", "source", "drops"), u, k, s}, ok1 && ok2
	}
	t0 := time.Now()
	sendStorm(t, stormDrops)
	sent := time.Since(t0)
	var c counts
	e2e.Eventually(t, "the storm is accounted for", func() bool {
		var ok bool
		c, ok = read()
		return ok && c.udp+c.kernelLost+c.socketLost >= stormDrops
	}, e2e.Lazy(func() string {
		return fmt.Sprintf("events %v + kernel lost %v + socket lost %v < %d; log:\n%s", c.udp, c.kernelLost, c.socketLost, stormDrops, e.Logs)
	}))
	share := c.udp / stormDrops
	t.Logf("storm of %d sent in %d ms, accounted %d ms later: events %v (%v at %s), kernel lost %v, socket lost %v; received share %.4f",
		stormDrops, sent.Milliseconds(), (time.Since(t0) - sent).Milliseconds(), c.events, c.udp, udpReceive, c.kernelLost, c.socketLost, share)
	if c.udp+c.kernelLost+c.socketLost != stormDrops {
		t.Errorf("events %v + kernel lost %v + socket lost %v = %v, want %d", c.udp, c.kernelLost, c.socketLost, c.udp+c.kernelLost+c.socketLost, stormDrops)
	}
	if c.kernelLost == 0 {
		// Whether the monitor's per-CPU queue overflows depends on how
		// soon the kernel's work item drains it, not on the exporter:
		// the identity above holds either way.
		t.Log("the kernel lost nothing this time: a queue of 100 did not overflow, so its statistics added nothing")
	}
	mfs := e.Scrape(t)
	check(t, mfs, 0, "kevent_decode_errors_total", "source", "drops")
	for _, m := range mfs["kevent_events_total"].GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if labels["event"] != "NO_SOCKET" || labels["object"] != udpReceive {
			t.Logf("  other drops: %s at %s: %v", labels["event"], labels["object"], m.GetCounter().GetValue())
		}
	}
	if err, ok := e.Stop(); !ok || err != nil {
		t.Fatalf("exporter stopped with %v (in time: %t); log:\n%s", err, ok, e.Logs)
	}

	dw, err := dropwatchStorm(t)
	if err != nil {
		t.Logf("dropwatch: %v", err)
		return
	}
	dwShare := float64(dw.alerts) / stormDrops
	t.Logf("dropwatch, same storm and queue: %d alerts received, share %.4f; the kernel could not queue %d, so its socket lost %d (dropwatch's \"Tail dropped\", since the module loaded: %d); exporter/dropwatch share ratio %.3f",
		dw.alerts, dwShare, dw.kernelLost, stormDrops-dw.alerts-dw.kernelLost, dw.tailDropped, share/dwShare)
}

// tcpQuiet waits until the VM's TCP sockets are listening or in
// TIME_WAIT: no connection is still closing, whose segments the kernel
// could drop.
func tcpQuiet(t *testing.T) {
	t.Helper()
	const listen, timeWait = "0A", "06"
	var busy []string
	e2e.Eventually(t, "no TCP connection is open or closing", func() bool {
		busy = nil
		for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
			b, err := os.ReadFile(f)
			if err != nil {
				continue
			}
			for _, line := range strings.Split(string(b), "\n")[1:] {
				if fields := strings.Fields(line); len(fields) > 3 && fields[3] != listen && fields[3] != timeWait {
					busy = append(busy, line)
				}
			}
		}
		return len(busy) == 0
	}, e2e.Lazy(func() string { return strings.Join(busy, "\n") }))
}

// dropwatchBinary is where run.sh puts dropwatch, with its libraries, when
// the host has it.
const dropwatchBinary = "/bin/dropwatch"

// dropwatchCounts is what dropwatch saw of a storm, and what the kernel
// could not queue meanwhile.
type dropwatchCounts struct {
	alerts, tailDropped, kernelLost int
}

// alertCounter counts dropwatch's packet alerts in its output, which
// begins each with a "drop at:" line, keeping only the output's tail.
type alertCounter struct {
	mu     sync.Mutex
	alerts int
	tail   []byte
	text   strings.Builder
}

func (c *alertCounter) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	buf := append(c.tail, b...)
	for {
		i := bytes.IndexByte(buf, '\n')
		if i < 0 {
			break
		}
		line := buf[:i]
		switch {
		case bytes.HasPrefix(line, []byte("drop at:")):
			c.alerts++
		case len(line) == 0 || c.text.Len() > 1<<16:
		case !bytes.Contains(line, []byte(":")) || bytes.Contains(line, []byte("Tail")):
			// Not one of an alert's "name: value" lines.
			c.text.Write(line)
			c.text.WriteByte('\n')
		}
		buf = buf[i+1:]
	}
	c.tail = append(c.tail[:0], buf...)
	return len(b), nil
}

func (c *alertCounter) read() (int, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.alerts, c.text.String()
}

// dropwatchStorm runs the storm with dropwatch in packet mode, with the
// exporter's queue length and one byte of each packet, and counts the
// alerts it prints, then asks it for the kernel's statistics.
func dropwatchStorm(t *testing.T) (dropwatchCounts, error) {
	if _, err := os.Stat(dropwatchBinary); err != nil {
		return dropwatchCounts{}, fmt.Errorf("not in the VM (%v): run.sh copies it where the host has it (Debian's dropwatch)", err)
	}
	cmd := exec.Command(dropwatchBinary)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return dropwatchCounts{}, err
	}
	out := &alertCounter{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return dropwatchCounts{}, err
	}
	defer cmd.Process.Kill()
	dm := dialNetDM(t)
	defer dm.command(decoder.DropMonCmdStop, nil) // if dropwatch did not
	base := dm.dropped(t)
	fmt.Fprintf(stdin, "set alertmode packet\nset trunc 1\nset queue %d\nstart\n", stormQueue)
	// Its output is a pipe, which its C library buffers: the kernel says
	// when it started (a CONFIG without attributes changes nothing, and
	// fails with EBUSY while the monitor runs).
	if !poll(20*time.Second, 50*time.Millisecond, func() bool {
		return errors.Is(dm.command(decoder.DropMonCmdConfig, nil), unix.EBUSY)
	}) {
		_, text := out.read()
		return dropwatchCounts{}, fmt.Errorf("did not start the monitor; output:\n%s", text)
	}
	sendStorm(t, stormDrops)
	// Until its count stops moving for 2 s.
	last, still := -1, 0
	poll(300*time.Second, 200*time.Millisecond, func() bool {
		n, _ := out.read()
		if n == last {
			still++
		} else {
			last, still = n, 0
		}
		return still >= 10
	})
	if err := cmd.Process.Signal(unix.SIGINT); err != nil {
		return dropwatchCounts{}, err
	}
	fmt.Fprintf(stdin, "stats\nexit\n")
	stdin.Close()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
	}
	n, text := out.read()
	c := dropwatchCounts{alerts: n, tailDropped: -1, kernelLost: int(dm.dropped(t) - base)}
	if _, after, ok := strings.Cut(text, "Tail dropped:"); ok {
		fmt.Sscan(after, &c.tailDropped)
	} else {
		t.Logf("dropwatch printed no statistics; its output, less the alerts:\n%s", text)
	}
	return c, nil
}

// TestDropMonitorAlreadyRunning: an exporter started while another program
// runs the monitor listens to it, says so, and leaves it running.
func TestDropMonitorAlreadyRunning(t *testing.T) {
	useModule(t, "drop_monitor").load(t, "")
	other := dialNetDM(t)
	other.start(t)
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			other.command(decoder.DropMonCmdStop, nil)
		}
	})
	e := startExporter(t, nil, dropsConfig(", mode: summary"))
	e.WaitFor(t, 1, "kevent_source_up", "source", "drops")
	e.WaitFor(t, 0, "kevent_drop_monitor_owned", "source", "drops")
	e.WaitLog(t, `msg="The kernel's drop monitor already runs, started by another program`)
	e.WaitLog(t, "mode=packets")
	sendUDP(t, 10)
	// In the mode that runs: packets, with reasons.
	e.WaitFor(t, 10, "kevent_events_total", "source", "drops", "event", "NO_SOCKET", "object", udpReceive)
	if err, ok := e.Stop(); !ok || err != nil {
		t.Fatalf("exporter stopped with %v (in time: %t); log:\n%s", err, ok, e.Logs)
	}
	if err := other.command(decoder.DropMonCmdStart, nil); !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.EBUSY) {
		t.Fatalf("NET_DM_CMD_START after the exporter stopped: %v; want EAGAIN, the monitor still running", err)
	}
	if err := other.command(decoder.DropMonCmdStop, nil); err != nil {
		t.Fatalf("NET_DM_CMD_STOP: %v", err)
	}
	stopped = true
}

// TestDropMonitorUnprivileged: an exporter without privileges reports the
// source down and names the capability it lacks: CAP_SYS_ADMIN where the
// kernel flags the events group (a probe says), else CAP_NET_ADMIN, which
// the commands need. The monitor is not started.
func TestDropMonitorUnprivileged(t *testing.T) {
	useModule(t, "drop_monitor").load(t, "")
	p := e2e.ProbeFamily(t, "", decoder.DropMonFamily, decoder.DropMonGroup)
	t.Logf("as uid 65534: %s", p)
	e := startExporter(t, nobody, dropsConfig(""))
	want := `msg="Not permitted to configure the drop monitor (NET_DM_CMD_CONFIG): it needs CAP_NET_ADMIN; source down"`
	if p.Joinable() == 0 {
		if !errors.Is(p.Errs[0], unix.EPERM) {
			t.Fatalf("probe: %s; want joined or EPERM", p)
		}
		want = `msg="Not permitted to join the drop monitor's events group: the kernel asks for CAP_SYS_ADMIN`
	}
	e.WaitLog(t, want)
	e.WaitFor(t, 0, "kevent_source_up", "source", "drops")
	e.WaitFor(t, 1, "kevent_source_state", "source", "drops", "state", "denied")
	dialNetDM(t).wantStopped(t)
}

// TestDropMonitorCLI: kevent_exporter monitor --source drops, without a
// configuration, prints each drop with its reason, function, input
// interface and length.
func TestDropMonitorCLI(t *testing.T) {
	useModule(t, "drop_monitor").load(t, "")
	cmd := exec.Command(*exporterBinary, "monitor", "--source", "drops", "--count", "3", "--timeout", "60s")
	var out, logs strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill() })
	// Drops until the monitor has printed three.
	var err error
	e2e.Eventually(t, "the monitor exits after three events", func() bool {
		select {
		case err = <-done:
			return true
		default:
			sendUDP(t, 1)
			return false
		}
	}, e2e.Lazy(func() string { return "output:\n" + out.String() + "\nlog:\n" + logs.String() }))
	if err != nil {
		t.Fatalf("monitor: %v; output:\n%s\nlog:\n%s", err, out.String(), logs.String())
	}
	t.Logf("monitor printed:\n%s", out.String())
	want := fmt.Sprintf(` drops NO_SOCKET object=%s value=%d payload="in=lo"`, udpReceive, 14+20+8+len(udpPayload))
	if n := strings.Count(out.String(), want); n != 3 {
		t.Errorf("%d lines with %q, want 3", n, want)
	}
	dialNetDM(t).wantStopped(t)
}

// TestDropMonitorReload: a reload that renames the source starts the new
// one while the old one stops: it shares the monitor the old one started
// rather than find it busy, and the monitor runs on; a reload that changes
// the mode stops the monitor and starts it again in the new mode; the
// exporter's exit stops it.
func TestDropMonitorReload(t *testing.T) {
	useModule(t, "drop_monitor").load(t, "")
	e := startExporter(t, nil, dropsConfig(""))
	e.WaitFor(t, 1, "kevent_drop_monitor_owned", "source", "drops")
	reload := func(config string) {
		t.Helper()
		if err := os.WriteFile(e.ConfigFile, []byte(config), 0o644); err != nil {
			t.Fatal(err)
		}
		if code, body := e2e.Post(t, e.URL+"/-/reload"); code != 200 {
			t.Fatalf("reload: %d %s", code, body)
		}
	}

	reload(strings.Replace(dropsConfig(""), "name: drops,", "name: drops2,", 1))
	e.WaitFor(t, 1, "kevent_drop_monitor_owned", "source", "drops2")
	sendUDP(t, 10)
	e.WaitFor(t, 10, "kevent_events_total", "source", "drops2", "event", "NO_SOCKET", "object", udpReceive)
	if strings.Contains(e.Logs.String(), "already runs") {
		t.Errorf("the renamed source found the monitor busy; log:\n%s", e.Logs)
	}

	reload(strings.Replace(dropsConfig(", mode: summary"), "name: drops,", "name: drops2,", 1))
	e.WaitLog(t, `msg="Started the kernel's drop monitor" mode=summary`)
	e.WaitFor(t, 1, "kevent_drop_monitor_owned", "source", "drops2")
	sendUDP(t, 10)
	e.WaitFor(t, 10, "kevent_events_total", "source", "drops2", "event", "unknown", "object", udpReceive)

	if err, ok := e.Stop(); !ok || err != nil {
		t.Fatalf("exporter stopped with %v (in time: %t); log:\n%s", err, ok, e.Logs)
	}
	dialNetDM(t).wantStopped(t)
}
