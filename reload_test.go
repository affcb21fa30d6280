package main

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
	"golang.org/x/sys/unix"

	"github.com/kevent-exporter/kevent_exporter/collector"
	"github.com/kevent-exporter/kevent_exporter/config"
	"github.com/kevent-exporter/kevent_exporter/internal/nlsend"
	"github.com/kevent-exporter/kevent_exporter/internal/syncbuf"
	"github.com/kevent-exporter/kevent_exporter/internal/testenv"
)

func newTestReloader(load func() (*config.Config, error), apply func(*config.Config) error) (*reloader, *syncbuf.Buffer) {
	logs := &syncbuf.Buffer{}
	return &reloader{
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
	go func() { done <- r.reload(ctx) }()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, errShuttingDown) {
			t.Fatalf("reload: %v, want %v", err, errShuttingDown)
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
	if err := r.reload(context.Background()); err == nil || err.Error() != "bad file" {
		t.Fatalf("reload: %v, want the load error", err)
	}
	if want := `msg="Error reloading config, keeping the old one" file=test.yml err="bad file"`; !strings.Contains(logs.String(), want) {
		t.Errorf("log lacks %s:\n%s", want, logs)
	}
}

func mustParse(t *testing.T, yml string) *config.Config {
	t.Helper()
	c, err := config.Parse([]byte(yml))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestSourceManagerApply applies configurations in turn and checks which
// sources are kept (same subscription and metrics), replaced, started and
// stopped, with real subscriptions on NETLINK_USERSOCK.
func TestSourceManagerApply(t *testing.T) {
	testenv.RequireRoot(t, "subscriptions on NETLINK_USERSOCK")
	logs := &syncbuf.Buffer{}
	c := collector.New()
	m := newSourceManager(log.NewLogfmtLogger(logs), c)
	defer m.stopAll()

	if err := m.apply(mustParse(t, `
sources:
  - {name: keep, protocol: usersock, groups: [21, 20], decoder: raw}
  - {name: change, protocol: usersock, groups: [22], decoder: raw}
  - {name: drop, protocol: usersock, groups: [23], decoder: raw}
  - {name: fam, family: nlctrl, groups: [notify], decoder: genl}
`)); err != nil {
		t.Fatal(err)
	}
	first := make(map[string]*runningSource)
	for name, rs := range m.running {
		first[name] = rs
	}
	waitUp := func(name string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !m.running[name].sub.Stats().Up() {
			if time.Now().After(deadline) {
				t.Fatalf("source %s not up", name)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitUp("keep")
	snd, err := nlsend.NewSender(unix.NETLINK_USERSOCK, 20)
	if err != nil {
		t.Fatal(err)
	}
	defer snd.Close()
	if err := snd.Send(nlsend.AppendMessage(nil, 0x20, 1, []byte("x"))); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for events, _ := first["keep"].metrics.Totals(); events != 1; events, _ = first["keep"].metrics.Totals() {
		if time.Now().After(deadline) {
			t.Fatal("event on group 20 not counted")
		}
		time.Sleep(10 * time.Millisecond)
	}

	// keep: only cosmetic changes (group order, an empty event_names);
	// change: a new buffer size; drop: gone; add: new.
	if err := m.apply(mustParse(t, `
sources:
  - {name: add, protocol: usersock, groups: [24], decoder: raw}
  - {name: change, protocol: usersock, groups: [22], decoder: raw, receive_buffer_bytes: 65536}
  - {name: keep, protocol: usersock, groups: [20, 21], decoder: raw, event_names: {}}
  - {name: fam, family: nlctrl, groups: [notify], decoder: genl}
`)); err != nil {
		t.Fatal(err)
	}
	if m.running["keep"] != first["keep"] {
		t.Error("source keep was restarted by a cosmetic change")
	}
	if m.running["fam"] != first["fam"] {
		t.Error("unchanged family source fam was restarted")
	}
	if events, _ := m.running["keep"].metrics.Totals(); events != 1 {
		t.Errorf("source keep has %d events after the reload, want its 1", events)
	}
	if m.running["change"] == first["change"] {
		t.Error("source change kept its old subscription")
	}
	if _, ok := m.running["drop"]; ok {
		t.Error("source drop still running")
	}
	for _, name := range []string{"change", "drop"} {
		select {
		case <-first[name].done:
		default:
			t.Errorf("old subscription of %s not stopped", name)
		}
	}
	if _, ok := m.running["add"]; !ok {
		t.Error("source add not started")
	}
	for _, want := range []string{
		`msg="Source replaced: its configuration changed" source=change events=0 decode_errors=0 datagrams_received=0 datagrams_lost=0`,
		`msg="Source removed" source=drop events=0`,
	} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, logs)
		}
	}
	// The collector reports the sources in configuration order.
	var names []string
	for _, sm := range c.Sources() {
		names = append(names, sm.Name())
	}
	if got := strings.Join(names, ","); got != "add,change,keep,fam" {
		t.Errorf("collector sources = %s, want add,change,keep,fam", got)
	}

	// A configuration whose decoder cannot be made changes nothing.
	before := m.running["change"]
	bad := mustParse(t, "sources:\n  - {name: change, protocol: usersock, groups: [22], decoder: raw, max_events: 5}\n")
	bad.Sources[0].Decoder = "nosuch"
	if err := m.apply(bad); err == nil {
		t.Fatal("apply of an unknown decoder succeeded")
	}
	if m.running["change"] != before || len(m.running) != 4 {
		t.Error("a failed apply changed the running sources")
	}

	// After shutdown stopped every source, a reload that raced it starts
	// none again.
	m.stopAll()
	if err := m.apply(mustParse(t, "sources:\n  - {name: late, protocol: usersock, groups: [24], decoder: raw}\n")); !errors.Is(err, errShuttingDown) {
		t.Errorf("apply after stopAll: %v, want %v", err, errShuttingDown)
	}
	if len(m.running) != 0 {
		t.Errorf("%d sources running after stopAll and a late apply", len(m.running))
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
			go func() { first <- r.reload(context.Background()) }()
			<-slowStarted
			err := r.reload(context.Background())
			if newerFails != (err != nil) {
				t.Fatalf("newer reload: %v", err)
			}
			close(releaseSlow)
			if err := <-first; !errors.Is(err, errSuperseded) {
				t.Errorf("older reload: %v, want %v", err, errSuperseded)
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

// TestStopAllInParallel: at shutdown every source is told to stop before
// any has finished, so that their queues are read together.
func TestStopAllInParallel(t *testing.T) {
	m := newSourceManager(log.NewNopLogger(), collector.New())
	const n = 4
	told := make(chan string, n)
	var sources []*runningSource
	for i := range n {
		name := fmt.Sprint("s", i)
		rs := &runningSource{
			cfg: config.Source{Name: name}, metrics: collector.NewSourceMetrics(name, collector.SourceOptions{}),
			cancel: func() { told <- name }, done: make(chan struct{}),
		}
		m.running[name] = rs
		sources = append(sources, rs)
	}
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		m.stopAll()
	}()
	// No source finishes stopping before all were told to.
	for range n {
		select {
		case <-told:
		case <-time.After(10 * time.Second):
			t.Fatal("stopAll waits for a source to stop before it tells the next")
		}
	}
	for _, rs := range sources {
		close(rs.done)
	}
	<-stopped
}
