package collector

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kevent-exporter/kevent_exporter/decoder"
	"github.com/kevent-exporter/kevent_exporter/netlinksrc/srcinfo"
)

// newTestSource returns a source on a fixed clock with fixed socket stats.
func newTestSource(name string, opts SourceOptions, st srcinfo.Stats) *SourceMetrics {
	opts.Stats = func() srcinfo.Stats { return st }
	s := NewSourceMetrics(name, opts)
	s.now = func() time.Time { return time.Unix(1700000000, 500000000) }
	return s
}

func ev(name string, payload string) decoder.Event {
	e := decoder.Event{Name: []byte(name), Payload: []byte(payload)}
	return e
}

func evValue(name string, v float64, payload string) decoder.Event {
	e := ev(name, payload)
	e.Value, e.HasValue = v, true
	return e
}

func gatherCompare(t *testing.T, sources []*SourceMetrics, want string, names ...string) {
	t.Helper()
	e := New()
	e.SetSources(sources)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(e)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), names...); err != nil {
		t.Fatal(err)
	}
}

func TestExposition(t *testing.T) {
	s := newTestSource("seed", SourceOptions{PayloadInfo: true}, srcinfo.Stats{
		State: srcinfo.StateUp, Attachments: 2, GroupsJoined: 1, ReceiveBufferBytes: 16777216, Datagrams: 5, Overruns: 2, Lost: 7,
		Rejected: [srcinfo.NumRejectReasons]uint64{srcinfo.RejectNotKernel: 1}, DropReadErrors: 3,
	})
	s.Record([]decoder.Event{ev("done", "Hello from kernel")}, 36, 0)
	s.Record([]decoder.Event{evValue("temp", 41, "41"), evValue("temp", 42.5, "42.5")}, 64, 1)
	s.Record(nil, 10, 1)

	want := `
# HELP kevent_datagrams_lost_total Datagrams the kernel dropped at the source's socket because its receive queue was full, and datagrams still queued when the source stopped that could not be decoded in time. The kernel drops whole datagrams: received + lost is every datagram multicast to the source.
# TYPE kevent_datagrams_lost_total counter
kevent_datagrams_lost_total{source="seed"} 7
# HELP kevent_datagrams_received_total Datagrams read from the source's socket, rejected ones included.
# TYPE kevent_datagrams_received_total counter
kevent_datagrams_received_total{source="seed"} 5
# HELP kevent_datagrams_rejected_total Datagrams not decoded because the source does not trust their sender (not the kernel, or not root); for a family source also the generic netlink controller's notifications not sent by the kernel, which are not in datagrams_received_total.
# TYPE kevent_datagrams_rejected_total counter
kevent_datagrams_rejected_total{reason="no_credentials",source="seed"} 0
kevent_datagrams_rejected_total{reason="not_kernel",source="seed"} 1
kevent_datagrams_rejected_total{reason="not_root",source="seed"} 0
# HELP kevent_decode_errors_total Malformed messages that could not be decoded into events.
# TYPE kevent_decode_errors_total counter
kevent_decode_errors_total{source="seed"} 2
# HELP kevent_event_last_payload_info Payload of the last event of this name and object, truncated to 256 bytes of valid UTF-8.
# TYPE kevent_event_last_payload_info gauge
kevent_event_last_payload_info{event="done",object="",payload="Hello from kernel",source="seed"} 1
kevent_event_last_payload_info{event="temp",object="",payload="42.5",source="seed"} 1
# HELP kevent_event_last_timestamp_seconds Unix time the last event of this name and object was received.
# TYPE kevent_event_last_timestamp_seconds gauge
kevent_event_last_timestamp_seconds{event="done",object="",source="seed"} 1.7000000005e+09
kevent_event_last_timestamp_seconds{event="temp",object="",source="seed"} 1.7000000005e+09
# HELP kevent_event_last_value Value carried by the last event of this name and object.
# TYPE kevent_event_last_value gauge
kevent_event_last_value{event="temp",object="",source="seed"} 42.5
# HELP kevent_events_total Events received, by source, event name and the object the event is about (empty where the source names none).
# TYPE kevent_events_total counter
kevent_events_total{event="done",object="",source="seed"} 1
kevent_events_total{event="temp",object="",source="seed"} 2
# HELP kevent_objects_forgotten_total Objects the kernel removed (a deleted interface, a renamed one's former name) whose series were dropped after the source's forget_after.
# TYPE kevent_objects_forgotten_total counter
kevent_objects_forgotten_total{source="seed"} 0
# HELP kevent_receive_overruns_total Receive queue overflows (ENOBUFS) of the source's socket; each episode may drop many messages.
# TYPE kevent_receive_overruns_total counter
kevent_receive_overruns_total{source="seed"} 2
# HELP kevent_received_bytes_total Bytes of netlink datagrams received.
# TYPE kevent_received_bytes_total counter
kevent_received_bytes_total{source="seed"} 110
# HELP kevent_source_attachments_total Times the source's socket was opened and joined to its groups: a source not up that has attached before lost its module or family.
# TYPE kevent_source_attachments_total counter
kevent_source_attachments_total{source="seed"} 2
# HELP kevent_source_drop_count_read_errors_total Failed reads of the kernel's drop counter (SO_MEMINFO); while they fail, kevent_datagrams_lost_total is stale.
# TYPE kevent_source_drop_count_read_errors_total counter
kevent_source_drop_count_read_errors_total{source="seed"} 3
# HELP kevent_source_event_names Distinct (event, object) pairs the source keeps, including the overflow event.
# TYPE kevent_source_event_names gauge
kevent_source_event_names{source="seed"} 2
# HELP kevent_source_groups_joined Multicast groups the source's socket joined; fewer than configured when the kernel refused some.
# TYPE kevent_source_groups_joined gauge
kevent_source_groups_joined{source="seed"} 1
# HELP kevent_source_max_event_names Bound on distinct (event, object) pairs, the overflow event included; events past it count under event="__overflow__".
# TYPE kevent_source_max_event_names gauge
kevent_source_max_event_names{source="seed"} 2000
# HELP kevent_source_receive_buffer_bytes Receive buffer size the kernel granted the source's socket.
# TYPE kevent_source_receive_buffer_bytes gauge
kevent_source_receive_buffer_bytes{source="seed"} 1.6777216e+07
# HELP kevent_source_required Whether the source is configured required (1): its waiting for its module is then an alert.
# TYPE kevent_source_required gauge
kevent_source_required{source="seed"} 0
# HELP kevent_source_state The source's state, 1 for the current one: up; waiting for its protocol or generic netlink family (its module is not loaded); denied (a privilege is missing); failed (any other error).
# TYPE kevent_source_state gauge
kevent_source_state{source="seed",state="denied"} 0
kevent_source_state{source="seed",state="failed"} 0
kevent_source_state{source="seed",state="up"} 1
kevent_source_state{source="seed",state="waiting"} 0
# HELP kevent_source_up Whether the source's netlink socket is open and subscribed (1) or not (0).
# TYPE kevent_source_up gauge
kevent_source_up{source="seed"} 1
`
	gatherCompare(t, []*SourceMetrics{s}, want)
}

