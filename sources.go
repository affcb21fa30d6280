package main

import (
	"context"
	"reflect"
	"sync"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/kevent-exporter/kevent_exporter/collector"
	"github.com/kevent-exporter/kevent_exporter/config"
	"github.com/kevent-exporter/kevent_exporter/decoder"
	"github.com/kevent-exporter/kevent_exporter/netlinksrc"
)

// sourceManager runs one netlink source per configured source and swaps
// them on reload, keeping those whose configuration did not change (and so
// their sockets and counts).
type sourceManager struct {
	logger   log.Logger
	exporter *collector.Exporter

	mu      sync.Mutex
	running map[string]*runningSource
}

type runningSource struct {
	cfg     config.Source
	metrics *collector.Source
	cancel  context.CancelFunc
	done    chan struct{}
}

func newSourceManager(logger log.Logger, exporter *collector.Exporter) *sourceManager {
	return &sourceManager{logger: logger, exporter: exporter, running: make(map[string]*runningSource)}
}

// apply makes the running sources those of cfg. Decoders are made before
// anything is stopped, so a configuration that fails here changes nothing.
func (m *sourceManager) apply(cfg *config.Config) error {
	m.mu.Lock()
	defer m.mu.Unlock()

	decoders := make(map[string]decoder.Decoder)
	for _, sc := range cfg.Sources {
		if old, ok := m.running[sc.Name]; ok && reflect.DeepEqual(old.cfg, sc) {
			continue
		}
		d, err := decoder.New(sc.Decoder, decoder.Options{TypeNames: sc.EventNames})
		if err != nil {
			return err
		}
		decoders[sc.Name] = d
	}

	next := make(map[string]*runningSource, len(cfg.Sources))
	ordered := make([]*collector.Source, 0, len(cfg.Sources))
	for _, sc := range cfg.Sources {
		rs, ok := m.running[sc.Name]
		if !ok || decoders[sc.Name] != nil {
			if ok {
				rs.stop()
			}
			rs = m.start(sc, decoders[sc.Name])
		}
		next[sc.Name] = rs
		ordered = append(ordered, rs.metrics)
	}
	for name, rs := range m.running {
		if _, ok := next[name]; !ok {
			rs.stop()
			level.Info(m.logger).Log("msg", "Source removed", "source", name)
		}
	}
	m.running = next
	m.exporter.SetSources(ordered)
	return nil
}

func (m *sourceManager) start(sc config.Source, d decoder.Decoder) *runningSource {
	var src *netlinksrc.Source
	metrics := collector.NewSource(sc.Name, collector.SourceOptions{
		MaxEvents:   sc.MaxEvents,
		PayloadInfo: sc.PayloadInfo,
		Stats:       func() netlinksrc.Stats { return src.Stats() },
	})
	src = netlinksrc.New(netlinksrc.Config{
		Name:               sc.Name,
		Protocol:           int(sc.Protocol),
		Groups:             sc.Groups,
		ReceiveBufferBytes: sc.ReceiveBufferBytes,
	}, d, metrics, m.logger)

	ctx, cancel := context.WithCancel(context.Background())
	rs := &runningSource{cfg: sc, metrics: metrics, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(rs.done)
		src.Run(ctx)
	}()
	level.Info(m.logger).Log("msg", "Source started", "source", sc.Name, "protocol", int(sc.Protocol), "decoder", sc.Decoder)
	return rs
}

// stopAll stops every source and waits for them.
func (m *sourceManager) stopAll() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, rs := range m.running {
		rs.stop()
	}
	m.running = map[string]*runningSource{}
}

func (rs *runningSource) stop() {
	rs.cancel()
	<-rs.done
}
