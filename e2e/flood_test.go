package e2e_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/kevent-exporter/kevent_exporter/internal/e2e"
	"github.com/kevent-exporter/kevent_exporter/internal/nlsend"
	"github.com/kevent-exporter/kevent_exporter/internal/testenv"
)

// floodSent is the size of the floods that interrupted sources must
// account for exactly.
const floodSent = 1000000

// flood multicasts n one-message datagrams on usersock group.
func flood(t *testing.T, group uint32, n int) {
	t.Helper()
	snd := sender(t, group)
	b := make([]byte, 0, 64)
	for i := 0; i < n; i++ {
		b = nlsend.AppendMessage(b[:0], 0x20, uint32(i), []byte("flood"))
		if err := snd.Send(b); err != nil {
			t.Fatal(err)
		}
	}
}

// finalCounts finds the log line in which source name stopped, with msg,
// and returns its events, decode errors, datagrams received and lost.
func finalCounts(t *testing.T, e *e2e.Exporter, msg, name string) (events, decodeErrors, received, lost int) {
	t.Helper()
	re := regexp.MustCompile(`msg="` + regexp.QuoteMeta(msg) + `" source=` + name +
		` events=(\d+) decode_errors=(\d+) datagrams_received=(\d+) datagrams_lost=(\d+) datagrams_rejected_not_kernel=0 datagrams_rejected_not_root=0 datagrams_rejected_no_credentials=0`)
	var m []string
	e2e.Eventually(t, "the source's final counts are logged", func() bool {
		m = re.FindStringSubmatch(e.Logs.String())
		return m != nil
	})
	n := make([]int, 4)
	for i := range n {
		n[i], _ = strconv.Atoi(m[i+1])
	}
	return n[0], n[1], n[2], n[3]
}

// drainLine returns what the flood source on group g logged of the queue
// it read at stop.
func drainLine(e *e2e.Exporter, g uint32) string {
	m := regexp.MustCompile(`source=flood protocol=2 groups=\[` + strconv.Itoa(int(g)) + `\] msg="Read the receive queue at stop" (.*)`).FindStringSubmatch(e.Logs.String())
	if m == nil {
		return "no drain line"
	}
	return m[1]
}

const floodConfig = `
sources:
  - {name: flood, protocol: usersock, groups: [%d], decoder: raw, receive_buffer_bytes: %d}
  - {name: steady, protocol: usersock, groups: [%d], decoder: raw}
`

// stoppedFlood starts an exporter, stops it (SIGSTOP), floods its source
// "flood" with floodSent datagrams, most of which the kernel drops at the
// full socket while a large queue waits, and sends 10 to its source
// "steady". It returns the exporter and the usersock groups of the two
// sources.
func stoppedFlood(t *testing.T) (e *e2e.Exporter, g, steady uint32) {
	t.Helper()
	g, steady = testenv.UsersockGroup(t), testenv.UsersockGroup(t)
	e = startExporter(t, fmt.Sprintf(floodConfig, g, 64<<20, steady), "--log.level=debug")
	e.WaitFor(t, 1, "kevent_source_up", "source", "flood")
	e.WaitFor(t, 1, "kevent_source_up", "source", "steady")
	flood(t, steady, 10)
	e.WaitFor(t, 10, "kevent_events_total", "source", "steady", "event", "32")
	e.Signal(t, syscall.SIGSTOP)
	flood(t, g, floodSent)
	return e, g, steady
}