func TestCardinalityBound(t *testing.T) {
	s := newTestSource("flood", SourceOptions{MaxEvents: 3}, srcinfo.Stats{})
	const sent = 1000
	for i := 0; i < sent; i++ {
		s.Record([]decoder.Event{ev(fmt.Sprintf("name%d", i), "")}, 16, 0)
	}
	// The first two names fill the bound with the overflow event, which
	// takes the third place and every later name.
	want := `
# HELP kevent_events_total Events received, by source, event name and the object the event is about (empty where the source names none).
# TYPE kevent_events_total counter
kevent_events_total{event="__overflow__",object="",source="flood"} 998
kevent_events_total{event="name0",object="",source="flood"} 1
kevent_events_total{event="name1",object="",source="flood"} 1
# HELP kevent_source_drop_count_read_errors_total Failed reads of the kernel's drop counter (SO_MEMINFO); while they fail, kevent_datagrams_lost_total is stale.
# TYPE kevent_source_drop_count_read_errors_total counter
kevent_source_drop_count_read_errors_total{source="seed"} 3
# HELP kevent_source_event_names Distinct (event, object) pairs the source keeps, including the overflow event.
# TYPE kevent_source_event_names gauge
kevent_source_event_names{source="flood"} 3
`
	gatherCompare(t, []*SourceMetrics{s}, want, "kevent_events_total", "kevent_source_event_names")
	if n := len(s.events); n != 3 {
		t.Fatalf("source keeps %d names, want 3", n)
	}
}

