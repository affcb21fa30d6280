package collector

import (
	"bytes"
	"cmp"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"

	"github.com/kevent-exporter/kevent_exporter/decoder"
	"github.com/kevent-exporter/kevent_exporter/internal/sequence"
	"github.com/kevent-exporter/kevent_exporter/netlinksrc/srcinfo"
)

const (
	// DefaultMaxEvents is a source's default bound on distinct event names.
	DefaultMaxEvents = 2000
	// OverflowEvent is the event name that counts a source's events whose
	// names did not fit under its bound.
	OverflowEvent = ReservedPrefix + "overflow__"
	// ReservedPrefix starts the names of the collector's own events, which
	// no configured event name may start with.
	ReservedPrefix = "__"
	// MaxPayloadBytes is how much of a payload the payload label keeps.
	MaxPayloadBytes = 256
	// MaxNameBytes is how much of an event name the event label keeps, and
	// of an object the object label: the configuration's event names fit.
	MaxNameBytes = 128
)

// SourceOptions configure a SourceMetrics.
type SourceOptions struct {
	// MaxEvents bounds the distinct event names; 0 means DefaultMaxEvents.
	MaxEvents int
	// PayloadInfo turns on kevent_event_last_payload_info.
	PayloadInfo bool
	// Required says the source must be attached: kevent_source_required
	// is 1, for the alert on a required source that is waiting.
	Required bool
	// ForgetAfter is how long the series of an object the kernel removed
	// (decoder.Event.Gone) stay: they are forgotten at the first scrape
	// ForgetAfter or more after the removal, provided an earlier scrape
	// showed them, so that every scrape sees their final values within
	// ForgetAfter and at least one scrape sees them.
	ForgetAfter time.Duration
	// Include and Exclude choose the objects that get series of their
	// own: those Include matches (every object if nil) and Exclude does
	// not (none if nil). Events of the other objects are counted under an
	// empty object label, one series per event, with no payload. Both
	// must be anchored to match whole names.
	Include, Exclude *regexp.Regexp
	// Stats reports the source's socket at scrape time; nil reports a
	// source that is down.
	Stats func() srcinfo.Stats
}

// SourceMetrics accumulates the events of one netlink source. Record is
// called by the source's receive loop and Collect by scrapes.
type SourceMetrics struct {
	name string
	opts SourceOptions
	// now is the clock, replaceable in tests.
	now func() time.Time

	mu sync.Mutex
	// events holds the events without an object by event label, objects
	// those with one by event label, then object label: two lookups of
	// string(bytes), which Go does without allocating. pairs counts them
	// all, the distinct (event, object) pairs MaxEvents bounds.
	events  map[string]*eventState
	objects map[string]map[string]*eventState
	pairs   int
	// sorted holds the events in label order, the order a scrape sorts
	// them into: handing them over sorted makes that sort cheap. Names
	// new since the last scrape wait in pending, so that adding one costs
	// no more than appending.
	sorted        []*eventState
	pending       []*eventState
	receivedBytes uint64
	decodeErrors  uint64
	eventsTotal   uint64
	seq           sequence.Tracker
	// removals are the objects removed and not yet forgotten, oldest
	// first, numbered from 1 by lastRemoval; forgotten counts the objects
	// forgotten. dead counts the forgotten pairs still in sorted or
	// pending, nested the kept pairs whose object has a "/" (under which
	// removing an object looks for the objects under it).
	removals    []removal
	lastRemoval uint64
	forgotten   uint64
	dead        int
	nested      int
	// rejectedLabels are the (reason, source) label pairs by reason.
	rejectedLabels [srcinfo.NumRejectReasons][]*dto.LabelPair
	// stateLabels are the (source, state) label pairs by state.
	stateLabels [srcinfo.NumStates][]*dto.LabelPair
}

