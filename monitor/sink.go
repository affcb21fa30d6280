package monitor

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/go-kit/log"

	"github.com/kevent-exporter/kevent_exporter/config"
	"github.com/kevent-exporter/kevent_exporter/decoder"
	"github.com/kevent-exporter/kevent_exporter/internal/sequence"
	"github.com/kevent-exporter/kevent_exporter/internal/source"
	"github.com/kevent-exporter/kevent_exporter/netlinksrc"
	"github.com/kevent-exporter/kevent_exporter/netlinksrc/srcinfo"
)

// sink is one monitored source: the sink of its subscription.
type sink struct {
	m   *monitor
	cfg config.Source
	enc *Encoder
	dec decoder.Decoder
	sub *netlinksrc.Subscription
	// placed is dec as the subscription calls it, saying where each
	// datagram's events start in its batch.
	placed *placingDecoder

	// The decode errors of the batch being read, printed by Record among
	// its events in datagram order: each one's place in the batch's events
	// and the end of its text (all but the notice's start) in
	// decodeErrorText. Only the subscription's goroutine, which calls
	// Malformed and Record, uses them.
	decodeErrorAt   []decodeErrorNotice
	decodeErrorText []byte

	// attached is set once the source has been seen up.
	attached atomic.Bool
	// final is the subscription's last stats, set when Run returns.
	final srcinfo.Stats

	// Guarded by m.mu.
	events, decodeErrors uint64
	// seq follows the source's kevent sequence numbers as the collector
	// does, so that the notices are what the metrics count.
	seq                sequence.Tracker
	shownUp, shownDown bool
	last               srcinfo.Stats
}

// decodeErrorNotice is a decode error waiting for its place in a batch.
type decodeErrorNotice struct {
	// before is the index of the first event after the datagram's place.
	before int
	// end is the end of the notice's text in decodeErrorText.
	end int
}

func newSink(m *monitor, sc config.Source, d decoder.Decoder, logger log.Logger) *sink {
	placed := &placingDecoder{Decoder: d}
	return &sink{
		m: m, cfg: sc, dec: d, placed: placed,
		enc: NewEncoder(m.format, sc.Name),
		sub: source.NewSubscription(sc, placed, logger),
	}
}

// placingDecoder is a decoder that remembers where the events of the
// datagram it last decoded start and end among the events of their batch,
// which the subscription gathers by appending each datagram's to the
// last's: a decode error is then printed where its datagram was.
type placingDecoder struct {
	decoder.Decoder
	start, end int
}

// Decode implements decoder.Decoder.
func (d *placingDecoder) Decode(events []decoder.Event, datagram []byte) ([]decoder.Event, int) {
	d.start = len(events)
	events, bad := d.Decoder.Decode(events, datagram)
	d.end = len(events)
	return events, bad
}

// Record implements netlinksrc.Sink: it prints a batch of events and
// flushes them at once, one write for the batch.
func (s *sink) Record(events []decoder.Event, _, decodeErrors int) {
	s.attached.Store(true)
	pending := s.decodeErrorAt
	defer func() {
		// The next batch places its datagrams afresh.
		s.decodeErrorAt, s.decodeErrorText = s.decodeErrorAt[:0], s.decodeErrorText[:0]
		s.placed.start, s.placed.end = 0, 0
	}()
	m := s.m
	m.mu.Lock()
	defer m.mu.Unlock()
	s.events += uint64(len(events))
	s.decodeErrors += uint64(decodeErrors)
	if m.stopped {
		return
	}
	// One time for the batch: its datagrams were read at once.
	now := time.Now()
	text := 0
	for i := 0; i <= len(events); i++ {
		// The decode errors of the datagrams before this event's.
		for len(pending) > 0 && pending[0].before <= i {
			b := s.enc.AppendNotice(m.line[:0], now, "decode_error")
			m.writeLocked(append(b, s.decodeErrorText[text:pending[0].end]...))
			text, pending = pending[0].end, pending[1:]
		}
		if i == len(events) {
			break
		}
		ev := &events[i]
		if ev.HasSeq {
			s.checkSeq(now, ev)
		}
		if (m.eventRE != nil && !m.eventRE.Match(ev.Name)) || (m.objectRE != nil && !m.objectRE.Match(ev.Object)) {
			continue
		}
		m.writeLocked(s.enc.AppendEvent(m.line[:0], now, ev))
		m.printed++
		if m.count > 0 && m.printed >= m.count {
			m.flushLocked()
			m.stopLocked()
			return
		}
	}
	m.flushLocked()
}

// Malformed implements netlinksrc.MalformedSink: it writes why the
// datagram did not decode, and its first bytes, for Record to print among
// the batch's events where the datagram was.
func (s *sink) Malformed(datagram []byte, n, bad int) {
	var problems []decoder.Problem
	// Where the datagram's events start: a datagram too large for its
	// slot was not decoded, and comes after the last one that was.
	before := s.placed.start
	switch {
	case datagram == nil:
		problems = []decoder.Problem{{Reason: "larger than the receive buffer's slot: dropped unread"}}
		before = s.placed.end
	default:
		// Off the lock: diagnosing costs what decoding does.
		problems = decoder.Diagnose(s.dec, datagram)
		if len(problems) == 0 {
			problems = []decoder.Problem{{Reason: "malformed for the " + s.cfg.Decoder + " decoder, which Diagnose does not explain"}}
		}
	}
	// The notice but its start ("TIME SOURCE !decode_error"), which has
	// the batch's time.
	b := s.enc.AppendUint(s.decodeErrorText, "bytes", uint64(n))
	b = s.enc.AppendUint(b, "malformed", uint64(bad))
	b = s.enc.EndDecodeError(b, problems, datagram)
	s.decodeErrorText = b
	s.decodeErrorAt = append(s.decodeErrorAt, decodeErrorNotice{before: before, end: len(b)})
}

