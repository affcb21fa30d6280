package collector

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kevent-exporter/kevent_exporter/decoder"
	"github.com/kevent-exporter/kevent_exporter/netlinksrc/srcinfo"
)

// clock is a test's clock: Now returns t, which the test moves.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

// newClockSource returns a source whose clock the test moves.
func newClockSource(opts SourceOptions) (*SourceMetrics, *clock) {
	s := newTestSource("s", opts, srcinfo.Stats{})
	c := &clock{t: time.Unix(1700000000, 0)}
	s.now = c.now
	return s, c
}

// gone returns an event about object that removes it.
func gone(name, object string) decoder.Event {
	e := evObject(name, object, 0)
	e.Gone = []byte(object)
	return e
}

// series scrapes s and returns its samples of desc by "event object", and
// its forgotten objects and pairs kept.
func series(s *SourceMetrics, desc string) (got map[string]float64, forgotten, pairs float64) {
	got = make(map[string]float64)
	for _, sm := range s.snapshot() {
		switch d := sm.desc.String(); {
		case strings.Contains(d, `"`+desc+`"`):
			l := make(map[string]string)
			for _, lp := range sm.labels {
				l[lp.GetName()] = lp.GetValue()
			}
			k := l["event"] + " " + l["object"]
			if p, ok := l["payload"]; ok {
				k += " " + p
			}
			got[k] = sm.value
		case sm.desc == objectsForgottenDesc:
			forgotten = sm.value
		case sm.desc == eventNamesDesc:
			pairs = sm.value
		}
	}
	return got, forgotten, pairs
}

func checkSeries(t *testing.T, s *SourceMetrics, step string, want map[string]float64, wantForgotten float64) {
	t.Helper()
	got, forgotten, pairs := series(s, "kevent_events_total")
	if !maps.Equal(got, want) {
		t.Errorf("%s: kevent_events_total %v, want %v", step, got, want)
	}
	if forgotten != wantForgotten {
		t.Errorf("%s: kevent_objects_forgotten_total %v, want %v", step, forgotten, wantForgotten)
	}
	if int(pairs) != len(want) {
		t.Errorf("%s: kevent_source_event_names %v, want %d", step, pairs, len(want))
	}
}

// TestForgetAfter: the series of a removed object stay until a scrape
// forget_after or more after the removal, once a scrape has shown them;
// then they are gone and the object counts as forgotten.
func TestForgetAfter(t *testing.T) {
	s, c := newClockSource(SourceOptions{ForgetAfter: time.Minute})
	s.Record([]decoder.Event{evObject("link/new", "eth1", 0), evObject("link/new", "eth2", 0), evObject("link/up", "eth1", 0)}, 10, 0)
	s.Record([]decoder.Event{gone("link/del", "eth1")}, 10, 0)
	all := map[string]float64{"link/new eth1": 1, "link/up eth1": 1, "link/del eth1": 1, "link/new eth2": 1}
	// No scrape has shown eth1's final values: it stays past the grace.
	c.t = c.t.Add(time.Hour)
	checkSeries(t, s, "first scrape, an hour after the removal", all, 0)
	checkSeries(t, s, "second scrape", map[string]float64{"link/new eth2": 1}, 1)

	// Within the grace, scrapes show the final values.
	s.Record([]decoder.Event{gone("link/del", "eth2")}, 10, 0)
	c.t = c.t.Add(59 * time.Second)
	checkSeries(t, s, "59 s after", map[string]float64{"link/new eth2": 1, "link/del eth2": 1}, 1)
	c.t = c.t.Add(time.Second)
	checkSeries(t, s, "60 s after", map[string]float64{}, 2)
	if len(s.objects) != 0 || len(s.removals) != 0 || len(s.sorted) != 0 {
		t.Errorf("left: %d event names with objects, %d removals, %d sorted", len(s.objects), len(s.removals), len(s.sorted))
	}
}

// TestForgetAfterZero: with forget_after 0s, the first scrape after the
// removal is the last to show the object.
func TestForgetAfterZero(t *testing.T) {
	s, _ := newClockSource(SourceOptions{})
	s.Record([]decoder.Event{evObject("link/new", "eth1", 0), gone("link/del", "eth1")}, 10, 0)
	checkSeries(t, s, "first scrape", map[string]float64{"link/new eth1": 1, "link/del eth1": 1}, 0)
	checkSeries(t, s, "second scrape", map[string]float64{}, 1)
}