// TestFloodInterruptedByReload: a reload replaces a source while a flood is
// queued on its socket. The socket is handed over, with its queue, to the
// source's new configuration where the change allows it, else the queue is
// read at stop; either way the source's final counts add up to the flood
// exactly, and an unchanged source keeps its counts.
func TestFloodInterruptedByReload(t *testing.T) {
	t.Parallel()
	testenv.RequireRoot(t, "usersock multicast and SIGSTOP of the exporter")
	for _, c := range []struct {
		name     string
		rcvbuf   int
		replaced bool
	}{
		{"handed over", 32 << 20, false},
		// The kernel's default buffer size cannot be restored on a socket.
		{"replaced", 0, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e, g, steady := stoppedFlood(t)
			if err := os.WriteFile(e.ConfigFile, []byte(fmt.Sprintf(floodConfig, g, c.rcvbuf, steady)), 0o644); err != nil {
				t.Fatal(err)
			}
			e.Signal(t, syscall.SIGHUP)
			e.Signal(t, syscall.SIGCONT)
			e.WaitLog(t, `msg="Reloaded config"`)
			// The new configuration's subscription logs the takeover
			// when it runs, which may be after the reload's own line.
			took := `msg="Took over the socket of the source's previous configuration, with its queue"`
			if !c.replaced {
				e.WaitLog(t, took)
			} else if strings.Contains(e.Logs.String(), took) {
				t.Errorf("socket taken over: true, want false")
			}
			if c.replaced {
				events, bad, received, lost := finalCounts(t, e, "Source replaced: its configuration changed", "flood")
				t.Logf("replaced source: events=%d lost=%d (received %d); %s", events, lost, received, drainLine(e, g))
				if events+lost != floodSent || bad != 0 || received != events {
					t.Errorf("at replacement: events + lost = %d + %d = %d, want %d (decode errors %d, received %d)", events, lost, events+lost, floodSent, bad, received)
				}
			}
			e.WaitFor(t, 1, "kevent_config_last_reload_successful")
			e.WaitFor(t, 1, "kevent_source_up", "source", "flood")
			flood(t, steady, 5)
			e.WaitFor(t, 15, "kevent_events_total", "source", "steady", "event", "32")
			e.Signal(t, syscall.SIGTERM)
			if err, ok := e.Wait(); !ok || err != nil {
				t.Fatalf("exporter after SIGTERM: %v (exited %v); log:\n%s", err, ok, e.Logs)
			}
			events, bad, received, lost := finalCounts(t, e, "Source stopped", "flood")
			t.Logf("stopped source: events=%d lost=%d (received %d)", events, lost, received)
			if events+lost != floodSent || bad != 0 || received != events {
				t.Errorf("events + lost = %d + %d = %d, want %d (decode errors %d, received %d)", events, lost, events+lost, floodSent, bad, received)
			}
			if lost == 0 {
				t.Error("nothing lost: the flood did not overflow the socket, so the test proves little")
			}
		})
	}
}

