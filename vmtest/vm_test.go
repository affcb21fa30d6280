//go:build vmtest

package vmtest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kevent-exporter/kevent_exporter/decoder"
	"github.com/kevent-exporter/kevent_exporter/internal/e2e"
)

// The tests run in the order of this file (run.sh boots one VM for all of
// them). Each loads the modules it needs and removes them at its end, so
// that one failing leaves the next a clean kernel.

// lostMetric counts the datagrams the kernel dropped at a source's socket.
const lostMetric = "kevent_datagrams_lost_total"

// burstEvents is the size of the burst in TestBurstAccounted.
const burstEvents = 100000

// keventConfig listens to the kevent module's classic protocol and group as
// classicParams sets them.
const keventConfig = `
sources:
  - name: kevent
    protocol: 29
    groups: [2]
    decoder: kevent
    receive_buffer_bytes: 8388608
`

// TestAttachUnprivileged: an unprivileged exporter started before the
// module attaches after insmod (the time it took is logged: a measurement
// under TCG, not a bound) and turns events written to
// /sys/kernel/kevent/emit into metrics; it runs as uid/gid 65534 with no
// capabilities.
func TestAttachUnprivileged(t *testing.T) {
	kevent := useModule(t, "kevent")
	e := startExporter(t, nobody, keventConfig)
	mfs := e.Scrape(t)
	up := show(mfs, "kevent_source_up", "source", "kevent")
	t.Logf("kevent_source_up{source=\"kevent\"} before insmod: %s", up)
	if up != "0" {
		t.Errorf("kevent_source_up{source=\"kevent\"} = %s before insmod, want 0", up)
	}

	t0 := time.Now()
	kevent.load(t, classicParams+" heartbeat_ms=0")
	e.WaitFor(t, 1, "kevent_source_up", "source", "kevent")
	attach := time.Since(t0)
	t.Logf("kevent_source_up{source=\"kevent\"} 1 seen %d ms after insmod", attach.Milliseconds())

	emit(t, "disk_full 42 /dev/sda1")
	emit(t, "temp_c -5")
	emit(t, "job.done:x-1 7 payload with  spaces")
	e.WaitFor(t, 1, "kevent_events_total", "source", "kevent", "event", "job.done:x-1")
	mfs = e.Scrape(t)
	check(t, mfs, 1, "kevent_events_total", "event", "disk_full", "source", "kevent")
	check(t, mfs, 42, "kevent_event_last_value", "event", "disk_full", "source", "kevent")
	check(t, mfs, 1, "kevent_event_last_payload_info", "event", "disk_full", "payload", "/dev/sda1", "source", "kevent")
	check(t, mfs, 1, "kevent_events_total", "event", "temp_c", "source", "kevent")
	check(t, mfs, -5, "kevent_event_last_value", "event", "temp_c", "source", "kevent")
	check(t, mfs, 1, "kevent_event_last_payload_info", "event", "job.done:x-1", "payload", "payload with  spaces", "source", "kevent")

	// The exporter ran unprivileged all along.
	pid := e.Cmd.Process.Pid
	st := procStatus(t, pid)
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil {
		t.Fatal(err)
	}
	total := e2e.Sum(mfs, "kevent_events_total", "source", "kevent")
	t.Logf("pid %d (%s): Uid %s, Gid %s, CapEff %s, CapPrm %s; %v events received",
		pid, strings.TrimSpace(string(comm)), st["Uid"], st["Gid"], st["CapEff"], st["CapPrm"], total)
	const ids = "65534 65534 65534 65534"
	if c := strings.TrimSpace(string(comm)); c != "kevent_exporter" {
		t.Errorf("comm %q, want kevent_exporter", c)
	}
	if st["Uid"] != ids || st["Gid"] != ids {
		t.Errorf("Uid %q, Gid %q; want %q for both", st["Uid"], st["Gid"], ids)
	}
	if st["CapEff"] != "0000000000000000" || st["CapPrm"] != "0000000000000000" {
		t.Errorf("CapEff %s, CapPrm %s; want no capabilities", st["CapEff"], st["CapPrm"])
	}
	if total <= 0 {
		t.Errorf("%v events received", total)
	}
	if !t.Failed() {
		t.Logf("unprivileged exporter attached %d ms after insmod; disk_full=42 /dev/sda1 and 2 more events exported; uid/gid 65534, no capabilities",
			attach.Milliseconds())
	}
}

