package main

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
	// errShuttingDown is returned by a reload that shutdown overtook.
	errShuttingDown = errors.New("shutting down: reload abandoned")
	// errSuperseded is returned by a reload that finished reading after a
	// newer one had finished.
	errSuperseded = errors.New("superseded by a newer reload")
)

// reloader reads the configuration and applies it, one reload at a time.
// Reading and parsing happen outside the lock and can be abandoned: a
// shutdown never waits for them, and a configuration read after shutdown
// began is never applied. Reloads overlap while they read: the newest
// request wins, so one that finishes reading after a newer one finished
// (applied or failed) changes nothing, neither the sources nor the gauges.
type reloader struct {
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

// loadContext runs load, returning early with ctx's error if ctx ends
// first. load goes on in the background then; its result is dropped.
func loadContext(ctx context.Context, load func() (*config.Config, error)) (*config.Config, error) {
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

// reload reads and applies the configuration unless ctx, which ends at
// shutdown, ends first.
func (r *reloader) reload(ctx context.Context) error {
	gen := r.requested.Add(1)
	cfg, err := loadContext(ctx, r.load)
	if ctx.Err() != nil {
		level.Info(r.logger).Log("msg", "Reload abandoned: shutting down", "file", r.file)
		return errShuttingDown
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if gen < r.finished {
		level.Info(r.logger).Log("msg", "Reload superseded by a newer one, not applied", "file", r.file)
		return errSuperseded
	}
	r.finished = gen
	if err == nil {
		if ctx.Err() != nil {
			level.Info(r.logger).Log("msg", "Reload abandoned: shutting down", "file", r.file)
			return errShuttingDown
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