// eventState is what a source knows of one event name and object.
type eventState struct {
	// label and object are the event and object labels' values.
	label    string
	object   string
	count    uint64
	value    float64
	hasValue bool
	// unixNano is when the event was last received.
	unixNano int64
	// payload is the last payload, cut to MaxPayloadBytes; payloadDirty is
	// set until the scrape after it changed has rebuilt payloadLabels.
	payload       []byte
	payloadDirty  bool
	payloadLabels []*dto.LabelPair
	// labels are the event's (event, object, source) label pairs, built
	// once.
	labels []*dto.LabelPair
	// aggregate is set on the pairs that count events of several objects
	// (objects not kept, the overflow event): their payload would change
	// from one object to the next, a new series each time, so it is not
	// exported.
	aggregate bool
	// removal numbers the removal of the object, 0 until it is removed.
	removal uint64
	// forgotten is set when the pair is dropped from the maps; it leaves
	// sorted at the next scrape.
	forgotten bool
}

// removal is an object the kernel removed, whose pairs are forgotten after
// the grace period.
type removal struct {
	id     uint64
	object string
	at     time.Time
	// shown is set once a scrape has shown the object's pairs.
	shown bool
	// live counts the object's pairs (and those of the objects under it)
	// marked with this removal and not yet forgotten.
	live int
}

// NewSourceMetrics returns an empty SourceMetrics for the source called name.
func NewSourceMetrics(name string, opts SourceOptions) *SourceMetrics {
	if opts.MaxEvents <= 0 {
		opts.MaxEvents = DefaultMaxEvents
	}
	s := &SourceMetrics{
		name:    name,
		opts:    opts,
		events:  make(map[string]*eventState),
		objects: make(map[string]map[string]*eventState),
		now:     time.Now,
	}
	for r := range srcinfo.NumRejectReasons {
		s.rejectedLabels[r] = labelPairs("reason", r.String(), "source", name)
	}
	for st := range srcinfo.NumStates {
		s.stateLabels[st] = labelPairs("source", name, "state", st.String())
	}
	return s
}

// Reconfigure makes opts the source's options from now on, for a source
// whose configuration changed: what it counted so far stays, so that its
// counters go on across a reload. Pairs already kept stay under a lower
// MaxEvents; new ones count as the overflow event once the bound is
// reached.
func (s *SourceMetrics) Reconfigure(opts SourceOptions) {
	if opts.MaxEvents <= 0 {
		opts.MaxEvents = DefaultMaxEvents
	}
	s.mu.Lock()
	s.opts = opts
	s.mu.Unlock()
}

// Record counts the events decoded from one datagram of n bytes in which
// decodeErrors messages were malformed. It keeps no reference to events.
func (s *SourceMetrics) Record(events []decoder.Event, n, decodeErrors int) {
	t := s.now()
	now := t.UnixNano()
	s.mu.Lock()
	s.receivedBytes += uint64(n)
	s.decodeErrors += uint64(decodeErrors)
	s.eventsTotal += uint64(len(events))
	for i := range events {
		ev := &events[i]
		e := s.lookup(ev.Name, ev.Object, t)
		e.count++
		e.unixNano = now
		if ev.HasValue {
			e.value, e.hasValue = ev.Value, true
		}
		if s.opts.PayloadInfo && !e.aggregate {
			p := ev.Payload
			if len(p) > MaxPayloadBytes {
				p = p[:MaxPayloadBytes]
			}
			if e.payloadLabels == nil || !bytes.Equal(e.payload, p) {
				e.payload = append(e.payload[:0], p...)
				e.payloadDirty = true
			}
		}
		if ev.HasSeq {
			s.seq.Observe(ev.Instance, ev.Seq)
		}
		if len(ev.Gone) > 0 {
			s.remove(ev.Gone, t)
		}
	}
	s.mu.Unlock()
}

// keeps reports whether object gets series of its own.
func (s *SourceMetrics) keeps(object []byte) bool {
	return (s.opts.Include == nil || s.opts.Include.Match(object)) &&
		(s.opts.Exclude == nil || !s.opts.Exclude.Match(object))
}