// TestMalformedWritesRejected: malformed writes to emit and burst fail
// with EINVAL, send nothing and leave no kernel warning.
func TestMalformedWritesRejected(t *testing.T) {
	kevent := useModule(t, "kevent")
	kevent.load(t, "heartbeat_ms=0")

	seqBefore := keventStat(t, "seq")
	emits := []string{
		"", "   ", "disk_full", "disk_full abc", "disk_full 12x", "disk_full 99999999999999999999",
		"bad/name 1", "bad$name 1", strings.Repeat("a", 65) + " 1", "name 1 " + strings.Repeat("x", 300),
		"burst-only 1 2 3",
	}
	for _, in := range emits {
		err := kwrite(sysKevent+"/emit", in)
		switch {
		case in == "burst-only 1 2 3":
			// A valid emit (payload "2 3"), the one write that sends.
			if err != nil {
				t.Errorf("emit %q: %v, want success", in, err)
			}
		case err == nil:
			t.Errorf("emit %q accepted", in)
		case !errors.Is(err, unix.EINVAL):
			t.Errorf("emit %q: %v, want EINVAL", in, err)
		}
	}
	bursts := []string{
		"", "flood", "flood 1", "flood 1 0", "flood 1 -3", "flood 1 x", "flood 1 10000001",
		"flood 1 2 extra", "fl ood 1 2",
	}
	for _, in := range bursts {
		err := kwrite(sysKevent+"/burst", in)
		switch {
		case err == nil:
			t.Errorf("burst %q accepted", in)
		case !errors.Is(err, unix.EINVAL):
			t.Errorf("burst %q: %v, want EINVAL", in, err)
		}
	}
	seqAfter := keventStat(t, "seq")
	if seqAfter != seqBefore+1 {
		t.Errorf("seq moved from %d to %d, want by 1 (the one valid write)", seqBefore, seqAfter)
	}
	if w := dmesgLines(t, "WARNING:", "BUG:", "Oops", "Call Trace"); len(w) > 0 {
		t.Errorf("kernel warning in dmesg:\n%s", strings.Join(w, "\n"))
	}
	files, _ := filepath.Glob(sysKevent + "/*")
	for _, f := range files {
		if fi, err := os.Stat(f); err == nil {
			t.Logf("  %s %s", fi.Mode(), f)
		}
	}
	if !t.Failed() {
		t.Logf("%d malformed emit and %d malformed burst writes rejected with EINVAL; seq %d -> %d; no kernel warning",
			len(emits)-1, len(bursts), seqBefore, seqAfter)
	}
}