func TestPayloadInfoReplaced(t *testing.T) {
	s := newTestSource("p", SourceOptions{PayloadInfo: true}, srcinfo.Stats{})
	for _, p := range []string{"first", "second", "third"} {
		s.Record([]decoder.Event{ev("e", p)}, 16, 0)
		// Scrape between payloads: each scrape must show only the newest.
		want := fmt.Sprintf(`
# HELP kevent_event_last_payload_info Payload of the last event of this name and object, truncated to 256 bytes of valid UTF-8.
# TYPE kevent_event_last_payload_info gauge
kevent_event_last_payload_info{event="e",object="",payload=%q,source="p"} 1
`, p)
		gatherCompare(t, []*SourceMetrics{s}, want, "kevent_event_last_payload_info")
	}
}

func TestPayloadInfoOff(t *testing.T) {
	s := newTestSource("p", SourceOptions{PayloadInfo: false}, srcinfo.Stats{})
	s.Record([]decoder.Event{ev("e", "x")}, 16, 0)
	e := New()
	e.SetSources([]*SourceMetrics{s})
	if n := testutil.CollectAndCount(e, "kevent_event_last_payload_info"); n != 0 {
		t.Fatalf("payload info series = %d with payload_info off, want 0", n)
	}
}

func TestLabelSanitising(t *testing.T) {
	s := newTestSource("u", SourceOptions{PayloadInfo: true}, srcinfo.Stats{})
	long := strings.Repeat("x", 300)
	s.Record([]decoder.Event{
		ev("bad\xffname", "caf\xc3"),
		// Two invalid names that sanitise alike count as one series.
		ev("bad\xfename", long),
	}, 32, 0)
	want := fmt.Sprintf(`
# HELP kevent_event_last_payload_info Payload of the last event of this name and object, truncated to 256 bytes of valid UTF-8.
# TYPE kevent_event_last_payload_info gauge
kevent_event_last_payload_info{event="bad�name",object="",payload=%q,source="u"} 1
# HELP kevent_events_total Events received, by source, event name and the object the event is about (empty where the source names none).
# TYPE kevent_events_total counter
kevent_events_total{event="bad�name",object="",source="u"} 2
`, strings.Repeat("x", MaxPayloadBytes))
	gatherCompare(t, []*SourceMetrics{s}, want, "kevent_events_total", "kevent_event_last_payload_info")
}

func TestSequenceMetrics(t *testing.T) {
	s := newTestSource("k", SourceOptions{}, srcinfo.Stats{})
	seq := func(inst, n uint64) decoder.Event {
		e := ev("x", "")
		e.HasSeq, e.Instance, e.Seq = true, inst, n
		return e
	}
	s.Record([]decoder.Event{seq(1, 10), seq(1, 11), seq(1, 15), seq(1, 13), seq(1, 13), seq(2, 1), seq(2, 2)}, 16, 0)
	want := `
# HELP kevent_sequence_duplicates_total Messages whose sequence number had already been received.
# TYPE kevent_sequence_duplicates_total counter
kevent_sequence_duplicates_total{source="k"} 1
# HELP kevent_sequence_missing_total Sequence numbers skipped by a sender's messages: messages lost anywhere between sender and exporter.
# TYPE kevent_sequence_missing_total counter
kevent_sequence_missing_total{source="k"} 3
# HELP kevent_sequence_reordered_total Messages that arrived after a later sequence number, filling a gap already counted as missing.
# TYPE kevent_sequence_reordered_total counter
kevent_sequence_reordered_total{source="k"} 1
# HELP kevent_sequence_resets_total Sender instance changes (e.g. a module reload); sequence tracking restarts without counting loss.
# TYPE kevent_sequence_resets_total counter
kevent_sequence_resets_total{source="k"} 1
`
	gatherCompare(t, []*SourceMetrics{s}, want, "kevent_sequence_duplicates_total", "kevent_sequence_missing_total", "kevent_sequence_reordered_total", "kevent_sequence_resets_total")
}