// lookup returns the state of the event called name about object. An
// object the source does not keep counts under no object. Looking up a
// known valid pair, or the event of an object not kept once that event has
// been seen, allocates nothing.
func (s *SourceMetrics) lookup(name, object []byte, now time.Time) *eventState {
	aggregate := false
	if len(object) > 0 {
		if e, ok := s.objects[string(name)][string(object)]; ok && e.removal == 0 {
			return e
		}
		if !s.keeps(object) {
			object, aggregate = nil, true
		}
	}
	if len(object) == 0 {
		if e, ok := s.events[string(name)]; ok {
			e.aggregate = e.aggregate || aggregate
			return e
		}
	}
	return s.add(name, object, aggregate, now)
}

// add returns the state of a pair that lookup did not find, making it if
// the source has room, else the overflow event's: a source keeps at most
// MaxEvents (event, object) pairs, the overflow event included. Removed
// objects whose grace has passed are forgotten first, to make room. An
// object that comes back after it was removed starts anew: its old pairs
// are forgotten at once.
func (s *SourceMetrics) add(name, object []byte, aggregate bool, now time.Time) *eventState {
	label, obj := labelValue(name, MaxNameBytes), labelValue(object, MaxNameBytes)
	e := s.find(label, obj)
	if e != nil && e.removal == 0 {
		e.aggregate = e.aggregate || aggregate
		return e
	}
	if obj != "" && (e != nil || len(s.removals) > 0) {
		s.forgetObject(obj, 0)
	}
	// The overflow event takes the last place under the bound.
	if s.pairs >= s.opts.MaxEvents-1 {
		s.forgetDue(now)
	}
	if s.pairs >= s.opts.MaxEvents-1 {
		label, obj, aggregate = OverflowEvent, "", true
		if e := s.find(label, obj); e != nil {
			e.aggregate = true
			return e
		}
	}
	e = &eventState{label: label, object: obj, aggregate: aggregate, labels: labelPairs("event", label, "object", obj, "source", s.name)}
	if obj == "" {
		s.events[label] = e
	} else {
		m, ok := s.objects[label]
		if !ok {
			m = make(map[string]*eventState)
			s.objects[label] = m
		}
		m[obj] = e
		if strings.Contains(obj, "/") {
			s.nested++
		}
	}
	s.pairs++
	s.pending = append(s.pending, e)
	return e
}

// remove marks the pairs of object, and of the objects under it, removed
// at now, to be forgotten after the grace period.
func (s *SourceMetrics) remove(object []byte, now time.Time) {
	if !s.keeps(object) {
		return
	}
	key := object
	if len(object) > MaxNameBytes || !utf8.Valid(object) {
		key = []byte(labelValue(object, MaxNameBytes))
	}
	id := s.lastRemoval + 1
	r := removal{id: id, at: now}
	mark := func(e *eventState) {
		if e.removal == 0 {
			e.removal = id
			r.live++
			if r.object == "" && len(e.object) == len(key) {
				r.object = e.object
			}
		}
	}
	var parent string
	if s.nested > 0 {
		parent = string(key)
	}
	for _, m := range s.objects {
		if e, ok := m[string(key)]; ok {
			mark(e)
		}
		if s.nested > 0 {
			for o, e := range m {
				if under(o, parent) {
					mark(e)
				}
			}
		}
	}
	if r.live == 0 {
		return
	}
	if r.object == "" {
		r.object = string(key)
	}
	s.lastRemoval = id
	// Removals whose pairs came back and were forgotten wait their turn
	// at the front; drop them before they outnumber the pairs.
	if len(s.removals) >= 2*s.opts.MaxEvents {
		s.removals = slices.DeleteFunc(s.removals, func(r removal) bool { return r.live == 0 })
	}
	s.removals = append(s.removals, r)
}

// under reports whether object o is under object parent ("tz3/trip1" is
// under "tz3").
func under(o, parent string) bool {
	return len(o) > len(parent) && o[len(parent)] == '/' && o[:len(parent)] == parent
}