// TestComeBack: an object that comes back after its removal, before it
// was forgotten, starts from zero; the old object counts as forgotten.
func TestComeBack(t *testing.T) {
	s, _ := newClockSource(SourceOptions{ForgetAfter: time.Hour})
	s.Record([]decoder.Event{evObject("link/new", "eth1", 0), evObject("link/up", "eth1", 0), evObject("link/up", "eth1", 0), gone("link/del", "eth1")}, 10, 0)
	checkSeries(t, s, "removed", map[string]float64{"link/new eth1": 1, "link/up eth1": 2, "link/del eth1": 1}, 0)
	s.Record([]decoder.Event{evObject("link/new", "eth1", 0), evObject("link/up", "eth1", 0)}, 10, 0)
	checkSeries(t, s, "back", map[string]float64{"link/new eth1": 1, "link/up eth1": 1}, 1)
	// Back again before any scrape: its removal needs no scrape to be
	// replaced, and the removals do not pile up.
	for range 10000 {
		s.Record([]decoder.Event{gone("link/del", "eth1"), evObject("link/new", "eth1", 0)}, 10, 0)
	}
	checkSeries(t, s, "back 10 000 times", map[string]float64{"link/new eth1": 1}, 10001)
	if len(s.removals) > 2*s.opts.MaxEvents {
		t.Errorf("%d removals kept", len(s.removals))
	}
}

// TestForgetUnder: removing a thermal zone removes its trip points.
func TestForgetUnder(t *testing.T) {
	s, _ := newClockSource(SourceOptions{})
	s.Record([]decoder.Event{
		evObject("trip/up", "tz3/trip1", 0), evObject("trip/up", "tz30/trip1", 0),
		evObject("tz/create", "tz3", 0), gone("tz/delete", "tz3"),
	}, 10, 0)
	s.snapshot()
	checkSeries(t, s, "after", map[string]float64{"trip/up tz30/trip1": 1}, 1)
	if s.nested != 1 {
		t.Errorf("nested = %d, want 1", s.nested)
	}
}

// TestForgetMakesRoom: at the bound, removed objects past their grace
// are forgotten to make room before anything overflows, so that a source
// whose objects come and go keeps naming them.
func TestForgetMakesRoom(t *testing.T) {
	s, c := newClockSource(SourceOptions{MaxEvents: 10, ForgetAfter: time.Second})
	for i := range 1000 {
		o := fmt.Sprintf("veth%d", i)
		s.Record([]decoder.Event{evObject("link/new", o, 0), evObject("link/up", o, 0), gone("link/del", o)}, 10, 0)
		s.snapshot()
		c.t = c.t.Add(time.Second)
	}
	s.Record([]decoder.Event{evObject("link/new", "eth0", 0)}, 10, 0)
	got, forgotten, _ := series(s, "kevent_events_total")
	if got["__overflow__ "] != 0 || got["link/new eth0"] != 1 {
		t.Errorf("series %v: overflowed with objects to forget", got)
	}
	// The last one at the scrape just made.
	if forgotten != 1000 {
		t.Errorf("forgotten %v, want 1000", forgotten)
	}
}

// TestObjectFilter: objects that Exclude matches, or Include does not,
// count under no object, without payload; the totals stay exact.
func TestObjectFilter(t *testing.T) {
	s, _ := newClockSource(SourceOptions{
		PayloadInfo: true,
		Include:     regexp.MustCompile(`^(?:eth.*|veth.*)$`),
		Exclude:     regexp.MustCompile(`^(?:veth.*)$`),
	})
	var evs []decoder.Event
	for i := range 100 {
		e := evObject("link/up", fmt.Sprintf("veth%d", i), 0)
		e.Payload = []byte(fmt.Sprintf("/devices/virtual/net/veth%d", i))
		evs = append(evs, e)
	}
	e := evObject("link/up", "eth0", 0)
	e.Payload = []byte("up")
	evs = append(evs, e, evObject("link/up", "wlan0", 0), evObject("link/up", "xeth0", 0), gone("link/del", "veth1"))
	s.Record(evs, 10, 0)
	checkSeries(t, s, "events", map[string]float64{"link/up ": 102, "link/up eth0": 1, "link/del ": 1}, 0)
	payloads, _, _ := series(s, "kevent_event_last_payload_info")
	if want := map[string]float64{"link/up eth0 up": 1}; !maps.Equal(payloads, want) {
		t.Errorf("payload series %v, want %v", payloads, want)
	}
}

