package monitor

import (
	"bytes"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/go-kit/log"
	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/kevent-exporter/kevent_exporter/config"
	"github.com/kevent-exporter/kevent_exporter/decoder"
	"github.com/kevent-exporter/kevent_exporter/internal/e2e"
	"github.com/kevent-exporter/kevent_exporter/internal/nlsend"
	"github.com/kevent-exporter/kevent_exporter/internal/syncbuf"
	"github.com/kevent-exporter/kevent_exporter/internal/testenv"
	"github.com/kevent-exporter/kevent_exporter/netlinksrc/srcinfo"
)

// testName is the monitor's name in the tests' messages.
const testName = "kevent_exporter monitor"

// sourceLines returns the words after the time of out's lines about
// source, joined by single spaces.
func sourceLines(out, source string) []string {
	var got []string
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) > 2 && f[1] == source {
			got = append(got, strings.Join(f[2:], " "))
		}
	}
	return got
}

// TestRun runs the monitor in the test's process, so that the race
// detector sees its sink, its polling and its output.
func TestRun(t *testing.T) {
	t.Parallel()
	testenv.RequireRoot(t, "usersock multicast in a private network namespace")
	cfg, err := config.Parse([]byte("sources:\n  - {name: a, protocol: usersock, groups: [15], decoder: raw}\n  - {name: b, protocol: usersock, groups: [15], decoder: kevent}\n"))
	if err != nil {
		t.Fatal(err)
	}
	out, summary := &syncbuf.Buffer{}, &syncbuf.Buffer{}
	m := newMonitor(testName, out, Text, 0)
	sig := make(chan os.Signal, 1)
	status := make(chan int, 1)
	go func() { status <- m.run(cfg.Sources, log.NewNopLogger(), sig, 0, summary) }()
	e2e.Eventually(t, "both sources are up", func() bool {
		return strings.Contains(out.String(), " a !up ") && strings.Contains(out.String(), " b !up ")
	})
	snd, err := nlsend.NewSender(unix.NETLINK_USERSOCK, 15)
	if err != nil {
		t.Fatal(err)
	}
	defer snd.Close()
	const n = 500
	for i := 1; i <= n; i++ {
		// Each source decodes what the other finds malformed.
		msg := nlsend.AppendMessage(nil, 16, 0, []byte("r"))
		if i%2 == 0 {
			msg = nlsend.AppendKevent(nil, nlsend.KeventEvent{Seq: uint64(i / 2), Instance: 1, Name: "k"})
		}
		if err := snd.Send(msg); err != nil {
			t.Fatal(err)
		}
	}
	e2e.Eventually(t, "every datagram is accounted for", func() bool {
		return strings.Count(out.String(), "!decode_error") == n/2 && strings.Count(out.String(), " a 16 payload=") == n
	})
	sig <- os.Interrupt
	if s := <-status; s != ExitOK {
		t.Errorf("run returned %d, want %d", s, ExitOK)
	}
	// Every raw message, and every kevent message as type 16, is an event
	// of a; b decodes the kevent messages.
	if got := strings.Count(out.String(), " a 16 payload="); got != n {
		t.Errorf("%d events of a, want %d", got, n)
	}
	if got := strings.Count(out.String(), " b k value=0 "); got != n/2 {
		t.Errorf("%d events of b, want %d", got, n/2)
	}
	for _, want := range []string{
		fmt.Sprintf("summary source=a events=%d lost=0 overruns=0 decode_errors=0 rejected=0 attached=true\n", n),
		fmt.Sprintf("summary source=b events=%d lost=0 overruns=0 decode_errors=%d rejected=0 attached=true\n", n/2, n/2),
	} {
		if !strings.Contains(summary.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, summary)
		}
	}
}

// TestSinkConcurrent calls two sources' sinks at once, as their
// subscriptions do, with polls in between: every line comes out whole, and
// --count stops the output at exactly its count.
func TestSinkConcurrent(t *testing.T) {
	var out syncbuf.Buffer
	m := newMonitor(testName, &out, Text, 1500)
	sinks := []*sink{
		newSink(m, config.Source{Name: "a", Decoder: "raw"}, decoder.NewRaw(nil), log.NewNopLogger()),
		newSink(m, config.Source{Name: "b", Decoder: "raw"}, decoder.NewRaw(nil), log.NewNopLogger()),
	}
	var wg sync.WaitGroup
	for _, s := range sinks {
		wg.Go(func() {
			events := make([]decoder.Event, 10)
			for i := range events {
				events[i] = decoder.Event{Name: []byte("e"), Payload: bytes.Repeat([]byte("x"), 100)}
			}
			for range 100 {
				s.Malformed([]byte("bad"), 3, 1)
				s.Record(events, 0, 1)
			}
		})
	}
	for i := range uint64(50) {
		for _, s := range sinks {
			s.poll(srcinfo.Stats{State: srcinfo.StateUp, Lost: i}, false)
		}
	}
	wg.Wait()
	select {
	case <-m.finished:
	default:
		t.Error("--count reached but the monitor did not finish")
	}
	line := regexp.MustCompile(`^\S+ [ab] (e payload="x{100}"|!up .*|!lost .*|!decode_error bytes=3 malformed=1|  .*)$`)
	var events int
	for _, l := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
		if strings.HasPrefix(l, "  ") {
			continue
		}
		if !line.MatchString(l) {
			t.Fatalf("broken line %q", l)
		}
		if strings.Contains(l, " e payload=") {
			events++
		}
	}
	if events != 1500 {
		t.Errorf("%d events printed, want 1500", events)
	}
}

