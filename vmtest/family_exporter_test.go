//go:build vmtest

package vmtest

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kevent-exporter/kevent_exporter/internal/e2e"
)

// familyConfig follows the module's generic netlink family by name, through
// a large buffer and through a tiny one that must lose messages in a burst.
const familyConfig = `
sources:
  - name: fam
    family: kevent
    groups: [events]
    decoder: kevent
    receive_buffer_bytes: 8388608
  - name: fam_small
    family: kevent
    groups: [events]
    decoder: kevent
    receive_buffer_bytes: 4096
`

// TestFamilyLifecycle runs an unprivileged exporter on the module's family
// across insmod, a burst, rmmod while it runs and insmod again: it attaches
// each time (how long it took is logged), accounts for the burst exactly, goes down at
// once at rmmod without holding the module, and the same process counts
// on, the new instance's sequence a reset rather than a loss.
func TestFamilyLifecycle(t *testing.T) {
	kevent := useModule(t, "kevent")
	e := startExporter(t, nobody, familyConfig)
	e.WaitFor(t, 0, "kevent_source_up", "source", "fam")
	e.WaitLog(t, `source=fam family=kevent groups=events msg="Generic netlink family not registered`)
	// Waiting for a module it never had: no alert's condition.
	mfs := e.Scrape(t)
	check(t, mfs, 1, "kevent_source_state", "source", "fam", "state", "waiting")
	check(t, mfs, 0, "kevent_source_attachments_total", "source", "fam")

	attach := func(what string) {
		t.Helper()
		t0 := time.Now()
		kevent.load(t, "heartbeat_ms=0")
		for _, src := range []string{"fam", "fam_small"} {
			e.WaitFor(t, 1, "kevent_source_up", "source", src)
		}
		t.Logf("%s: both family sources up %d ms after insmod", what, time.Since(t0).Milliseconds())
	}
	attach("first insmod")

	emit(t, "disk_full 42 /dev/sda1")
	e.WaitFor(t, 1, "kevent_events_total", "source", "fam", "event", "disk_full")
	mfs = e.Scrape(t)
	check(t, mfs, 42, "kevent_event_last_value", "source", "fam", "event", "disk_full")
	check(t, mfs, 1, "kevent_event_last_payload_info", "source", "fam", "event", "disk_full", "payload", "/dev/sda1")

	// A burst, then "sync" events to reveal a loss at its very end: the
	// sequence tracker sees a gap only when a later message arrives. The
	// kernel drops every multicast to a netlink socket that overflowed
	// until its reader has emptied it, so the first sync waits until the
	// sockets are empty, and one more is sent each second until both
	// sources have one (a dropped sync is accounted as lost).
	if err := kwrite(sysKevent+"/burst", fmt.Sprintf("flood 1 %d", burstEvents)); err != nil {
		t.Fatal(err)
	}
	e2e.Eventually(t, "the generic netlink sockets are empty after the burst", func() bool { return genlQueued(t) == 0 },
		e2e.Lazy(func() string { return fmt.Sprintf("%d bytes queued", genlQueued(t)) }))
	syncs := 0
	synced := func() bool {
		mfs, err := e.TryScrape()
		if err != nil {
			return false
		}
		for _, src := range []string{"fam", "fam_small"} {
			if v, _ := e2e.Value(mfs, "kevent_events_total", "source", src, "event", "sync"); v < 1 {
				return false
			}
		}
		return true
	}
	var emitted time.Time
	e2e.Eventually(t, "both sources count a sync event, one sent each second", func() bool {
		if synced() {
			return true
		}
		if time.Since(emitted) >= time.Second {
			emit(t, "sync 0")
			syncs++
			emitted = time.Now()
		}
		return false
	}, e2e.Lazy(func() string { return fmt.Sprint(syncs, " sent") }))
	sent := float64(burstEvents + syncs)
	for _, src := range []string{"fam", "fam_small"} {
		var flood, sync, lost, missing float64
		e2e.Eventually(t, fmt.Sprintf("source %s accounts for the %.0f sent, and its sequence_missing for its loss", src, sent), func() bool {
			mfs, err := e.TryScrape()
			if err != nil {
				return false
			}
			flood, _ = e2e.Value(mfs, "kevent_events_total", "source", src, "event", "flood")
			sync, _ = e2e.Value(mfs, "kevent_events_total", "source", src, "event", "sync")
			lost, _ = e2e.Value(mfs, lostMetric, "source", src)
			missing, _ = e2e.Value(mfs, "kevent_sequence_missing_total", "source", src)
			return flood+sync+lost == sent && missing == lost
		}, e2e.Lazy(func() string {
			return fmt.Sprintf("received %.0f + %.0f, lost %.0f, sequence_missing %.0f", flood, sync, lost, missing)
		}))
		t.Logf("source %s: burst of %d and %d sync: received %.0f + %.0f, lost %.0f, sequence_missing %.0f", src, burstEvents, syncs, flood, sync, lost, missing)
		if src == "fam_small" && lost == 0 {
			t.Errorf("source %s lost nothing through a 4096-byte buffer: the accounting went untested", src)
		}
	}

	// rmmod while the exporter runs: the family does not pin the module.
	t0 := time.Now()
	if err := kevent.remove(); err != nil {
		t.Fatalf("rmmod while the exporter is joined to the family: %v", err)
	}
	e.WaitFor(t, 0, "kevent_source_up", "source", "fam")
	t.Logf("rmmod succeeded while the exporter ran; source down %d ms later", time.Since(t0).Milliseconds())
	e.WaitLog(t, "Generic netlink family unregistered")
	// Waiting after having attached: KeventSourceDetached's condition.
	mfs = e.Scrape(t)
	check(t, mfs, 1, "kevent_source_state", "source", "fam", "state", "waiting")
	check(t, mfs, 1, "kevent_source_attachments_total", "source", "fam")

	attach("second insmod")
	emit(t, "disk_full 43 /dev/sdb1")
	e.WaitFor(t, 2, "kevent_events_total", "source", "fam", "event", "disk_full")
	mfs = e.Scrape(t)
	check(t, mfs, 43, "kevent_event_last_value", "source", "fam", "event", "disk_full")
	check(t, mfs, 1, "kevent_sequence_resets_total", "source", "fam")
	check(t, mfs, 0, "kevent_sequence_missing_total", "source", "fam")
	check(t, mfs, 2, "kevent_source_attachments_total", "source", "fam")
	if n := strings.Count(e.Logs.String(), "Generic netlink family registered, source attached"); n < 2 {
		t.Errorf("the exporter logged %d attachments, want one per source at the second insmod at least", n)
	}
}

