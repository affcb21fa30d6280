package netlinksrc

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/log"
	"golang.org/x/sys/unix"

	"github.com/kevent-exporter/kevent_exporter/decoder"
	"github.com/kevent-exporter/kevent_exporter/internal/e2e"
	"github.com/kevent-exporter/kevent_exporter/internal/nlsend"
	"github.com/kevent-exporter/kevent_exporter/internal/syncbuf"
	"github.com/kevent-exporter/kevent_exporter/internal/testenv"
)

// These tests use the host kernel's NETLINK_USERSOCK. Each uses its own
// group from this package's range (20-24) so that tests of other packages,
// run in parallel, do not see their messages.

// sink counts events and can hold the receive loop still.
type sink struct {
	mu       sync.Mutex
	events   int
	bad      int
	bytes    int
	names    map[string]int
	payloads []string
	hold     chan struct{} // Record blocks until it is closed
	held     chan struct{} // closed when Record first blocks
}

func newSink() *sink {
	return &sink{names: make(map[string]int)}
}

func (s *sink) Record(events []decoder.Event, n, bad int) {
	if s.hold != nil {
		select {
		case <-s.held:
		default:
			close(s.held)
		}
		<-s.hold
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events += len(events)
	s.bad += bad
	s.bytes += n
	for _, e := range events {
		s.names[string(e.Name)]++
		s.payloads = append(s.payloads, string(e.Payload))
	}
}

func (s *sink) count(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.names[name]
}

func (s *sink) counts() (events, bad int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.events, s.bad
}

// start runs a subscription until the test ends.
func start(t *testing.T, cfg Config, dec decoder.Decoder, sk Sink, logs *syncbuf.Buffer) *Subscription {
	t.Helper()
	testenv.RequireRoot(t, "the tests multicast on NETLINK_USERSOCK, which needs CAP_NET_ADMIN to join groups")
	var logger log.Logger = log.NewNopLogger()
	if logs != nil {
		logger = log.NewLogfmtLogger(logs)
	}
	s := New(cfg, dec, logger)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Run(ctx, sk)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("source did not stop within 5s of its context ending")
		}
	})
	return s
}

func waitUp(t *testing.T, s *Subscription) {
	t.Helper()
	e2e.Eventually(t, "the source is up", func() bool { return s.Stats().Up() })
}

// waitStable polls f until it returns the same value for 300ms.
func waitStable(t *testing.T, f func() string) string {
	t.Helper()
	last, since := f(), time.Now()
	e2e.Eventually(t, "the counts stay the same for 300 ms", func() bool {
		if v := f(); v != last {
			last, since = v, time.Now()
			return false
		}
		return time.Since(since) > 300*time.Millisecond
	}, e2e.Lazy(func() string { return "last: " + last }))
	return last
}

func newSender(t *testing.T, group uint32) *nlsend.Sender {
	t.Helper()
	snd, err := nlsend.NewSender(unix.NETLINK_USERSOCK, group)
	if err != nil {
		t.Fatalf("usersock sender: %v", err)
	}
	t.Cleanup(func() { snd.Close() })
	return snd
}

func TestReceiveRaw(t *testing.T) {
	group := testenv.UsersockGroup(t)
	sk := newSink()
	s := start(t, Config{Name: "raw", Protocol: unix.NETLINK_USERSOCK, Groups: []uint32{group}}, decoder.NewRaw(nil), sk, nil)
	waitUp(t, s)
	snd := newSender(t, group)

	// The seed's message: NLMSG_DONE, no NUL.
	if err := snd.Send(nlsend.AppendMessage(nil, unix.NLMSG_DONE, 1, []byte("Hello from kernel"))); err != nil {
		t.Fatal(err)
	}
	// Three messages in one datagram, the middle one malformed in its
	// payload (NLMSG_ERROR needs 4 bytes), then one with a bad header.
	var b []byte
	b = nlsend.AppendMessage(b, 0x20, 2, []byte("a\x00"))
	b = nlsend.AppendMessage(b, unix.NLMSG_ERROR, 3, []byte{1})
	b = nlsend.AppendMessage(b, 0x20, 4, []byte("b"))
	if err := snd.Send(b); err != nil {
		t.Fatal(err)
	}
	if err := snd.Send([]byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}

	got := waitStable(t, func() string { e, bad := sk.counts(); return fmt.Sprint(e, bad) })
	if want := "3 2"; got != want {
		t.Fatalf("events, decode errors = %s, want %s", got, want)
	}
	sk.mu.Lock()
	defer sk.mu.Unlock()
	if sk.names["done"] != 1 || sk.names["32"] != 2 {
		t.Fatalf("names = %v, want done:1 32:2", sk.names)
	}
	if want := []string{"Hello from kernel", "a", "b"}; fmt.Sprint(sk.payloads) != fmt.Sprint(want) {
		t.Fatalf("payloads = %q, want %q", sk.payloads, want)
	}
}