// TestSequenceNotices: what each kevent sequence number says is printed
// before its event, as the collector counts it (internal/sequence): a gap,
// a late number, a copy, a new instance; numbers in order, and those below
// the first one followed, print nothing.
func TestSequenceNotices(t *testing.T) {
	var out syncbuf.Buffer
	m := newMonitor(testName, &out, Text, 0)
	s := newSink(m, config.Source{Name: "k", Decoder: "kevent"}, decoder.NewRaw(nil), log.NewNopLogger())
	ev := func(instance, seq uint64) decoder.Event {
		return decoder.Event{Name: []byte("e"), HasSeq: true, Seq: seq, Instance: instance}
	}
	// Batches as the subscription reads them: what a number says does not
	// depend on where its batch starts.
	for _, batch := range [][]decoder.Event{
		{ev(7, 10), ev(7, 11), ev(7, 14)},
		{ev(7, 13), ev(7, 13)},
		{ev(7, 12)},
		{ev(7, 9), ev(7, 11), ev(7, 300), ev(7, 12)},
		{ev(9, 1), ev(9, 0), ev(9, 2)},
	} {
		s.Record(batch, 0, 0)
	}
	const e = `e payload="" `
	want := []string{
		e + "seq=10 instance=7",
		e + "seq=11 instance=7",
		"!gap instance=7 missing=2 last_seq=11 seq=14",
		e + "seq=14 instance=7",
		"!out_of_order instance=7 seq=13 highest_seq=14",
		e + "seq=13 instance=7",
		"!duplicate instance=7 seq=13 highest_seq=14",
		e + "seq=13 instance=7",
		"!out_of_order instance=7 seq=12 highest_seq=14",
		e + "seq=12 instance=7",
		// Below the first number followed: sent before the monitor
		// started.
		e + "seq=9 instance=7",
		"!duplicate instance=7 seq=11 highest_seq=14",
		e + "seq=11 instance=7",
		"!gap instance=7 missing=285 last_seq=14 seq=300",
		e + "seq=300 instance=7",
		// Beyond the window: late or a copy, counted as late.
		"!out_of_order instance=7 seq=12 highest_seq=300",
		e + "seq=12 instance=7",
		"!reset instance=9 seq=1 previous_instance=7 previous_seq=300",
		e + "seq=1 instance=9",
		e + "seq=0 instance=9",
		e + "seq=2 instance=9",
	}
	if diff := cmp.Diff(want, sourceLines(out.String(), "k")); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}
	if c := s.seq.Counts(); c.Missing != 287 || c.Reordered != 3 || c.Duplicates != 2 || c.Resets != 1 {
		t.Errorf("tracker counts %+v", c)
	}
}

// TestDecodeErrorPlace calls a source's decoder and sink as its
// subscription does for one batch of four datagrams: good, too large for
// its slot, half malformed, good. Each decode error prints where its
// datagram came.
func TestDecodeErrorPlace(t *testing.T) {
	var out syncbuf.Buffer
	m := newMonitor(testName, &out, Text, 0)
	s := newSink(m, config.Source{Name: "a", Decoder: "raw"}, decoder.NewRaw(nil), log.NewNopLogger())
	var events []decoder.Event
	events, _ = s.placed.Decode(events, nlsend.AppendMessage(nil, 16, 0, []byte("1")))
	s.Malformed(nil, 70000, 1)
	half := nlsend.AppendMessage(nil, 16, 0, []byte("2"))
	half = append(half, 1, 2, 3)
	events, bad := s.placed.Decode(events, half)
	s.Malformed(half, len(half), bad)
	events, _ = s.placed.Decode(events, nlsend.AppendMessage(nil, 16, 0, []byte("3")))
	s.Record(events, 0, 1+bad)

	want := []string{
		`16 value=1 payload="1"`,
		"!decode_error bytes=70000 malformed=1",
		fmt.Sprintf("!decode_error bytes=%d malformed=1", len(half)),
		`16 value=2 payload="2"`,
		`16 value=3 payload="3"`,
	}
	if diff := cmp.Diff(want, sourceLines(out.String(), "a")); diff != "" {
		t.Errorf("output (-want +got):\n%s\n%s", diff, &out)
	}
}