func TestPromlint(t *testing.T) {
	s := newTestSource("lint", SourceOptions{PayloadInfo: true}, srcinfo.Stats{State: srcinfo.StateUp, Rejected: [srcinfo.NumRejectReasons]uint64{srcinfo.RejectNotKernel: 1}})
	e := evValue("x", 1, "p")
	e.HasSeq, e.Instance, e.Seq = true, 1, 1
	s.Record([]decoder.Event{e}, 16, 0)
	c := New()
	c.SetSources([]*SourceMetrics{s})
	problems, err := testutil.CollectAndLint(c)
	if err != nil {
		t.Fatal(err)
	}
	if len(problems) > 0 {
		t.Fatalf("promlint problems: %v", problems)
	}
	// Every metric the collector describes is exercised above: one series
	// each, but one per state for kevent_source_state and one per reason
	// for kevent_datagrams_rejected_total.
	descs := make(chan *prometheus.Desc, 32)
	c.Describe(descs)
	close(descs)
	if got, want := testutil.CollectAndCount(c), len(descs)-2+int(srcinfo.NumStates)+int(srcinfo.NumRejectReasons); got != want {
		t.Fatalf("collected %d series of %d described metrics, want %d", got, len(descs), want)
	}
}

// TestSourceState: kevent_source_state has one series per state, 1 for the
// current one, beside kevent_source_up, which stays 1 only while up;
// kevent_source_required says what the configuration says.
func TestSourceState(t *testing.T) {
	const help = `# HELP kevent_source_required Whether the source is configured required (1): its waiting for its module is then an alert.
# TYPE kevent_source_required gauge
`
	for _, c := range []struct {
		st       srcinfo.State
		required bool
		up       float64
	}{
		{srcinfo.StateWaiting, false, 0},
		{srcinfo.StateUp, true, 1},
		{srcinfo.StateDenied, false, 0},
		{srcinfo.StateFailed, true, 0},
	} {
		s := newTestSource("s", SourceOptions{Required: c.required}, srcinfo.Stats{State: c.st, Attachments: 3})
		want := help + fmt.Sprintf("kevent_source_required{source=\"s\"} %v\n", boolValue(c.required))
		want += `# HELP kevent_source_state The source's state, 1 for the current one: up; waiting for its protocol or generic netlink family (its module is not loaded); denied (a privilege is missing); failed (any other error).
# TYPE kevent_source_state gauge
`
		for _, name := range []string{"denied", "failed", "up", "waiting"} {
			want += fmt.Sprintf("kevent_source_state{source=\"s\",state=%q} %v\n", name, boolValue(name == c.st.String()))
		}
		want += `# HELP kevent_source_up Whether the source's netlink socket is open and subscribed (1) or not (0).
# TYPE kevent_source_up gauge
` + fmt.Sprintf("kevent_source_up{source=\"s\"} %v\n", c.up)
		want += `# HELP kevent_source_attachments_total Times the source's socket was opened and joined to its groups: a source not up that has attached before lost its module or family.
# TYPE kevent_source_attachments_total counter
kevent_source_attachments_total{source="s"} 3
`
		gatherCompare(t, []*SourceMetrics{s}, want, "kevent_source_required", "kevent_source_state", "kevent_source_up", "kevent_source_attachments_total")
	}
}