// TestFloodAccounting floods a reader that is held still with more than
// its socket buffer holds: every message is either counted or reported
// lost by the kernel, and reading goes on after the overrun.
func TestFloodAccounting(t *testing.T) {
	const sent = 100000
	group := testenv.UsersockGroup(t)
	sk := newSink()
	sk.hold, sk.held = make(chan struct{}), make(chan struct{})
	s := start(t, Config{Name: "flood", Protocol: unix.NETLINK_USERSOCK, Groups: []uint32{group}, ReceiveBufferBytes: 256 << 10}, decoder.NewRaw(nil), sk, nil)
	waitUp(t, s)
	snd := newSender(t, group)

	msg := func(i int) []byte {
		return nlsend.AppendMessage(nil, 0x10, uint32(i), []byte(fmt.Sprintf("event %d", i)))
	}
	if err := snd.Send(msg(0)); err != nil {
		t.Fatal(err)
	}
	<-sk.held // the reader is now stuck in Record
	for i := 1; i < sent; i++ {
		if err := snd.Send(msg(i)); err != nil {
			t.Fatal(err)
		}
	}
	close(sk.hold)

	got := waitStable(t, func() string {
		e, _ := sk.counts()
		st := s.Stats()
		return fmt.Sprintf("events=%d lost=%d", e, st.Lost)
	})
	var events, lost int
	fmt.Sscanf(got, "events=%d lost=%d", &events, &lost)
	t.Logf("sent=%d %s overruns=%d", sent, got, s.Stats().Overruns)
	if lost == 0 {
		t.Fatalf("nothing lost: the flood did not overflow the socket buffer (%s)", got)
	}
	if events+lost != sent {
		t.Fatalf("events + lost = %d, want sent = %d (%s)", events+lost, sent, got)
	}
	if s.Stats().Overruns == 0 {
		t.Fatal("no overrun (ENOBUFS) counted")
	}

	// The source reads on after the overrun.
	for i := 0; i < 10; i++ {
		if err := snd.Send(msg(sent + i)); err != nil {
			t.Fatal(err)
		}
	}
	got = waitStable(t, func() string { e, _ := sk.counts(); return fmt.Sprint(e) })
	if want := fmt.Sprint(events + 10); got != want {
		t.Fatalf("events after overrun = %s, want %s", got, want)
	}
}

func TestUnregisteredProtocol(t *testing.T) {
	const proto = 29
	logs := &syncbuf.Buffer{}
	s := start(t, Config{Name: "seed", Protocol: proto, Groups: []uint32{2}}, decoder.NewRaw(nil), newSink(), logs)
	if fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW, proto); err == nil {
		unix.Close(fd)
		t.Fatalf("netlink protocol %d is registered on this host; this test needs it unregistered", proto)
	} else if !errors.Is(err, unix.EPROTONOSUPPORT) {
		t.Fatalf("socket(protocol %d): %v, want EPROTONOSUPPORT", proto, err)
	}
	// The watcher reads the socket table several times; the source stays
	// down and logs once.
	first := protocols.lookCount()
	e2e.Eventually(t, "the socket table has been read 5 more times", func() bool { return protocols.lookCount() >= first+5 })
	if s.Stats().Up() {
		t.Fatal("source is up on an unregistered protocol")
	}
	out := logs.String()
	const want = "Netlink protocol not registered: the kernel module that provides it is not loaded; waiting for it"
	if n := strings.Count(out, want); n != 1 {
		t.Fatalf("log has %d lines %q, want 1; log:\n%s", n, want, out)
	}
}

