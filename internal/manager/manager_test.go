package manager

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"
	"golang.org/x/sys/unix"

	"github.com/kevent-exporter/kevent_exporter/collector"
	"github.com/kevent-exporter/kevent_exporter/config"
	"github.com/kevent-exporter/kevent_exporter/internal/e2e"
	"github.com/kevent-exporter/kevent_exporter/internal/nlsend"
	"github.com/kevent-exporter/kevent_exporter/internal/syncbuf"
	"github.com/kevent-exporter/kevent_exporter/internal/testenv"
)

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
	m := New(log.NewLogfmtLogger(logs), c)
	defer m.StopAll()

	if err := m.Apply(mustParse(t, `
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
		e2e.Eventually(t, "source "+name+" is up", func() bool { return m.running[name].sub.Stats().Up() })
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
	e2e.Eventually(t, "the event on group 20 is counted", func() bool {
		events, _ := first["keep"].metrics.Totals()
		return events == 1
	})

	// keep: only cosmetic changes (group order, an empty event_names);
	// change: a new buffer size; drop: gone; add: new.
	if err := m.Apply(mustParse(t, `
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
	if err := m.Apply(bad); err == nil {
		t.Fatal("apply of an unknown decoder succeeded")
	}
	if m.running["change"] != before || len(m.running) != 4 {
		t.Error("a failed apply changed the running sources")
	}

	// After shutdown stopped every source, a reload that raced it starts
	// none again.
	m.StopAll()
	if err := m.Apply(mustParse(t, "sources:\n  - {name: late, protocol: usersock, groups: [24], decoder: raw}\n")); !errors.Is(err, ErrShuttingDown) {
		t.Errorf("apply after StopAll: %v, want %v", err, ErrShuttingDown)
	}
	if len(m.running) != 0 {
		t.Errorf("%d sources running after StopAll and a late apply", len(m.running))
	}
}

// TestStopAllInParallel: at shutdown every source is told to stop before
// any has finished, so that their queues are read together.
func TestStopAllInParallel(t *testing.T) {
	m := New(log.NewNopLogger(), collector.New())
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
		m.StopAll()
	}()
	// No source finishes stopping before all were told to.
	for range n {
		select {
		case <-told:
		case <-time.After(10 * time.Second):
			t.Fatal("StopAll waits for a source to stop before it tells the next")
		}
	}
	for _, rs := range sources {
		close(rs.done)
	}
	<-stopped
}
