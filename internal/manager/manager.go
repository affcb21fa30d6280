// Package manager runs the configured sources of the exporter and applies
// a new configuration to them on reload: Manager starts, replaces and stops
// their subscriptions, Reloader reads the configuration file and hands it
// to the Manager, one reload at a time.
package manager

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
	"github.com/kevent-exporter/kevent_exporter/internal/source"
	"github.com/kevent-exporter/kevent_exporter/netlinksrc"
	"github.com/kevent-exporter/kevent_exporter/netlinksrc/srcinfo"
)

// Manager runs one netlink subscription per configured source and
// swaps them on reload, keeping those whose configuration did not change
// (and so their sockets and counts). A source whose configuration changed
// goes on counting from where it was, and keeps its socket where it can:
// the old subscription hands it over, still joined and with its queue, to
// the new one (netlinksrc.Subscription.HandOver). Its methods may be
// called concurrently.
type Manager struct {
	logger    log.Logger
	collector *collector.Collector

	mu      sync.Mutex
	running map[string]*runningSource
	// closed is set by StopAll: a reload that raced shutdown must not
	// start sources again.
	closed bool
}

// runningSource is a source's subscription and metrics.
type runningSource struct {
	cfg     config.Source
	sub     *netlinksrc.Subscription
	metrics *collector.SourceMetrics
	// carried is what the source's earlier subscriptions counted, before
	// reloads that changed it.
	carried srcinfo.Stats
	cancel  context.CancelFunc
	done    chan struct{}
	// final is the subscription's last stats, set when done is closed.
	final srcinfo.Stats
}

// New returns a Manager, running no source yet, whose sources log to
// logger and are counted by c.
func New(logger log.Logger, c *collector.Collector) *Manager {
	return &Manager{logger: logger, collector: c, running: make(map[string]*runningSource)}
}

// Apply makes the running sources those of cfg. Decoders are made before
// anything is stopped, so a configuration that fails here changes nothing.
// The sources that stop stop together; each replaced one's successor
// starts as it stops.
func (m *Manager) Apply(cfg *config.Config) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrShuttingDown
	}

	decoders := make(map[string]decoder.Decoder)
	for _, sc := range cfg.Sources {
		if old, ok := m.running[sc.Name]; ok && reflect.DeepEqual(old.cfg, sc) {
			continue
		}
		d, err := source.NewDecoder(sc)
		if err != nil {
			return err
		}
		decoders[sc.Name] = d
	}

	next := make(map[string]*runningSource, len(cfg.Sources))
	ordered := make([]*collector.SourceMetrics, 0, len(cfg.Sources))
	var stops sync.WaitGroup
	for _, sc := range cfg.Sources {
		rs, ok := m.running[sc.Name]
		switch d := decoders[sc.Name]; {
		case !ok:
			rs = &runningSource{cfg: sc, sub: source.NewSubscription(sc, d, m.logger)}
			m.start(rs)
		case d != nil:
			old := rs
			rs = &runningSource{cfg: sc, sub: source.NewSubscription(sc, d, m.logger), metrics: old.metrics}
			old.sub.HandOver(rs.sub)
			stops.Go(func() {
				m.stop(old, "Source replaced: its configuration changed")
				rs.carried = old.carried.Plus(old.final)
				m.start(rs)
			})
		}
		next[sc.Name] = rs
		ordered = append(ordered, rs.metrics)
	}
	for name, rs := range m.running {
		if _, ok := next[name]; !ok {
			stops.Go(func() { m.stop(rs, "Source removed") })
		}
	}
	stops.Wait()
	m.running = next
	m.collector.SetSources(ordered)
	return nil
}

// start runs rs's subscription, with new metrics or, for a source that
// was replaced, its metrics reconfigured.
func (m *Manager) start(rs *runningSource) {
	sc := rs.cfg
	include, exclude := sc.Objects.Regexps()
	opts := collector.SourceOptions{
		MaxEvents:   sc.MaxEvents,
		PayloadInfo: sc.PayloadInfo,
		Required:    sc.Required,
		ForgetAfter: time.Duration(sc.ForgetAfter),
		Include:     include,
		Exclude:     exclude,
		Stats:       func() srcinfo.Stats { return rs.carried.Plus(rs.sub.Stats()) },
	}
	if rs.metrics == nil {
		rs.metrics = collector.NewSourceMetrics(sc.Name, opts)
	} else {
		rs.metrics.Reconfigure(opts)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rs.cancel, rs.done = cancel, make(chan struct{})
	go func() {
		defer close(rs.done)
		rs.final = rs.sub.Run(ctx, rs.metrics)
	}()
	if sc.Family != "" {
		level.Info(m.logger).Log("msg", "Source started", "source", sc.Name, "family", sc.Family, "decoder", sc.Decoder)
	} else {
		level.Info(m.logger).Log("msg", "Source started", "source", sc.Name, "protocol", int(sc.Protocol), "decoder", sc.Decoder)
	}
}

// stop stops a source and logs its counts, over all its configurations.
// Unless the source hands its socket over to its new configuration, it
// first accounts for what is queued on the socket: received + lost is then
// every datagram the kernel delivered to the source while it was joined to
// its groups.
func (m *Manager) stop(rs *runningSource, why string) {
	rs.cancel()
	<-rs.done
	events, decodeErrors := rs.metrics.Totals()
	st := rs.carried.Plus(rs.final)
	kv := []any{
		"msg", why, "source", rs.cfg.Name,
		"events", events, "decode_errors", decodeErrors,
		"datagrams_received", st.Datagrams, "datagrams_lost", st.Lost,
	}
	for r, n := range st.Rejected {
		kv = append(kv, "datagrams_rejected_"+srcinfo.RejectReason(r).String(), n)
	}
	kv = append(kv, "overruns", st.Overruns)
	level.Info(m.logger).Log(kv...)
}

// StopAll stops every source, all at once, and waits for them. After it,
// Apply returns ErrShuttingDown.
func (m *Manager) StopAll() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	var wg sync.WaitGroup
	for _, rs := range m.running {
		wg.Go(func() { m.stop(rs, "Source stopped") })
	}
	wg.Wait()
	m.running = map[string]*runningSource{}
}