func TestReceiveBufferGranted(t *testing.T) {
	s := start(t, Config{Name: "buf", Protocol: unix.NETLINK_USERSOCK, Groups: []uint32{testenv.IdleUsersockGroup}, ReceiveBufferBytes: 4 << 20}, decoder.NewRaw(nil), newSink(), nil)
	waitUp(t, s)
	// The kernel doubles the asked size for its bookkeeping.
	if got := s.Stats().ReceiveBufferBytes; got != 8<<20 {
		t.Fatalf("receive buffer = %d, want %d (as root, SO_RCVBUFFORCE)", got, 8<<20)
	}
}

func TestJoinGroupError(t *testing.T) {
	// usersock has 32 groups: joining 40 fails. Alone, the source stays
	// down and says why; beside a group it can join, it receives on that
	// one and says which group failed.
	logs := &syncbuf.Buffer{}
	down := start(t, Config{Name: "big", Protocol: unix.NETLINK_USERSOCK, Groups: []uint32{40}}, decoder.NewRaw(nil), newSink(), logs)
	e2e.Eventually(t, "the join error is logged", func() bool {
		return strings.Contains(logs.String(), `source=big protocol=2 groups=[40] msg="Cannot open netlink socket" err="joining group 40: invalid argument"`)
	})
	if down.Stats().Up() {
		t.Fatal("source up although joining its only group failed")
	}

	g := testenv.UsersockGroup(t)
	sk := newSink()
	s := start(t, Config{Name: "some", Protocol: unix.NETLINK_USERSOCK, Groups: []uint32{g, 40}}, decoder.NewRaw(nil), sk, logs)
	waitUp(t, s)
	if got := s.Stats().GroupsJoined; got != 1 {
		t.Errorf("groups joined = %d, want 1", got)
	}
	want := fmt.Sprintf(`source=some protocol=2 groups="[%[1]d 40]" msg="Cannot join some multicast groups; receiving the others" joined=[%[1]d] failed="40: invalid argument"`, g)
	if out := logs.String(); !strings.Contains(out, want) {
		t.Errorf("log lacks %s:\n%s", want, out)
	}
	if err := newSender(t, g).Send(nlsend.AppendMessage(nil, 0x20, 1, []byte("x"))); err != nil {
		t.Fatal(err)
	}
	e2e.Eventually(t, "the event is counted", func() bool { e, _ := sk.counts(); return e == 1 })
}

// TestOversizedDatagram sends a datagram bigger than a receive slot: it is
// counted as a decode error, not lost silently, and the source makes room
// so that the next one of that size is decoded.
func TestOversizedDatagram(t *testing.T) {
	group := testenv.UsersockGroup(t)
	sk := newSink()
	s := start(t, Config{Name: "big", Protocol: unix.NETLINK_USERSOCK, Groups: []uint32{group}}, decoder.NewRaw(nil), sk, nil)
	waitUp(t, s)
	snd := newSender(t, group)
	big := nlsend.AppendMessage(nil, 0x20, 1, bytes.Repeat([]byte("x"), 100<<10))
	for i := 0; i < 2; i++ {
		if err := snd.Send(big); err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprint(i, 1)
		if got := waitStable(t, func() string { e, bad := sk.counts(); return fmt.Sprint(e, bad) }); got != want {
			t.Fatalf("after datagram %d: events, decode errors = %s, want %s", i+1, got, want)
		}
	}
	sk.mu.Lock()
	defer sk.mu.Unlock()
	if len(sk.payloads) != 1 || len(sk.payloads[0]) != 100<<10 {
		t.Fatal("the second oversized datagram's payload was not decoded whole")
	}
}

