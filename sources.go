package main

import (
	"context"
	"reflect"
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/kevent-exporter/kevent_exporter/collector"
	"github.com/kevent-exporter/kevent_exporter/config"
	"github.com/kevent-exporter/kevent_exporter/decoder"
	"github.com/kevent-exporter/kevent_exporter/netlinksrc"
)

// sourceManager runs one netlink subscription per configured source and
// swaps them on reload, keeping those whose configuration did not change
// (and so their sockets and counts).
type sourceManager struct {
	logger    log.Logger
	collector *collector.Collector

	mu      sync.Mutex
	running map[string]*runningSource
	// closed is set by stopAll: a reload that raced shutdown must not
	// start sources again.
	closed bool
}

// runningSource is a source's subscription and metrics.
type runningSource struct {
	cfg     config.Source
	sub     *netlinksrc.Subscription
	metrics *collector.SourceMetrics
	cancel  context.CancelFunc
	done    chan struct{}
	// final is the subscription's last stats, set when done is closed.
	final netlinksrc.Stats
}

func newSourceManager(logger log.Logger, c *collector.Collector) *sourceManager {
	return &sourceManager{logger: logger, collector: c, running: make(map[string]*runningSource)}
}

// apply makes the running sources those of cfg. Decoders are made before
// anything is stopped, so a configuration that fails here changes nothing.
func (m *sourceManager) apply(cfg *config.Config) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return errShuttingDown
	}

	decoders := make(map[string]decoder.Decoder)
	for _, sc := range cfg.Sources {
		if old, ok := m.running[sc.Name]; ok && reflect.DeepEqual(old.cfg, sc) {
			continue
		}
		d, err := newDecoder(sc)
		if err != nil {
			return err
		}
		decoders[sc.Name] = d
	}

	next := make(map[string]*runningSource, len(cfg.Sources))
	ordered := make([]*collector.SourceMetrics, 0, len(cfg.Sources))
	for _, sc := range cfg.Sources {
		rs, ok := m.running[sc.Name]
		if !ok || decoders[sc.Name] != nil {
			if ok {
				m.stop(rs, "Source replaced: its configuration changed")
			}
			rs = m.start(sc, decoders[sc.Name])
		}
		next[sc.Name] = rs
		ordered = append(ordered, rs.metrics)
	}
	for name, rs := range m.running {
		if _, ok := next[name]; !ok {
			m.stop(rs, "Source removed")
		}
	}
	m.running = next
	m.collector.SetSources(ordered)
	return nil
}

func (m *sourceManager) start(sc config.Source, d decoder.Decoder) *runningSource {
	sub := newSubscription(sc, d, m.logger)
	include, exclude := sc.Objects.Regexps()
	metrics := collector.NewSourceMetrics(sc.Name, collector.SourceOptions{
		MaxEvents:   sc.MaxEvents,
		PayloadInfo: sc.PayloadInfo,
		ForgetAfter: time.Duration(sc.ForgetAfter),
		Include:     include,
		Exclude:     exclude,
		Stats:       func() collector.SocketStats { return socketStats(sub.Stats()) },
	})
	ctx, cancel := context.WithCancel(context.Background())
	rs := &runningSource{cfg: sc, sub: sub, metrics: metrics, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(rs.done)
		rs.final = sub.Run(ctx, metrics)
	}()
	if sc.Family != "" {
		level.Info(m.logger).Log("msg", "Source started", "source", sc.Name, "family", sc.Family, "decoder", sc.Decoder)
	} else {
		level.Info(m.logger).Log("msg", "Source started", "source", sc.Name, "protocol", int(sc.Protocol), "decoder", sc.Decoder)
	}
	return rs
}

// stop stops a source, which first accounts for what is queued on its
// socket, and logs its final counts: received + lost is every datagram the
// kernel delivered to it while it was joined to its groups.
func (m *sourceManager) stop(rs *runningSource, why string) {
	rs.cancel()
	<-rs.done
	events, decodeErrors := rs.metrics.Totals()
	st := rs.final
	kv := []any{
		"msg", why, "source", rs.cfg.Name,
		"events", events, "decode_errors", decodeErrors,
		"datagrams_received", st.Datagrams, "datagrams_lost", st.Lost,
	}
	for i, n := range st.Rejected {
		kv = append(kv, "datagrams_rejected_"+netlinksrc.RejectReasons[i], n)
	}
	kv = append(kv, "overruns", st.Overruns)
	level.Info(m.logger).Log(kv...)
}

// stopAll stops every source and waits for them.
func (m *sourceManager) stopAll() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	for _, rs := range m.running {
		m.stop(rs, "Source stopped")
	}
	m.running = map[string]*runningSource{}
}

// socketStats converts a subscription's stats for the collector.
func socketStats(st netlinksrc.Stats) collector.SocketStats {
	rejected := make([]collector.ReasonCount, len(st.Rejected))
	for i, n := range st.Rejected {
		rejected[i] = collector.ReasonCount{Reason: netlinksrc.RejectReasons[i], Count: n}
	}
	return collector.SocketStats{
		Up:                 st.Up,
		GroupsJoined:       st.GroupsJoined,
		ReceiveBufferBytes: st.ReceiveBufferBytes,
		Datagrams:          st.Datagrams,
		Overruns:           st.Overruns,
		Lost:               st.Lost,
		Rejected:           rejected,
		DropReadErrors:     st.DropReadErrors,
	}
}

// newDecoder makes the decoder a configured source names.
func newDecoder(sc config.Source) (decoder.Decoder, error) {
	return decoder.New(sc.Decoder, decoder.Options{TypeNames: sc.EventNames, Genl: sc.Family != ""})
}

// newSubscription makes the netlink subscription of a configured source;
// the exporter and the monitor subscribe alike.
func newSubscription(sc config.Source, d decoder.Decoder, logger log.Logger) *netlinksrc.Subscription {
	return netlinksrc.New(netlinksrc.Config{
		Name:               sc.Name,
		Protocol:           int(sc.Protocol),
		Groups:             sc.Groups,
		Family:             sc.Family,
		GroupNames:         sc.GroupNames,
		ReceiveBufferBytes: sc.ReceiveBufferBytes,
		// Empty (the protocol's usual senders) is SendersDefault.
		Senders: netlinksrc.SendersNames[sc.Senders],
		// The proc connector's subscription, rtnetlink's link dump.
		Requests: decoder.Requests(sc.Decoder),
	}, d, logger)
}