// TestBurstAccounted: a burst of burstEvents events is accounted for
// exactly (received + lost, and sequence gaps = lost) by a source with an
// 8 MiB receive buffer and by one with a 4 KiB buffer that must overflow.
func TestBurstAccounted(t *testing.T) {
	kevent := useModule(t, "kevent")
	e := startExporter(t, nobody, keventConfig+`
  # The same events through a tiny receive buffer: the kernel drops
  # messages, and they must all be accounted for.
  - name: kevent_small
    protocol: 29
    groups: [2]
    decoder: kevent
    receive_buffer_bytes: 4096
`)
	kevent.load(t, classicParams+" heartbeat_ms=0")
	sources := []string{"kevent", "kevent_small"}
	for _, src := range sources {
		e.WaitFor(t, 1, "kevent_source_up", "source", src)
	}

	type counts struct {
		received, lost, missing float64
		absent                  string // the names of the series missing
	}
	countsOf := func(src string) counts {
		mfs, err := e.TryScrape()
		if err != nil {
			return counts{absent: err.Error()}
		}
		var c counts
		var absent []string
		for _, s := range []struct {
			v      *float64
			name   string
			labels []string
		}{
			{&c.received, "kevent_events_total", []string{"source", src, "event", "flood"}},
			{&c.lost, lostMetric, []string{"source", src}},
			{&c.missing, "kevent_sequence_missing_total", []string{"source", src}},
		} {
			var ok bool
			if *s.v, ok = e2e.Value(mfs, s.name, s.labels...); !ok {
				absent = append(absent, series(s.name, s.labels...))
			}
		}
		c.absent = strings.Join(absent, ", ")
		return c
	}

	t0 := time.Now()
	err := kwrite(sysKevent+"/burst", fmt.Sprintf("flood 1 %d", burstEvents))
	t1 := time.Now()
	if err != nil {
		t.Fatalf("burst: %v", err)
	}
	// Before the sync event below, wait until the exporter has drained its
	// sockets, so that the sync event is not dropped too: until the counts
	// add up, or stop moving for 3 scrapes in a row.
	var prev [2]counts
	stable := 0
	poll(60*time.Second, 300*time.Millisecond, func() bool {
		cur := [2]counts{countsOf(sources[0]), countsOf(sources[1])}
		if cur == prev {
			stable++
		} else {
			stable = 0
		}
		prev = cur
		return stable >= 3 ||
			cur[0].received+cur[0].lost >= burstEvents && cur[1].received+cur[1].lost >= burstEvents
	})
	// A gap is seen only when a later event arrives: if the burst's last
	// messages were dropped, only the next event reveals them. Send one.
	emit(t, "sync 0")
	e.WaitFor(t, 1, "kevent_events_total", "source", "kevent", "event", "sync")
	if !poll(10*time.Second, 20*time.Millisecond, func() bool {
		mfs, err := e.TryScrape()
		if err != nil {
			return false
		}
		v, _ := e2e.Value(mfs, "kevent_events_total", "source", "kevent_small", "event", "sync")
		return v == 1
	}) {
		t.Log("the sync event did not reach kevent_small")
	}
	t2 := time.Now()
	t.Logf("burst write took %d ms, counts settled %d ms later", t1.Sub(t0).Milliseconds(), t2.Sub(t1).Milliseconds())
	t.Logf("module stats: %s", stats())

	var summary []string
	var small counts
	for _, src := range sources {
		c := countsOf(src)
		t.Logf("source %s: received %v, lost %v, sequence_missing %v", src, c.received, c.lost, c.missing)
		if c.absent != "" {
			t.Errorf("source %s: absent: %s", src, c.absent)
		}
		if c.received+c.lost != burstEvents || c.missing != c.lost {
			t.Errorf("source %s: received %v + lost %v != %d or sequence_missing %v != lost",
				src, c.received, c.lost, burstEvents, c.missing)
		}
		summary = append(summary, fmt.Sprintf("%s %v+%v", src, c.received, c.lost))
		small = c
	}
	// The 4 KiB buffer must have overflowed, or the accounting was not tested.
	if small.lost <= 0 {
		t.Error("kevent_small lost nothing")
	}
	if !t.Failed() {
		t.Logf("burst of %d accounted for exactly (received+lost): %s = %d each; sequence_missing = lost",
			burstEvents, strings.Join(summary, ", "), burstEvents)
	}
}