// TestUeventBatchNames queues several uevents while the reader is held, so
// that one recvmmsg takes them together: each keeps its own event name.
func TestUeventBatchNames(t *testing.T) {
	group := testenv.UsersockGroup(t)
	sk := newSink()
	sk.hold, sk.held = make(chan struct{}), make(chan struct{})
	s := start(t, Config{Name: "uev", Protocol: unix.NETLINK_USERSOCK, Groups: []uint32{group}}, decoder.NewUevent(), sk, nil)
	waitUp(t, s)
	snd := newSender(t, group)
	uevent := func(action, subsystem string) []byte {
		return []byte(fmt.Sprintf("%s@/devices/x\x00ACTION=%s\x00DEVPATH=/devices/x\x00SUBSYSTEM=%s\x00", action, action, subsystem))
	}
	if err := snd.Send(uevent("add", "first")); err != nil {
		t.Fatal(err)
	}
	<-sk.held
	want := map[string]int{"first/add": 1}
	for _, u := range [][2]string{{"add", "net"}, {"remove", "queues"}, {"change", "block"}, {"bind", "pci"}} {
		if err := snd.Send(uevent(u[0], u[1])); err != nil {
			t.Fatal(err)
		}
		want[u[1]+"/"+u[0]]++
	}
	close(sk.hold)
	waitStable(t, func() string { e, _ := sk.counts(); return fmt.Sprint(e) })
	sk.mu.Lock()
	defer sk.mu.Unlock()
	if fmt.Sprint(sk.names) != fmt.Sprint(want) {
		t.Fatalf("names = %v, want %v", sk.names, want)
	}
}

// malformedSink records the datagrams a subscription reports malformed.
type malformedSink struct {
	*sink
	mu  sync.Mutex
	got []string
}

func (m *malformedSink) Malformed(d []byte, n, bad int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.got = append(m.got, fmt.Sprintf("%x/%d/%d", d, n, bad))
}

// TestMalformedSink: a sink that asks for malformed datagrams gets each
// one, with how many of its messages were bad; good ones are not reported.
func TestMalformedSink(t *testing.T) {
	group := testenv.UsersockGroup(t)
	sk := &malformedSink{sink: newSink()}
	s := start(t, Config{Name: "bad", Protocol: unix.NETLINK_USERSOCK, Groups: []uint32{group}}, decoder.NewRaw(nil), sk, nil)
	waitUp(t, s)
	snd := newSender(t, group)
	for _, d := range [][]byte{nlsend.AppendMessage(nil, 0x20, 1, []byte("ok")), {1, 2, 3}} {
		if err := snd.Send(d); err != nil {
			t.Fatal(err)
		}
	}
	e2e.Eventually(t, "both datagrams are handled", func() bool { e, bad := sk.counts(); return e == 1 && bad == 1 })
	sk.mu.Lock()
	defer sk.mu.Unlock()
	if want := "[010203/3/1]"; fmt.Sprint(sk.got) != want {
		t.Fatalf("malformed = %v, want %s", sk.got, want)
	}
}