// forgetDue forgets the removed objects whose grace period has passed at
// now and whose pairs a scrape has shown.
func (s *SourceMetrics) forgetDue(now time.Time) {
	n := 0
	for _, r := range s.removals {
		if r.live > 0 {
			if !r.shown || now.Sub(r.at) < s.opts.ForgetAfter {
				break
			}
			s.forgetObject(r.object, r.id)
		}
		n++
	}
	if n > 0 {
		s.removals = s.removals[n:]
	}
}

// forgetObject drops the pairs of object, and of the objects under it,
// marked with removal id, or with any removal if id is 0.
func (s *SourceMetrics) forgetObject(object string, id uint64) {
	drop := func(label string, m map[string]*eventState, o string, e *eventState) {
		if e.removal == 0 || (id != 0 && e.removal != id) {
			return
		}
		delete(m, o)
		if len(m) == 0 {
			delete(s.objects, label)
		}
		e.forgotten = true
		s.dead++
		s.pairs--
		if strings.Contains(o, "/") {
			s.nested--
		}
		i, ok := slices.BinarySearchFunc(s.removals, e.removal, func(r removal, id uint64) int { return cmp.Compare(r.id, id) })
		if ok {
			if r := &s.removals[i]; r.live > 0 {
				r.live--
				if r.live == 0 {
					s.forgotten++
				}
			}
		}
	}
	for label, m := range s.objects {
		if e, ok := m[object]; ok {
			drop(label, m, object, e)
		}
		if s.nested > 0 {
			for o, e := range m {
				if under(o, object) {
					drop(label, m, o, e)
				}
			}
		}
	}
}

// find returns the state of the pair of labels, or nil.
func (s *SourceMetrics) find(label, object string) *eventState {
	if object == "" {
		return s.events[label]
	}
	return s.objects[label][object]
}

// labelValue makes b a valid UTF-8 label value of at most max bytes.
func labelValue(b []byte, max int) string {
	if len(b) > max {
		b = b[:max]
	}
	if utf8.Valid(b) {
		return string(b)
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}

// labelPairs builds label pairs from name, value arguments, which must come
// sorted by name as the registry expects them.
func labelPairs(nameValues ...string) []*dto.LabelPair {
	lps := make([]*dto.LabelPair, 0, len(nameValues)/2)
	for i := 0; i < len(nameValues); i += 2 {
		lps = append(lps, &dto.LabelPair{Name: proto.String(nameValues[i]), Value: proto.String(nameValues[i+1])})
	}
	return lps
}

// sortedEvents returns the events in label order, merging in the names
// added since the last call. The caller holds s.mu.
func (s *SourceMetrics) sortedEvents() []*eventState {
	if s.dead > 0 {
		forgotten := func(e *eventState) bool { return e.forgotten }
		s.sorted = slices.DeleteFunc(s.sorted, forgotten)
		s.pending = slices.DeleteFunc(s.pending, forgotten)
		s.dead = 0
	}
	if len(s.pending) == 0 {
		return s.sorted
	}
	byLabel := func(a, b *eventState) int {
		if c := strings.Compare(a.label, b.label); c != 0 {
			return c
		}
		return strings.Compare(a.object, b.object)
	}
	slices.SortFunc(s.pending, byLabel)
	merged := make([]*eventState, 0, len(s.sorted)+len(s.pending))
	i, j := 0, 0
	for i < len(s.sorted) && j < len(s.pending) {
		if byLabel(s.sorted[i], s.pending[j]) < 0 {
			merged = append(merged, s.sorted[i])
			i++
		} else {
			merged = append(merged, s.pending[j])
			j++
		}
	}
	merged = append(append(merged, s.sorted[i:]...), s.pending[j:]...)
	s.sorted, s.pending = merged, s.pending[:0]
	return s.sorted
}

// Totals returns the events counted over all names and the malformed
// messages.
func (s *SourceMetrics) Totals() (events, decodeErrors uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.eventsTotal, s.decodeErrors
}

// Name returns the source's name, its source label.
func (s *SourceMetrics) Name() string { return s.name }