// TestNetdevEvents: the module's netdevice notifier events for a dummy
// interface (lo when there is no dummy driver) are exported.
func TestNetdevEvents(t *testing.T) {
	kevent := useModule(t, "kevent")
	e := startExporter(t, nobody, keventConfig)
	kevent.load(t, classicParams+" heartbeat_ms=0")
	e.WaitFor(t, 1, "kevent_source_up", "source", "kevent")

	// dummy is a module in Debian's cloud kernel (run.sh copies it), built
	// in elsewhere.
	if _, err := os.Stat(filepath.Join(*moduleDir, "dummy.ko")); err == nil {
		useModule(t, "dummy").load(t, "numdummies=0")
	}
	var dev string
	var events []string
	ifindex := func() string {
		b, err := os.ReadFile("/sys/class/net/" + dev + "/ifindex")
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	var index string
	if err := ip("link", "add", "d0", "type", "dummy"); err == nil {
		dev = "d0"
		index = ifindex()
		for _, args := range [][]string{{"link", "set", "d0", "up"}, {"link", "set", "d0", "down"}, {"link", "del", "d0"}} {
			if err := ip(args...); err != nil {
				t.Fatal(err)
			}
		}
		events = []string{"netdev_register", "netdev_up", "netdev_down", "netdev_unregister"}
	} else {
		t.Logf("no dummy interface (%v): using lo", err)
		dev = "lo"
		index = ifindex()
		for _, args := range [][]string{{"link", "set", "lo", "down"}, {"link", "set", "lo", "up"}} {
			if err := ip(args...); err != nil {
				t.Fatal(err)
			}
		}
		events = []string{"netdev_down", "netdev_up"}
	}
	want, err := strconv.ParseFloat(index, 64)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range events {
		e.WaitFor(t, 1, "kevent_event_last_payload_info", "event", ev, "payload", dev, "source", "kevent")
		// The interface is the event's object too (KEVENT_A_OBJECT).
		e.WaitFor(t, 1, "kevent_event_last_payload_info", "event", ev, "object", dev, "source", "kevent")
		mfs := e.Scrape(t)
		t.Logf("  %s: total %s, last value %s, payload %s", ev,
			show(mfs, "kevent_events_total", "event", ev, "source", "kevent"),
			show(mfs, "kevent_event_last_value", "event", ev, "source", "kevent"), dev)
		if v, _ := e2e.Value(mfs, "kevent_event_last_value", "event", ev, "source", "kevent"); v != want {
			t.Errorf("%s: last value %v, want ifindex %v", ev, v, want)
		}
	}
	if !t.Failed() {
		t.Logf("netdevice events for %s (ifindex %s) exported: %s", dev, index, strings.Join(events, " "))
	}
}

// TestRmmodRefusedWhileHeld: rmmod kevent fails while the exporter holds a
// socket of the module's classic protocol, and succeeds once it is stopped.
// (A listener of the generic netlink family does not hold the module: see
// TestGenlRmmodWhileJoined.)
func TestRmmodRefusedWhileHeld(t *testing.T) {
	kevent := useModule(t, "kevent")
	e := startExporter(t, nobody, keventConfig)
	kevent.load(t, classicParams+" heartbeat_ms=0")
	e.WaitFor(t, 1, "kevent_source_up", "source", "kevent")

	errHeld := kevent.remove()
	held := kevent.loaded()
	t.Logf("rmmod while the exporter runs: %v; still loaded: %v", errHeld, held)
	t.Logf("/proc/modules: %s", procModules("kevent"))
	if errHeld == nil || !held {
		t.Fatalf("rmmod while the exporter holds protocol 29: %v (still loaded: %v), want refused", errHeld, held)
	}

	if err, ok := e.Stop(); !ok || err != nil {
		t.Fatalf("stopping the exporter: %v (exited: %v); log:\n%s", err, ok, e.Logs)
	}
	err := kevent.remove()
	_, sysErr := os.Stat(sysKevent)
	gone := !kevent.loaded() && errors.Is(sysErr, os.ErrNotExist)
	t.Logf("rmmod after stopping the exporter: %v; unloaded: %v", err, gone)
	if l := dmesgLines(t, "kevent: unloaded"); len(l) > 0 {
		t.Logf("  %s", l[len(l)-1])
	}
	if err != nil || !gone {
		t.Fatalf("rmmod after the exporter stopped: %v (unloaded: %v)", err, gone)
	}
	t.Logf("rmmod refused while the listener held the protocol (%v), succeeded after it stopped", errHeld)
}

// TestSeedBlogScenario: the blog's scenario. A root exporter with a raw
// source on protocol 29 group 2, started before the seed module, receives
// its "Hello from kernel" (type NLMSG_DONE, no NUL) 10 s after insmod.
func TestSeedBlogScenario(t *testing.T) {
	seed := useModule(t, "seed")
	e := startExporter(t, nil, `
sources:
  - name: seed
    protocol: 29
    groups: [2]
    decoder: raw
`)
	t0 := time.Now()
	seed.load(t, "")
	insmod := time.Since(t0)
	e.WaitFor(t, 1, "kevent_source_up", "source", "seed")
	attach := time.Since(t0)
	t.Logf("insmod seed.ko returned after %d ms; source attached after %d ms", insmod.Milliseconds(), attach.Milliseconds())
	if insmod >= 5*time.Second {
		t.Errorf("insmod seed.ko took %d ms, want under 5000", insmod.Milliseconds())
	}

	e.WaitFor(t, 1, "kevent_events_total", "event", "done", "source", "seed")
	got := time.Since(t0)
	mfs := e.Scrape(t)
	check(t, mfs, 1, "kevent_events_total", "event", "done", "source", "seed")
	check(t, mfs, 1, "kevent_event_last_payload_info", "event", "done", "payload", "Hello from kernel", "source", "seed")
	t.Logf("message exported %d ms after insmod", got.Milliseconds())
	if got < 9*time.Second {
		t.Errorf("message exported %d ms after insmod, want at least 9000 (the module sends it after 10 s)", got.Milliseconds())
	}
	if !t.Failed() {
		t.Logf("root exporter with raw source got 'Hello from kernel' as event done %d ms after insmod", got.Milliseconds())
	}
}

// TestModuleParameters: out-of-range parameters, no transport at all and a
// protocol that is taken fail insmod and leave nothing registered; by
// default the module registers no classic protocol (it loads while seed
// holds 29, and /proc/net/netlink shows no protocol 29 socket), and insmod
// then rmmod work; protocol=30 group=5 heartbeat_ms=200 sends heartbeats to
// an unprivileged exporter.
func TestModuleParameters(t *testing.T) {
	seed := useModule(t, "seed")
	kevent := useModule(t, "kevent")
	seed.load(t, "") // holds protocol 29

	for _, params := range []string{
		"protocol=16", "protocol=32", "protocol=-1", "group=0", "group=33", "protocol=abc",
		"genl=0", "genl=0 group=2", classicParams,
	} {
		what := params
		if params == classicParams {
			what += " (protocol 29, held by seed)"
		}
		if err := kevent.tryLoad(params); err == nil {
			t.Errorf("insmod kevent.ko %s: accepted", what)
			if err := kevent.remove(); err != nil {
				t.Error(err)
			}
		} else {
			t.Logf("  insmod kevent.ko %s: %v", what, errors.Unwrap(err))
		}
		if _, err := os.Stat(sysKevent); kevent.loaded() || err == nil {
			t.Errorf("insmod kevent.ko %s left something registered (loaded: %v, %s: %v)", what, kevent.loaded(), sysKevent, err)
		}
		if _, err := genlFamily(decoder.KeventGenlFamily); !errors.Is(err, unix.ENOENT) {
			t.Errorf("insmod kevent.ko %s left the family %s registered (CTRL_CMD_GETFAMILY: %v)", what, decoder.KeventGenlFamily, err)
		}
	}
	for _, l := range dmesgLines(t, "is out of range", "kevent: cannot", "leaves no transport") {
		t.Logf("  %s", l)
	}

	// The default: the family only, no classic protocol to collide on.
	kevent.load(t, "")
	t.Logf("insmod kevent.ko (defaults) while seed holds protocol 29: loaded; protocol 29 sockets (eth pid groups): %q", netlinkSockets(t, 29))
	if err := kevent.remove(); err != nil {
		t.Fatal(err)
	}
	if err := seed.remove(); err != nil {
		t.Error(err)
	}
	kevent.load(t, "")
	var params []string
	for _, p := range []string{"genl", "protocol", "group", "heartbeat_ms"} {
		b, err := os.ReadFile("/sys/module/kevent/parameters/" + p)
		if err != nil {
			t.Fatal(err)
		}
		params = append(params, p+"="+strings.TrimSpace(string(b)))
	}
	socks := netlinkSockets(t, 29)
	t.Logf("insmod kevent.ko (defaults): parameters %s; protocol 29 sockets: %q", strings.Join(params, " "), socks)
	if want := "genl=Y protocol=0 group=2 heartbeat_ms=10000"; strings.Join(params, " ") != want {
		t.Errorf("default parameters %s, want %s", strings.Join(params, " "), want)
	}
	if len(socks) > 0 {
		t.Errorf("protocol 29 sockets after a default insmod: %q", socks)
	}
	f := keventFamily(t)
	if err := kevent.remove(); err != nil {
		t.Fatalf("rmmod after a default insmod: %v", err)
	}
	t.Logf("default insmod: family %s id %d, no classic protocol; rmmod: ok", f.Name, f.ID)

	e := startExporter(t, nobody, `
sources:
  - name: hb
    protocol: 30
    groups: [5]
    decoder: kevent
`)
	kevent.load(t, "protocol=30 group=5 heartbeat_ms=200")
	params = nil
	for _, p := range []string{"genl", "protocol", "group", "heartbeat_ms"} {
		b, err := os.ReadFile("/sys/module/kevent/parameters/" + p)
		if err != nil {
			t.Fatal(err)
		}
		params = append(params, p+"="+strings.TrimSpace(string(b)))
	}
	t.Logf("parameters: %s", strings.Join(params, " "))

	var hb, n, missing float64
	var haveMissing bool
	e2e.Eventually(t, "the fifth heartbeat is exported", func() bool {
		mfs, err := e.TryScrape()
		if err != nil {
			return false
		}
		hb, _ = e2e.Value(mfs, "kevent_event_last_value", "event", "heartbeat", "source", "hb")
		n, _ = e2e.Value(mfs, "kevent_events_total", "event", "heartbeat", "source", "hb")
		missing, haveMissing = e2e.Value(mfs, "kevent_sequence_missing_total", "source", "hb")
		return hb >= 5
	})
	t.Logf("heartbeats: last value %v, received %v, sequence_missing %v (present: %v)", hb, n, missing, haveMissing)
	if hb < 5 || n < 3 || !haveMissing || missing != 0 {
		t.Errorf("heartbeats: last value %v (want >= 5), received %v (want >= 3), sequence_missing %v (present %v, want 0)",
			hb, n, missing, haveMissing)
	}
	if !t.Failed() {
		t.Log("bad parameters, no transport and a taken protocol fail insmod cleanly; the default registers no classic protocol; protocol=30 group=5 heartbeat_ms=200 heartbeats exported")
	}
}