// TestRequests: a subscription sends its requests to the kernel when it
// opens its socket. rtnetlink answers an RTM_GETLINK dump request with the
// namespace's links (lo), which the subscription's socket then receives
// as unicast datagrams from the kernel.
func TestRequests(t *testing.T) {
	sk := newSink()
	dump := nlsend.AppendMessage(nil, unix.RTM_GETLINK, 1, make([]byte, unix.SizeofIfInfomsg))
	binary.NativeEndian.PutUint16(dump[6:8], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	s := start(t, Config{Name: "req", Protocol: unix.NETLINK_ROUTE, Groups: []uint32{unix.RTNLGRP_LINK}, Requests: [][]byte{dump}}, decoder.NewRaw(nil), sk, nil)
	waitUp(t, s)
	// RTM_NEWLINK (16) for lo, then NLMSG_DONE.
	e2e.Eventually(t, "the dump's replies are received", func() bool { return sk.count("16") >= 1 && sk.count("done") == 1 })
}

// heapBytes returns the live heap after a collection.
func heapBytes() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestIdleSourcesMemory runs many sources that have each received a
// datagram and gone idle, as the sources of a config mostly are: they
// keep no receive batch each, so their heap does not grow with the batch
// size. (Each kept a 2 MiB batch: 500 family sources were 1 GB of heap.)
func TestIdleSourcesMemory(t *testing.T) {
	group := testenv.UsersockGroup(t)
	const (
		sources = 200
		// perSource bounds what an idle source keeps on the heap: its
		// socket, state and loggers, a few KiB.
		perSource = 16 << 10
	)
	testenv.RequireRoot(t, "the sources join a NETLINK_USERSOCK group, which needs CAP_NET_ADMIN")
	before := heapBytes()
	sinks := make([]*sink, sources)
	for i := range sinks {
		sinks[i] = newSink()
		s := start(t, Config{Name: fmt.Sprint("idle", i), Protocol: unix.NETLINK_USERSOCK, Groups: []uint32{group}}, decoder.NewRaw(nil), sinks[i], nil)
		waitUp(t, s)
	}
	// One multicast wakes them all at once.
	if err := newSender(t, group).Send(nlsend.AppendMessage(nil, 0x20, 1, []byte("wake"))); err != nil {
		t.Fatal(err)
	}
	e2e.Eventually(t, "every source counted the datagram", func() bool {
		for _, sk := range sinks {
			if e, _ := sk.counts(); e != 1 {
				return false
			}
		}
		return true
	})
	grew := int64(heapBytes()) - int64(before)
	limit := int64(spareBatchBytes() + sources*perSource)
	t.Logf("%d idle sources: heap +%d KiB, %d B per source (limit %d KiB in all: %d KiB of spare batches, %d KiB per source)",
		sources, grew>>10, grew/sources, limit>>10, spareBatchBytes()>>10, perSource>>10)
	if grew > limit {
		t.Fatalf("%d idle sources take %d KiB of heap, more than %d KiB", sources, grew>>10, limit>>10)
	}
}

// TestIdleFamilySourcesMemory bounds the heap of family sources that wait
// on their controller socket and data socket with nothing to read: neither
// keeps a receive buffer while it waits.
func TestIdleFamilySourcesMemory(t *testing.T) {
	const (
		sources   = 200
		perSource = 32 << 10
	)
	before := heapBytes()
	for i := range sources {
		s := start(t, Config{Name: fmt.Sprint("idlefam", i), Family: "nlctrl", GroupNames: []string{"notify"}}, decoder.NewRaw(nil), newSink(), nil)
		waitUp(t, s)
	}
	grew := int64(heapBytes()) - int64(before)
	limit := int64(spareBatchBytes() + sources*perSource)
	t.Logf("%d idle family sources: heap +%d KiB, %d B per source (limit %d KiB in all)", sources, grew>>10, grew/sources, limit>>10)
	if grew > limit {
		t.Fatalf("%d idle family sources take %d KiB of heap, more than %d KiB", sources, grew>>10, limit>>10)
	}
}

// countingSink counts events without allocating.
type countingSink struct{ events int }

func (k *countingSink) Record(events []decoder.Event, _, _ int) { k.events += len(events) }

// TestReceiveCycleAllocs: a source that wakes for a datagram, reads it and
// finds its socket empty again, borrowing a batch and giving it back,
// allocates nothing.
func TestReceiveCycleAllocs(t *testing.T) {
	group := testenv.UsersockGroup(t)
	testenv.RequireRoot(t, "the source joins a NETLINK_USERSOCK group, which needs CAP_NET_ADMIN")
	s := New(Config{Name: "cycle", Protocol: unix.NETLINK_USERSOCK, Groups: []uint32{group}}, decoder.NewRaw(nil), log.NewNopLogger())
	c, _, err := s.open(unix.NETLINK_USERSOCK, []uint32{group}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var fd uintptr
	if err := s.control(c, func(f int) error { fd = uintptr(f); return nil }); err != nil {
		t.Fatal(err)
	}
	sk := &countingSink{}
	s.sink = sk
	snd := newSender(t, group)
	msg := nlsend.AppendMessage(nil, 0x20, 1, []byte("cycle"))
	// Multicast is delivered within the send: the datagram is queued
	// when Send returns.
	cycle := func() {
		if err := snd.Send(msg); err != nil {
			t.Fatal(err)
		}
		for s.readOne(fd) {
			s.handle(s.n)
		}
	}
	cycle()
	if allocs := testing.AllocsPerRun(1000, cycle); allocs != 0 {
		t.Fatalf("%.1f allocations per datagram", allocs)
	}
	if sk.events != 1002 || s.batch != nil {
		t.Fatalf("%d events, want 1002; batch kept while idle: %v", sk.events, s.batch != nil)
	}
}
