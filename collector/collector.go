// Package collector turns decoded netlink events into Prometheus metrics,
// with a bound on the event names each source keeps and exact loss
// accounting from the sources' sockets.
package collector

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/kevent-exporter/kevent_exporter/netlinksrc/srcinfo"
)

const namespace = "kevent"

func newDesc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(namespace, "", name), help, labels, nil)
}

var (
	eventsDesc = newDesc("events_total",
		"Events received, by source, event name and the object the event is about (empty where the source names none).", "source", "event", "object")
	lastValueDesc = newDesc("event_last_value",
		"Value carried by the last event of this name and object.", "source", "event", "object")
	lastTimestampDesc = newDesc("event_last_timestamp_seconds",
		"Unix time the last event of this name and object was received.", "source", "event", "object")
	lastPayloadDesc = newDesc("event_last_payload_info",
		"Payload of the last event of this name and object, truncated to 256 bytes of valid UTF-8.", "source", "event", "object", "payload")

	receivedBytesDesc = newDesc("received_bytes_total",
		"Bytes of netlink datagrams received.", "source")
	decodeErrorsDesc = newDesc("decode_errors_total",
		"Malformed messages that could not be decoded into events.", "source")
	upDesc = newDesc("source_up",
		"Whether the source's netlink socket is open and subscribed (1) or not (0).", "source")
	stateDesc = newDesc("source_state",
		"The source's state, 1 for the current one: up; waiting for its protocol or generic netlink family (its module is not loaded); denied (a privilege is missing); failed (any other error).", "source", "state")
	attachmentsDesc = newDesc("source_attachments_total",
		"Times the source's socket was opened and joined to its groups: a source not up that has attached before lost its module or family.", "source")
	requiredDesc = newDesc("source_required",
		"Whether the source is configured required (1): its waiting for its module is then an alert.", "source")
	receiveBufferDesc = newDesc("source_receive_buffer_bytes",
		"Receive buffer size the kernel granted the source's socket.", "source")
	overrunsDesc = newDesc("receive_overruns_total",
		"Receive queue overflows (ENOBUFS) of the source's socket; each episode may drop many messages.", "source")
	datagramsDesc = newDesc("datagrams_received_total",
		"Datagrams read from the source's socket, rejected ones included.", "source")
	lostDesc = newDesc("datagrams_lost_total",
		"Datagrams the kernel dropped at the source's socket because its receive queue was full, and datagrams still queued when the source stopped that could not be decoded in time. The kernel drops whole datagrams: received + lost is every datagram multicast to the source.", "source")
	rejectedDesc = newDesc("datagrams_rejected_total",
		"Datagrams not decoded because the source does not trust their sender (not the kernel, or not root); for a family source also the generic netlink controller's notifications not sent by the kernel, which are not in datagrams_received_total.", "source", "reason")
	groupsJoinedDesc = newDesc("source_groups_joined",
		"Multicast groups the source's socket joined; fewer than configured when the kernel refused some.", "source")
	dropReadErrorsDesc = newDesc("source_drop_count_read_errors_total",
		"Failed reads of the kernel's drop counter (SO_MEMINFO); while they fail, kevent_datagrams_lost_total is stale.", "source")
	eventNamesDesc = newDesc("source_event_names",
		"Distinct (event, object) pairs the source keeps, including the overflow event.", "source")
	objectsForgottenDesc = newDesc("objects_forgotten_total",
		"Objects the kernel removed (a deleted interface, a renamed one's former name) whose series were dropped after the source's forget_after.", "source")
	maxEventNamesDesc = newDesc("source_max_event_names",
		"Bound on distinct (event, object) pairs, the overflow event included; events past it count under event=\""+OverflowEvent+"\".", "source")

	seqMissingDesc = newDesc("sequence_missing_total",
		"Sequence numbers skipped by a sender's messages: messages lost anywhere between sender and exporter.", "source")
	seqReorderedDesc = newDesc("sequence_reordered_total",
		"Messages that arrived after a later sequence number, filling a gap already counted as missing.", "source")
	seqDuplicatesDesc = newDesc("sequence_duplicates_total",
		"Messages whose sequence number had already been received.", "source")
	seqResetsDesc = newDesc("sequence_resets_total",
		"Sender instance changes (e.g. a module reload); sequence tracking restarts without counting loss.", "source")
)

// Collector is a prometheus.Collector over the metrics of a set of sources.
type Collector struct {
	mu      sync.RWMutex
	sources []*SourceMetrics
}

// New returns a Collector with no sources.
func New() *Collector {
	return &Collector{}
}

// SetSources replaces the sources the Collector reports.
func (e *Collector) SetSources(sources []*SourceMetrics) {
	e.mu.Lock()
	e.sources = sources
	e.mu.Unlock()
}

// Describe implements prometheus.Collector.
func (e *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		eventsDesc, lastValueDesc, lastTimestampDesc, lastPayloadDesc,
		receivedBytesDesc, decodeErrorsDesc, upDesc, stateDesc, attachmentsDesc,
		requiredDesc, receiveBufferDesc,
		overrunsDesc, datagramsDesc, lostDesc, rejectedDesc, groupsJoinedDesc,
		dropReadErrorsDesc, eventNamesDesc, maxEventNamesDesc, objectsForgottenDesc,
		seqMissingDesc, seqReorderedDesc, seqDuplicatesDesc, seqResetsDesc,
	} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (e *Collector) Collect(ch chan<- prometheus.Metric) {
	e.mu.RLock()
	sources := e.sources
	e.mu.RUnlock()
	for _, s := range sources {
		samples := s.snapshot()
		for i := range samples {
			ch <- &samples[i]
		}
	}
}

