package manager

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kevent-exporter/kevent_exporter/config"
	"github.com/kevent-exporter/kevent_exporter/internal/syncbuf"
)

func newTestReloader(load func() (*config.Config, error), apply func(*config.Config) error) (*Reloader, *syncbuf.Buffer) {
	logs := &syncbuf.Buffer{}
	return &Reloader{
		file: "test.yml", load: load, apply: apply, logger: log.NewLogfmtLogger(logs),
		success:     prometheus.NewGauge(prometheus.GaugeOpts{Name: "s"}),
		successTime: prometheus.NewGauge(prometheus.GaugeOpts{Name: "t"}),
	}, logs
}

// TestReloadAbandonedAtShutdown has a reload whose configuration takes
// long to read when shutdown begins: the reload returns at once, and the
// configuration, read later, is never applied.
func TestReloadAbandonedAtShutdown(t *testing.T) {
	release := make(chan struct{})
	loaded := make(chan struct{})
	var applied atomic.Bool
	r, logs := newTestReloader(func() (*config.Config, error) {
		<-release
		defer close(loaded)
		return config.Default(), nil
	}, func(*config.Config) error {
		applied.Store(true)
		return nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Reload(ctx) }()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, ErrShuttingDown) {
			t.Fatalf("reload: %v, want %v", err, ErrShuttingDown)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("reload still waiting for the configuration 10s after shutdown began")
	}
	close(release)
	<-loaded
	if applied.Load() {
		t.Fatal("a configuration read after shutdown began was applied")
	}
	if want := `msg="Reload abandoned: shutting down"`; !strings.Contains(logs.String(), want) {
		t.Errorf("log lacks %s:\n%s", want, logs)
	}
}

func TestReloadErrorsKeepOldConfig(t *testing.T) {
	r, logs := newTestReloader(func() (*config.Config, error) { return nil, errors.New("bad file") }, func(*config.Config) error {
		t.Fatal("applied a configuration that failed to load")
		return nil
	})
	if err := r.Reload(context.Background()); err == nil || err.Error() != "bad file" {
		t.Fatalf("reload: %v, want the load error", err)
	}
	if want := `msg="Error reloading config, keeping the old one" file=test.yml err="bad file"`; !strings.Contains(logs.String(), want) {
		t.Errorf("log lacks %s:\n%s", want, logs)
	}
}

// TestReloadNewestWins runs two reloads at once: the first reads its file
// slowly, the second quickly. The second's configuration is applied; the
// first's, read after it, is not, and leaves the success gauge as the
// newest reload set it, also when that one failed.
func TestReloadNewestWins(t *testing.T) {
	for _, newerFails := range []bool{false, true} {
		t.Run(fmt.Sprintf("newer_fails=%v", newerFails), func(t *testing.T) {
			older, newer := config.Default(), &config.Config{}
			slowStarted, releaseSlow := make(chan struct{}), make(chan struct{})
			var loads atomic.Int32
			var applied []*config.Config
			r, logs := newTestReloader(func() (*config.Config, error) {
				if loads.Add(1) == 1 {
					close(slowStarted)
					<-releaseSlow
					return older, nil
				}
				if newerFails {
					return nil, errors.New("bad file")
				}
				return newer, nil
			}, func(c *config.Config) error {
				applied = append(applied, c)
				return nil
			})
			first := make(chan error, 1)
			go func() { first <- r.Reload(context.Background()) }()
			<-slowStarted
			err := r.Reload(context.Background())
			if newerFails != (err != nil) {
				t.Fatalf("newer reload: %v", err)
			}
			close(releaseSlow)
			if err := <-first; !errors.Is(err, ErrSuperseded) {
				t.Errorf("older reload: %v, want %v", err, ErrSuperseded)
			}
			want := []*config.Config{newer}
			if newerFails {
				want = nil
			}
			if len(applied) != len(want) || len(want) > 0 && applied[0] != newer {
				t.Errorf("applied %d configurations (newer first: %v), want only the newer one's", len(applied), len(applied) > 0 && applied[0] == newer)
			}
			wantGauge := 1.0
			if newerFails {
				wantGauge = 0
			}
			if got := testutil.ToFloat64(r.success); got != wantGauge {
				t.Errorf("kevent_config_last_reload_successful = %v, want %v", got, wantGauge)
			}
			if want := `msg="Reload superseded by a newer one, not applied"`; !strings.Contains(logs.String(), want) {
				t.Errorf("log lacks %s:\n%s", want, logs)
			}
		})
	}
}

// TestNewReloader: a Reloader is made once the configuration the exporter
// starts with is applied, and its gauges say that this load succeeded.
func TestNewReloader(t *testing.T) {
	start := time.Now()
	r := NewReloader("test.yml", func() (*config.Config, error) { return config.Default(), nil }, func(*config.Config) error { return nil }, log.NewNopLogger())
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(r)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP kevent_config_last_reload_successful Whether the last configuration reload succeeded.
# TYPE kevent_config_last_reload_successful gauge
kevent_config_last_reload_successful 1
`), "kevent_config_last_reload_successful"); err != nil {
		t.Error(err)
	}
	if got := testutil.ToFloat64(r.successTime); got < float64(start.Unix()) {
		t.Errorf("kevent_config_last_reload_success_timestamp_seconds = %v, want the time of NewReloader, not before %d", got, start.Unix())
	}
}