// TestFloodReloads reloads 200 times during a flood of 100 000 datagrams,
// each reload changing the flooded source (its receive buffer, groups,
// event names, bound or senders). The source's socket passes from each
// configuration to the next, so every datagram sent is delivered to it,
// and its metrics, which go on across the reloads, add up to the flood
// exactly: events + lost == sent.
func TestFloodReloads(t *testing.T) {
	t.Parallel()
	testenv.RequireRoot(t, "usersock multicast")
	const reloads, sent = 200, 100000
	g, other := testenv.UsersockGroup(t), testenv.UsersockGroup(t)
	variants := []string{
		"{groups: [%[1]d], receive_buffer_bytes: 65536}",
		"{groups: [%[1]d, %[2]d], receive_buffer_bytes: 1048576}",
		"{groups: [%[2]d, %[1]d], receive_buffer_bytes: 4194304, event_names: {32: flood}}",
		"{groups: [%[1]d], receive_buffer_bytes: 4194304, max_events: 100, senders: any}",
	}
	config := func(k int) string {
		return "sources:\n  - {name: flood, protocol: usersock, decoder: raw, " + fmt.Sprintf(variants[k%len(variants)][1:], g, other) + "\n"
	}
	e := startExporter(t, config(0))
	e.WaitFor(t, 1, "kevent_source_up", "source", "flood")

	snd := sender(t, g)
	next := make(chan struct{})
	sendErr := make(chan error, 1)
	go func() {
		b := make([]byte, 0, 64)
		for i := 0; i < sent; i++ {
			if i%(sent/reloads) == 0 {
				<-next
			}
			b = nlsend.AppendMessage(b[:0], 0x20, uint32(i), []byte("flood"))
			if err := snd.Send(b); err != nil {
				sendErr <- err
				return
			}
		}
		sendErr <- nil
	}()
	for k := 1; k <= reloads; k++ {
		if err := os.WriteFile(e.ConfigFile, []byte(config(k)), 0o644); err != nil {
			t.Fatal(err)
		}
		e.Signal(t, syscall.SIGHUP)
		// Datagrams are sent while the reload replaces the source.
		next <- struct{}{}
		e2e.Eventually(t, fmt.Sprintf("reload %d is applied", k), func() bool {
			return strings.Count(e.Logs.String(), `msg="Reloaded config"`) == k
		})
	}
	if err := <-sendErr; err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(e.Logs.String(), `msg="Source replaced: its configuration changed" source=flood`); n != reloads {
		t.Fatalf("source replaced %d times, want %d", n, reloads)
	}
	var events, lost float64
	e2e.Eventually(t, "the metrics count every datagram sent", func() bool {
		mfs := e.Scrape(t)
		events = e2e.Sum(mfs, "kevent_events_total", "source", "flood")
		lost = e2e.Sum(mfs, "kevent_datagrams_lost_total", "source", "flood")
		return events+lost >= sent
	})
	if events+lost != sent {
		t.Errorf("metrics: events + lost = %v + %v = %v, want %d", events, lost, events+lost, sent)
	}
	e.Signal(t, syscall.SIGTERM)
	if err, ok := e.Wait(); !ok || err != nil {
		t.Fatalf("exporter after SIGTERM: %v (exited %v); log:\n%s", err, ok, e.Logs)
	}
	ev, bad, received, ls := finalCounts(t, e, "Source stopped", "flood")
	t.Logf("%d reloads: events=%d lost=%d", reloads, ev, ls)
	if ev+ls != sent || bad != 0 || received != ev {
		t.Errorf("final counts: events + lost = %d + %d = %d, want %d (decode errors %d, received %d)", ev, ls, ev+ls, sent, bad, received)
	}
}

// TestFloodInterruptedByShutdown: SIGTERM while a flood is queued. The
// source's final counts add up to the flood exactly.
func TestFloodInterruptedByShutdown(t *testing.T) {
	t.Parallel()
	testenv.RequireRoot(t, "usersock multicast and SIGSTOP of the exporter")
	e, g, _ := stoppedFlood(t)
	e.Signal(t, syscall.SIGTERM)
	e.Signal(t, syscall.SIGCONT)
	if err, ok := e.Wait(); !ok || err != nil {
		t.Fatalf("exporter after SIGTERM: %v (exited %v); log:\n%s", err, ok, e.Logs)
	}
	events, bad, received, lost := finalCounts(t, e, "Source stopped", "flood")
	t.Logf("stopped source: events=%d lost=%d (received %d); %s", events, lost, received, drainLine(e, g))
	if events+lost != floodSent || bad != 0 || received != events {
		t.Errorf("events + lost = %d + %d = %d, want %d (decode errors %d, received %d)", events, lost, events+lost, floodSent, bad, received)
	}
	if s, _, _, _ := finalCounts(t, e, "Source stopped", "steady"); s != 10 {
		t.Errorf("steady source's final events = %d, want 10", s)
	}
}