// snapshot copies the source's state into samples, holding the source's
// lock only for the copy so that a scrape delays the receive loop little.
func (s *SourceMetrics) snapshot() []sample {
	s.mu.Lock()
	stats := s.opts.Stats
	s.mu.Unlock()
	var st srcinfo.Stats
	if stats != nil {
		// Without the lock: it reads the socket.
		st = stats()
	}
	src := labelPairs("source", s.name)

	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.forgetDue(now)
	perEvent := 3
	if s.opts.PayloadInfo {
		perEvent++
	}
	out := make([]sample, 0, perEvent*s.pairs+16)
	for _, e := range s.sortedEvents() {
		out = append(out,
			sample{desc: eventsDesc, labels: e.labels, value: float64(e.count), counter: true},
			sample{desc: lastTimestampDesc, labels: e.labels, value: float64(e.unixNano) / 1e9},
		)
		if e.hasValue {
			out = append(out, sample{desc: lastValueDesc, labels: e.labels, value: e.value})
		}
		if s.opts.PayloadInfo && !e.aggregate {
			if e.payloadDirty {
				e.payloadLabels = labelPairs("event", e.label, "object", e.object, "payload", labelValue(e.payload, MaxPayloadBytes), "source", s.name)
				e.payloadDirty = false
			}
			// None for an event last seen before payload_info was on.
			if e.payloadLabels != nil {
				out = append(out, sample{desc: lastPayloadDesc, labels: e.payloadLabels, value: 1})
			}
		}
	}
	out = append(out,
		sample{desc: receivedBytesDesc, labels: src, value: float64(s.receivedBytes), counter: true},
		sample{desc: decodeErrorsDesc, labels: src, value: float64(s.decodeErrors), counter: true},
		sample{desc: upDesc, labels: src, value: boolValue(st.Up())},
		sample{desc: attachmentsDesc, labels: src, value: float64(st.Attachments), counter: true},
		sample{desc: requiredDesc, labels: src, value: boolValue(s.opts.Required)},
		sample{desc: receiveBufferDesc, labels: src, value: float64(st.ReceiveBufferBytes)},
		sample{desc: overrunsDesc, labels: src, value: float64(st.Overruns), counter: true},
		sample{desc: datagramsDesc, labels: src, value: float64(st.Datagrams), counter: true},
		sample{desc: lostDesc, labels: src, value: float64(st.Lost), counter: true},
		sample{desc: groupsJoinedDesc, labels: src, value: float64(st.GroupsJoined)},
		sample{desc: dropReadErrorsDesc, labels: src, value: float64(st.DropReadErrors), counter: true},
		sample{desc: eventNamesDesc, labels: src, value: float64(s.pairs)},
		sample{desc: maxEventNamesDesc, labels: src, value: float64(s.opts.MaxEvents)},
		sample{desc: objectsForgottenDesc, labels: src, value: float64(s.forgotten), counter: true},
	)
	for state, lps := range s.stateLabels {
		out = append(out, sample{desc: stateDesc, labels: lps, value: boolValue(srcinfo.State(state) == st.State)})
	}
	// The removed objects' pairs are in this scrape: from now on they may
	// be forgotten.
	for i := len(s.removals) - 1; i >= 0 && !s.removals[i].shown; i-- {
		s.removals[i].shown = true
	}
	if stats != nil {
		for r, lps := range s.rejectedLabels {
			out = append(out, sample{desc: rejectedDesc, labels: lps, value: float64(st.Rejected[r]), counter: true})
		}
	}
	if s.seq.Started() {
		seq := s.seq.Counts()
		out = append(out,
			sample{desc: seqMissingDesc, labels: src, value: float64(seq.Missing), counter: true},
			sample{desc: seqReorderedDesc, labels: src, value: float64(seq.Reordered), counter: true},
			sample{desc: seqDuplicatesDesc, labels: src, value: float64(seq.Duplicates), counter: true},
			sample{desc: seqResetsDesc, labels: src, value: float64(seq.Resets), counter: true},
		)
	}
	// The samples' protobuf values in two allocations instead of one per
	// sample in Write.
	var counters, gauges int
	for i := range out {
		if out[i].counter {
			counters++
		} else {
			gauges++
		}
	}
	cs, gs := make([]dto.Counter, counters), make([]dto.Gauge, gauges)
	for i := range out {
		if out[i].counter {
			out[i].c, cs = &cs[0], cs[1:]
		} else {
			out[i].g, gs = &gs[0], gs[1:]
		}
	}
	return out
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// sample is one series of a scrape. Its label pairs are built once per
// event and shared by every scrape, which is what keeps large scrapes cheap.
type sample struct {
	desc    *prometheus.Desc
	labels  []*dto.LabelPair
	value   float64
	counter bool
	// c or g holds the value for Write.
	c *dto.Counter
	g *dto.Gauge
}

// Desc implements prometheus.Metric.
func (m *sample) Desc() *prometheus.Desc { return m.desc }

// Write implements prometheus.Metric.
func (m *sample) Write(out *dto.Metric) error {
	out.Label = m.labels
	if m.counter {
		m.c.Value = &m.value
		out.Counter = m.c
	} else {
		m.g.Value = &m.value
		out.Gauge = m.g
	}
	return nil
}

// Sources returns the sources the Collector reports, in order.
func (e *Collector) Sources() []*SourceMetrics {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.sources
}