// TestFamilyAndClassic loads the module with both transports: a source on
// the family and one on the classic protocol each count the module's
// events once.
func TestFamilyAndClassic(t *testing.T) {
	kevent := useModule(t, "kevent")
	kevent.load(t, "protocol=29 group=2 heartbeat_ms=0")
	e := startExporter(t, nobody, `
sources:
  - {name: fam, family: kevent, groups: [events], decoder: kevent}
  - {name: classic, protocol: 29, groups: [2], decoder: kevent}
`)
	for _, src := range []string{"fam", "classic"} {
		e.WaitFor(t, 1, "kevent_source_up", "source", src)
	}
	emit(t, "both 7 x")
	for _, src := range []string{"fam", "classic"} {
		e.WaitFor(t, 1, "kevent_events_total", "source", src, "event", "both")
	}
	mfs := e.Scrape(t)
	for _, src := range []string{"fam", "classic"} {
		check(t, mfs, 0, "kevent_decode_errors_total", "source", src)
	}
	t.Logf("one emit counted once by the family source and once by the classic source")
}

// genlQueued returns the bytes queued on the generic netlink sockets of the
// namespace: the Rmem column of /proc/net/netlink.
func genlQueued(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/net/netlink")
	if err != nil {
		t.Fatal(err)
	}
	queued := 0
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 5 || f[1] != "16" {
			continue
		}
		n, err := strconv.Atoi(f[4])
		if err != nil {
			t.Fatalf("/proc/net/netlink: Rmem %q: %v", f[4], err)
		}
		queued += n
	}
	return queued
}