// TestForgedUevent: a root process multicasts a uevent in the kernel's
// format on the kernel's group, and a udev-style re-broadcast on udev's.
// The forgery is rejected and counted; the re-broadcast and the kernel's
// own uevents are events.
func TestForgedUevent(t *testing.T) {
	t.Parallel()
	e := startExporter(t, "sources:\n  - {name: uevent, protocol: kobject_uevent, groups: [1, 2], decoder: uevent}\n")
	e.WaitFor(t, 1, "kevent_source_up", "source", "uevent")
	forger, err := nlsend.NewSender(unix.NETLINK_KOBJECT_UEVENT, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer forger.Close()
	if err := forger.Send([]byte("add@/devices/fake\x00ACTION=add\x00DEVPATH=/devices/fake\x00SUBSYSTEM=spoofed\x00SEQNUM=1\x00")); err != nil {
		t.Fatal(err)
	}
	udev, err := nlsend.NewSender(unix.NETLINK_KOBJECT_UEVENT, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer udev.Close()
	if err := udev.Send(nlsend.AppendLibudev(nil, "ACTION=add\x00DEVPATH=/devices/virtual/block/loop0\x00SUBSYSTEM=block\x00SEQNUM=5\x00")); err != nil {
		t.Fatal(err)
	}
	if err := testenv.WriteUevent("lo", "change"); err != nil {
		t.Fatal(err)
	}
	e.WaitFor(t, 1, "kevent_events_total", "source", "uevent", "event", "net/change")
	e.WaitFor(t, 1, "kevent_events_total", "source", "uevent", "event", "block/add")
	e.WaitFor(t, 1, "kevent_datagrams_rejected_total", "source", "uevent", "reason", "not_kernel")
	mfs := e.Scrape(t)
	if v, ok := value(mfs, "kevent_events_total", "source", "uevent", "event", "spoofed/add"); ok {
		t.Errorf("forged uevent counted as an event: %v", v)
	}
	if v := e2e.Sum(mfs, "kevent_datagrams_received_total", "source", "uevent"); v != 3 {
		t.Errorf("datagrams received = %v, want 3", v)
	}
	e.WaitLog(t, `msg="Rejected a datagram from a sender the source does not trust; see kevent_datagrams_rejected_total" reason=not_kernel`)
}

// TestSecondSignal: SIGTERM while several sources have deep queues to read,
// then SIGTERM again. The sources read their queues together, and the
// second signal ends the exporter at once, with 128 + SIGTERM as status.
func TestSecondSignal(t *testing.T) {
	t.Parallel()
	testenv.RequireRoot(t, "usersock multicast and SIGSTOP of the exporter")
	groups := []uint32{testenv.UsersockGroup(t), testenv.UsersockGroup(t), testenv.UsersockGroup(t)}
	var cfg strings.Builder
	cfg.WriteString("sources:\n")
	for _, g := range groups {
		fmt.Fprintf(&cfg, "  - {name: q%d, protocol: usersock, groups: [%d], decoder: raw, receive_buffer_bytes: %d}\n", g, g, 32<<20)
	}
	e := e2e.Start(t, e2e.Options{Binary: exporterBinary, Config: cfg.String(), Args: []string{"--log.level=debug"}, SkipStopCheck: true})
	for _, g := range groups {
		e.WaitFor(t, 1, "kevent_source_up", "source", fmt.Sprint("q", g))
	}
	// Datagrams of 64 KiB, each of 4096 messages to decode: more than each
	// socket holds.
	var datagram []byte
	for len(datagram) < 64<<10 {
		datagram = nlsend.AppendMessage(datagram, 0x20, 0, nil)
	}
	e.Signal(t, syscall.SIGSTOP)
	for _, g := range groups {
		snd := sender(t, g)
		for range 1500 {
			if err := snd.Send(datagram); err != nil {
				t.Fatal(err)
			}
		}
	}
	e.Signal(t, syscall.SIGTERM)
	e.Signal(t, syscall.SIGCONT)
	e.WaitLog(t, `msg="Shutting down; a second signal exits at once"`)
	e.Signal(t, syscall.SIGTERM)
	err, exited := e.Wait()
	if !exited {
		t.Fatalf("exporter still running %v after a second SIGTERM; log:\n%s", e2e.Timeout, e.Logs)
	}
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 128+int(syscall.SIGTERM) {
		t.Errorf("exit: %v, want status %d; log:\n%s", err, 128+int(syscall.SIGTERM), e.Logs)
	}
	e.WaitLog(t, `msg="Signal received again: exiting at once, without waiting for the sources to stop" signal=terminated`)
	t.Logf("sources that finished stopping: %d of %d", strings.Count(e.Logs.String(), `msg="Source stopped"`), len(groups))
}
