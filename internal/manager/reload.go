package manager

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kevent-exporter/kevent_exporter/config"
)

var (
	// ErrShuttingDown is returned by a reload that shutdown overtook.
	ErrShuttingDown = errors.New("shutting down: reload abandoned")
	// ErrSuperseded is returned by a reload that finished reading after a
	// newer one had finished.
	ErrSuperseded = errors.New("superseded by a newer reload")
)

// Reloader reads the configuration and applies it, one reload at a time.
// Reading and parsing happen outside the lock and can be abandoned: a
// shutdown never waits for them, and a configuration read after shutdown
// began is never applied. Reloads overlap while they read: the newest
// request wins, so one that finishes reading after a newer one finished
// (applied or failed) changes nothing, neither the sources nor the gauges.
// A Reloader is a prometheus.Collector of those gauges:
// kevent_config_last_reload_successful and
// kevent_config_last_reload_success_timestamp_seconds.
type Reloader struct {
	file   string
	load   func() (*config.Config, error)
	apply  func(*config.Config) error
	logger log.Logger

	success     prometheus.Gauge
	successTime prometheus.Gauge

	// requested numbers the reloads in the order they began.
	requested atomic.Uint64

	mu sync.Mutex
	// finished is the number of the newest reload that finished.
	finished uint64
}

// NewReloader returns a Reloader that reads the configuration with load and
// applies it with apply; file names the configuration in its logs. It is
// made once the configuration the exporter starts with is applied: its
// gauges say that this load succeeded, now.
func NewReloader(file string, load func() (*config.Config, error), apply func(*config.Config) error, logger log.Logger) *Reloader {
	r := &Reloader{
		file: file, load: load, apply: apply, logger: logger,
		success: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "kevent", Name: "config_last_reload_successful",
			Help: "Whether the last configuration reload succeeded.",
		}),
		successTime: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "kevent", Name: "config_last_reload_success_timestamp_seconds",
			Help: "Unix time of the last successful configuration load.",
		}),
	}
	r.success.Set(1)
	r.successTime.SetToCurrentTime()
	return r
}

// Describe implements prometheus.Collector.
func (r *Reloader) Describe(ch chan<- *prometheus.Desc) {
	r.success.Describe(ch)
	r.successTime.Describe(ch)
}

// Collect implements prometheus.Collector.
func (r *Reloader) Collect(ch chan<- prometheus.Metric) {
	r.success.Collect(ch)
	r.successTime.Collect(ch)
}

// LoadContext runs load, returning early with ctx's error if ctx ends
// first. load goes on in the background then; its result is dropped.
func LoadContext(ctx context.Context, load func() (*config.Config, error)) (*config.Config, error) {
	type result struct {
		cfg *config.Config
		err error
	}
	ch := make(chan result, 1)
	go func() {
		cfg, err := load()
		ch <- result{cfg, err}
	}()
	select {
	case r := <-ch:
		return r.cfg, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Reload reads and applies the configuration unless ctx, which ends at
// shutdown, ends first. It returns ErrShuttingDown if ctx ended,
// ErrSuperseded if a newer reload finished first, or the error of reading
// or applying the configuration, which leaves the running one in place.
func (r *Reloader) Reload(ctx context.Context) error {
	gen := r.requested.Add(1)
	cfg, err := LoadContext(ctx, r.load)
	if ctx.Err() != nil {
		level.Info(r.logger).Log("msg", "Reload abandoned: shutting down", "file", r.file)
		return ErrShuttingDown
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if gen < r.finished {
		level.Info(r.logger).Log("msg", "Reload superseded by a newer one, not applied", "file", r.file)
		return ErrSuperseded
	}
	r.finished = gen
	if err == nil {
		if ctx.Err() != nil {
			level.Info(r.logger).Log("msg", "Reload abandoned: shutting down", "file", r.file)
			return ErrShuttingDown
		}
		err = r.apply(cfg)
	}
	if err != nil {
		r.success.Set(0)
		level.Error(r.logger).Log("msg", "Error reloading config, keeping the old one", "file", r.file, "err", err)
		return err
	}
	r.success.Set(1)
	r.successTime.SetToCurrentTime()
	level.Info(r.logger).Log("msg", "Reloaded config", "file", r.file, "sources", len(cfg.Sources))
	return nil
}