// checkSeq prints what ev's sequence number says before ev is printed, as
// the collector counts it: a gap (numbers missing,
// kevent_sequence_missing_total), a late number filling a gap
// (out_of_order, kevent_sequence_reordered_total), a number already seen
// (duplicate, kevent_sequence_duplicates_total), a new instance (reset,
// kevent_sequence_resets_total: the module was reloaded, not a loss).
func (s *sink) checkSeq(now time.Time, ev *decoder.Event) {
	e, m := s.enc, s.m
	instance, highest := s.seq.Instance(), s.seq.Highest()
	var b []byte
	switch kind, missing := s.seq.Observe(ev.Instance, ev.Seq); kind {
	case sequence.Reset:
		b = e.AppendNotice(m.line[:0], now, "reset")
		b = e.AppendUint(b, "instance", ev.Instance)
		b = e.AppendUint(b, "seq", ev.Seq)
		b = e.AppendUint(b, "previous_instance", instance)
		b = e.AppendUint(b, "previous_seq", highest)
	case sequence.Gap:
		b = e.AppendNotice(m.line[:0], now, "gap")
		b = e.AppendUint(b, "instance", ev.Instance)
		b = e.AppendUint(b, "missing", missing)
		b = e.AppendUint(b, "last_seq", highest)
		b = e.AppendUint(b, "seq", ev.Seq)
	case sequence.Late, sequence.Duplicate:
		notice := "out_of_order"
		if kind == sequence.Duplicate {
			notice = "duplicate"
		}
		b = e.AppendNotice(m.line[:0], now, notice)
		b = e.AppendUint(b, "instance", ev.Instance)
		b = e.AppendUint(b, "seq", ev.Seq)
		b = e.AppendUint(b, "highest_seq", highest)
	default:
		// In order, the first number, or one sent before it: nothing
		// to say.
		return
	}
	m.writeLocked(e.EndNotice(b))
}

// poll prints what changed in the source's stats since the last poll: it
// attached or went down, the kernel dropped datagrams, senders were
// rejected. final is the subscription's last stats, after it stopped.
func (s *sink) poll(st srcinfo.Stats, final bool) {
	if st.Up() || st.Datagrams > 0 {
		s.attached.Store(true)
	}
	e, m := s.enc, s.m
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	if !final {
		switch {
		case st.Up() && !s.shownUp:
			b := s.appendWhere(e.AppendNotice(m.line[:0], now, "up"))
			b = e.AppendUint(b, "groups_joined", uint64(st.GroupsJoined))
			b = e.AppendUint(b, "receive_buffer_bytes", uint64(st.ReceiveBufferBytes))
			m.writeLocked(e.EndNotice(b))
			s.shownUp, s.shownDown = true, false
		case !st.Up() && !s.shownDown && (s.shownUp || now.Sub(m.start) >= downAfter):
			b := s.appendWhere(e.AppendNotice(m.line[:0], now, "down"))
			m.writeLocked(e.EndNotice(b))
			s.shownUp, s.shownDown = false, true
		}
	}
	if st.Lost > s.last.Lost || st.Overruns > s.last.Overruns {
		b := e.AppendNotice(m.line[:0], now, "lost")
		b = e.AppendUint(b, "lost", st.Lost-s.last.Lost)
		b = e.AppendUint(b, "lost_total", st.Lost)
		b = e.AppendUint(b, "overruns_total", st.Overruns)
		m.writeLocked(e.EndNotice(b))
	}
	if st.Rejected != s.last.Rejected {
		b := e.AppendNotice(m.line[:0], now, "rejected")
		var total uint64
		for r, n := range st.Rejected {
			if d := n - s.last.Rejected[r]; d > 0 {
				b = e.AppendUint(b, srcinfo.RejectReason(r).String(), d)
			}
			total += n
		}
		b = e.AppendUint(b, "rejected_total", total)
		m.writeLocked(e.EndNotice(b))
	}
	s.last = st
	m.flushLocked()
}

// appendWhere appends the fields that say what the source listens to: its
// protocol and groups, or its family and the names of its groups.
func (s *sink) appendWhere(b []byte) []byte {
	if s.cfg.Family != "" {
		b = s.enc.AppendString(b, "family", s.cfg.Family)
		return s.enc.AppendStrings(b, "groups", s.cfg.GroupNames)
	}
	b = s.enc.AppendUint(b, "protocol", uint64(s.cfg.Protocol))
	return s.enc.AppendUint32s(b, "groups", s.cfg.Groups)
}

// summary is the source's line of the summary printed at exit.
func (s *sink) summary() string {
	s.m.mu.Lock()
	events, decodeErrors := s.events, s.decodeErrors
	s.m.mu.Unlock()
	var rejected uint64
	for _, n := range s.final.Rejected {
		rejected += n
	}
	return fmt.Sprintf("summary source=%s events=%d lost=%d overruns=%d decode_errors=%d rejected=%d attached=%t",
		s.cfg.Name, events, s.final.Lost, s.final.Overruns, decodeErrors, rejected, s.attached.Load())
}