// TestOverflowHasNoPayload: the overflow event counts many names; a
// payload label would make a new series per event.
func TestOverflowHasNoPayload(t *testing.T) {
	s, _ := newClockSource(SourceOptions{PayloadInfo: true, MaxEvents: 2})
	s.Record([]decoder.Event{ev("a", "1"), ev("b", "2"), ev("c", "3")}, 10, 0)
	payloads, _, _ := series(s, "kevent_event_last_payload_info")
	if want := map[string]float64{"a  1": 1}; !maps.Equal(payloads, want) {
		t.Errorf("payload series %v, want %v", payloads, want)
	}
}

// TestFilteredLookupAllocs: counting events of objects the source does
// not keep allocates nothing once their event has been seen.
func TestFilteredLookupAllocs(t *testing.T) {
	s := NewSourceMetrics("a", SourceOptions{PayloadInfo: true, Exclude: regexp.MustCompile(`^(?:veth.*|cali.*)$`)})
	events := []decoder.Event{evObject("link/up", "veth1234abcd", 1), evObject("link/up", "cali0123456789a", 1), evObject("link/up", "eth0", 1)}
	s.Record(events, 10, 0)
	if n := testing.AllocsPerRun(100, func() { s.Record(events, 10, 0) }); n != 0 {
		t.Fatalf("%v allocations per Record", n)
	}
}

// TestScrapeOrderWithForgetting: forgotten pairs leave the sorted list
// and the others stay in order.
func TestScrapeOrderWithForgetting(t *testing.T) {
	s, _ := newClockSource(SourceOptions{})
	for i := range 50 {
		s.Record([]decoder.Event{evObject("e", fmt.Sprintf("o%02d", i), 0)}, 10, 0)
		if i%3 == 0 {
			s.Record([]decoder.Event{gone("d", fmt.Sprintf("o%02d", i/2))}, 10, 0)
		}
		s.snapshot()
	}
	s.snapshot()
	var got []string
	for _, e := range s.sortedEvents() {
		got = append(got, e.label+" "+e.object)
	}
	if !slices.IsSorted(got) {
		t.Errorf("not sorted: %v", got)
	}
	if len(got) != s.pairs {
		t.Errorf("%d sorted, %d pairs", len(got), s.pairs)
	}
}

// TestForgetRandom runs random events, removals, comebacks, nested
// objects, scrapes and clock moves through a small source, and checks
// after each scrape that the registry takes it (no pair twice), that the
// pairs kept are those listed and within the bound, and that no removal
// is kept without pairs.
func TestForgetRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	s, c := newClockSource(SourceOptions{
		MaxEvents: 20, ForgetAfter: 3 * time.Second, PayloadInfo: true,
		Exclude: regexp.MustCompile(`^(?:veth.*)$`),
	})
	e := New()
	e.SetSources([]*SourceMetrics{s})
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(e)
	objects := []string{"eth0", "eth1", "eth2", "tz1", "tz1/trip0", "tz1/trip1", "tz10/trip0", "veth1", "veth2", strings.Repeat("x", 200)}
	names := []string{"new", "up", "down", "del"}
	for i := range 20000 {
		switch n := r.IntN(10); {
		case n < 7:
			o := objects[r.IntN(len(objects))]
			ev := evObject(names[r.IntN(len(names))], o, float64(i))
			ev.Payload = []byte(fmt.Sprint(i))
			if r.IntN(4) == 0 {
				ev.Gone = []byte(objects[r.IntN(len(objects))])
			}
			s.Record([]decoder.Event{ev}, 10, 0)
		case n < 9:
			c.t = c.t.Add(time.Duration(r.IntN(2000)) * time.Millisecond)
		default:
			if _, err := reg.Gather(); err != nil {
				t.Fatalf("step %d: %v", i, err)
			}
			s.mu.Lock()
			if len(s.sorted) != s.pairs || s.pairs > s.opts.MaxEvents {
				t.Fatalf("step %d: %d listed, %d pairs, bound %d", i, len(s.sorted), s.pairs, s.opts.MaxEvents)
			}
			live := 0
			for _, rm := range s.removals {
				live += rm.live
			}
			marked := 0
			for _, e := range s.sorted {
				if e.removal != 0 {
					marked++
				}
			}
			if live != marked {
				t.Fatalf("step %d: removals count %d pairs, %d are marked", i, live, marked)
			}
			s.mu.Unlock()
		}
	}
}
