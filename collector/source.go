package collector

import (
	"bytes"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"

	"github.com/kevent-exporter/kevent_exporter/decoder"
	"github.com/kevent-exporter/kevent_exporter/internal/sequence"
)

const (
	// DefaultMaxEvents is a source's default bound on distinct event names.
	DefaultMaxEvents = 2000
	// OverflowEvent is the event name that counts a source's events whose
	// names did not fit under its bound.
	OverflowEvent = "__overflow__"
	// MaxPayloadBytes is how much of a payload the payload label keeps.
	MaxPayloadBytes = 256
	// maxNameBytes is how much of an event name the event label keeps, and
	// of an object the object label.
	maxNameBytes = 128
)

// SocketStats is what a source's socket reports at scrape time.
//
// Datagrams + Lost is every datagram the kernel delivered to the source's
// sockets while they were joined to their groups.
type SocketStats struct {
	// State is what the source is doing: up while the socket is open and
	// joined to its groups, else why not.
	State SourceState
	// Attachments counts the times the socket was opened and joined.
	Attachments uint64
	// GroupsJoined is how many of the configured groups the socket joined.
	GroupsJoined int
	// ReceiveBufferBytes is the receive buffer the kernel granted.
	ReceiveBufferBytes int
	// Datagrams counts datagrams read from the socket, rejected ones too.
	Datagrams uint64
	// Overruns counts receive queue overflows (ENOBUFS).
	Overruns uint64
	// Lost counts datagrams dropped by the kernel at a full socket, and
	// those left unread when the source stopped.
	Lost uint64
	// Rejected counts datagrams not decoded because of their sender, by
	// reason; every reason is listed, counted or not.
	Rejected []ReasonCount
	// DropReadErrors counts failed reads of the kernel's drop counter.
	DropReadErrors uint64
}

// SourceState is what a source is doing, the state label of
// kevent_source_state. The zero value is SourceWaiting.
type SourceState int

const (
	// SourceWaiting: the source's protocol or generic netlink family is
	// not registered (its module is not loaded), or it has not tried yet.
	SourceWaiting SourceState = iota
	// SourceUp: the socket is open and joined to its groups.
	SourceUp
	// SourceDenied: opening or joining was not permitted.
	SourceDenied
	// SourceFailed: any other error.
	SourceFailed
	numSourceStates
)

// sourceStateNames are the state label's values, by SourceState.
var sourceStateNames = [numSourceStates]string{
	SourceWaiting: "waiting",
	SourceUp:      "up",
	SourceDenied:  "denied",
	SourceFailed:  "failed",
}

// String returns the state's label value.
func (st SourceState) String() string {
	if st < 0 || st >= numSourceStates {
		return "unknown"
	}
	return sourceStateNames[st]
}

// ReasonCount is a count by reason.
type ReasonCount struct {
	Reason string
	Count  uint64
}

// SourceOptions configure a SourceMetrics.
type SourceOptions struct {
	// MaxEvents bounds the distinct event names; 0 means DefaultMaxEvents.
	MaxEvents int
	// PayloadInfo turns on kevent_event_last_payload_info.
	PayloadInfo bool
	// Required says the source must be attached: kevent_source_required
	// is 1, for the alert on a required source that is waiting.
	Required bool
	// Stats reports the source's socket at scrape time; nil reports a
	// source that is down.
	Stats func() SocketStats
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
	// rejectedLabels caches the (reason, source) label pairs by reason.
	rejectedLabels map[string][]*dto.LabelPair
	// stateLabels are the (source, state) label pairs by state.
	stateLabels [numSourceStates][]*dto.LabelPair
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
	for st, n := range sourceStateNames {
		s.stateLabels[st] = labelPairs("source", name, "state", n)
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
	now := s.now().UnixNano()
	s.mu.Lock()
	s.receivedBytes += uint64(n)
	s.decodeErrors += uint64(decodeErrors)
	s.eventsTotal += uint64(len(events))
	for i := range events {
		ev := &events[i]
		e := s.lookup(ev.Name, ev.Object)
		e.count++
		e.unixNano = now
		if ev.HasValue {
			e.value, e.hasValue = ev.Value, true
		}
		if s.opts.PayloadInfo {
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
	}
	s.mu.Unlock()
}

// lookup returns the state of the event called name about object, making
// it if the source has room, else the overflow event's: a source keeps at
// most MaxEvents (event, object) pairs, the overflow event included.
// Looking up a known valid pair allocates nothing.
func (s *SourceMetrics) lookup(name, object []byte) *eventState {
	if len(object) == 0 {
		if e, ok := s.events[string(name)]; ok {
			return e
		}
	} else if m, ok := s.objects[string(name)]; ok {
		if e, ok := m[string(object)]; ok {
			return e
		}
	}
	label, obj := labelValue(name, maxNameBytes), labelValue(object, maxNameBytes)
	if e := s.find(label, obj); e != nil {
		return e
	}
	// The overflow event takes the last place under the bound.
	if s.pairs >= s.opts.MaxEvents-1 {
		label, obj = OverflowEvent, ""
		if e := s.find(label, obj); e != nil {
			return e
		}
	}
	e := &eventState{label: label, object: obj, labels: labelPairs("event", label, "object", obj, "source", s.name)}
	if obj == "" {
		s.events[label] = e
	} else {
		m, ok := s.objects[label]
		if !ok {
			m = make(map[string]*eventState)
			s.objects[label] = m
		}
		m[obj] = e
	}
	s.pairs++
	s.pending = append(s.pending, e)
	return e
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