// TestScrapeOrder adds names between scrapes: every scrape lists them in
// label order, which the registry relies on being cheap to sort.
func TestScrapeOrder(t *testing.T) {
	s := newTestSource("o", SourceOptions{}, srcinfo.Stats{})
	var want []string
	for round, names := range [][]string{{"m", "c", "x"}, {"a", "n", "z", "d"}, {}, {"b"}} {
		for _, n := range names {
			s.Record([]decoder.Event{ev(n, "")}, 16, 0)
			want = append(want, n)
		}
		slices.Sort(want)
		var got []string
		for _, sm := range s.snapshot() {
			if sm.desc == eventsDesc {
				got = append(got, sm.labels[0].GetValue())
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("round %d: events in order %v, want %v", round, got, want)
		}
	}
}

func evObject(name, object string, v float64) decoder.Event {
	e := evValue(name, v, "")
	e.Object = []byte(object)
	return e
}

// TestObjects counts events per (event, object) pair: the same event about
// two interfaces is two series, listed in label order, and max_events
// bounds the pairs, with the overflow counted under no object.
func TestObjects(t *testing.T) {
	s := newTestSource("link", SourceOptions{MaxEvents: 4}, srcinfo.Stats{})
	s.Record([]decoder.Event{
		evObject("link/down", "veth1", 3),
		evObject("link/down", "veth0", 5),
		evObject("link/up", "veth0", 6),
		evObject("link/down", "veth1", 4),
		// Past the bound of 4 pairs (3 and the overflow event).
		evObject("link/up", "veth1", 7),
		evObject("link/up", "veth2", 8),
	}, 100, 0)
	want := `
# HELP kevent_event_last_value Value carried by the last event of this name and object.
# TYPE kevent_event_last_value gauge
kevent_event_last_value{event="__overflow__",object="",source="link"} 8
kevent_event_last_value{event="link/down",object="veth0",source="link"} 5
kevent_event_last_value{event="link/down",object="veth1",source="link"} 4
kevent_event_last_value{event="link/up",object="veth0",source="link"} 6
# HELP kevent_events_total Events received, by source, event name and the object the event is about (empty where the source names none).
# TYPE kevent_events_total counter
kevent_events_total{event="__overflow__",object="",source="link"} 2
kevent_events_total{event="link/down",object="veth0",source="link"} 1
kevent_events_total{event="link/down",object="veth1",source="link"} 2
kevent_events_total{event="link/up",object="veth0",source="link"} 1
# HELP kevent_source_event_names Distinct (event, object) pairs the source keeps, including the overflow event.
# TYPE kevent_source_event_names gauge
kevent_source_event_names{source="link"} 4
`
	gatherCompare(t, []*SourceMetrics{s}, want, "kevent_events_total", "kevent_event_last_value", "kevent_source_event_names")
}

// TestObjectLookupAllocs: counting an event about a known object
// allocates nothing.
func TestObjectLookupAllocs(t *testing.T) {
	s := NewSourceMetrics("a", SourceOptions{})
	events := []decoder.Event{evObject("link/up", "eth0", 1), evValue("plain", 1, "")}
	s.Record(events, 10, 0)
	if n := testing.AllocsPerRun(100, func() { s.Record(events, 10, 0) }); n != 0 {
		t.Fatalf("%v allocations per Record of known events", n)
	}
}

// TestReconfigure changes a source's options as a reload does: its counts
// go on, the new bound and payload setting apply to what follows, and the
// socket's stats come from the new function.
func TestReconfigure(t *testing.T) {
	s := newTestSource("r", SourceOptions{MaxEvents: 10}, srcinfo.Stats{Datagrams: 2})
	s.Record([]decoder.Event{ev("a", "pa"), ev("b", "pb")}, 20, 1)
	s.Reconfigure(SourceOptions{MaxEvents: 3, PayloadInfo: true, Stats: func() srcinfo.Stats { return srcinfo.Stats{State: srcinfo.StateUp, Datagrams: 5} }})
	s.Record([]decoder.Event{ev("a", "pa2"), ev("c", "pc")}, 20, 0)
	gatherCompare(t, []*SourceMetrics{s}, `
# HELP kevent_datagrams_received_total Datagrams read from the source's socket, rejected ones included.
# TYPE kevent_datagrams_received_total counter
kevent_datagrams_received_total{source="r"} 5
# HELP kevent_decode_errors_total Malformed messages that could not be decoded into events.
# TYPE kevent_decode_errors_total counter
kevent_decode_errors_total{source="r"} 1
# HELP kevent_event_last_payload_info Payload of the last event of this name and object, truncated to 256 bytes of valid UTF-8.
# TYPE kevent_event_last_payload_info gauge
kevent_event_last_payload_info{event="a",object="",payload="pa2",source="r"} 1
# HELP kevent_events_total Events received, by source, event name and the object the event is about (empty where the source names none).
# TYPE kevent_events_total counter
kevent_events_total{event="__overflow__",object="",source="r"} 1
kevent_events_total{event="a",object="",source="r"} 2
kevent_events_total{event="b",object="",source="r"} 1
# HELP kevent_source_max_event_names Bound on distinct (event, object) pairs, the overflow event included; events past it count under event="__overflow__".
# TYPE kevent_source_max_event_names gauge
kevent_source_max_event_names{source="r"} 3
# HELP kevent_source_up Whether the source's netlink socket is open and subscribed (1) or not (0).
# TYPE kevent_source_up gauge
kevent_source_up{source="r"} 1
# HELP kevent_received_bytes_total Bytes of netlink datagrams received.
# TYPE kevent_received_bytes_total counter
kevent_received_bytes_total{source="r"} 40
`, "kevent_datagrams_received_total", "kevent_decode_errors_total", "kevent_event_last_payload_info", "kevent_events_total",
		"kevent_source_max_event_names", "kevent_source_up", "kevent_received_bytes_total")
}
