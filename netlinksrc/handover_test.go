package netlinksrc

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"
	"golang.org/x/sys/unix"

	"github.com/kevent-exporter/kevent_exporter/decoder"
	"github.com/kevent-exporter/kevent_exporter/internal/e2e"
	"github.com/kevent-exporter/kevent_exporter/internal/nlsend"
	"github.com/kevent-exporter/kevent_exporter/internal/syncbuf"
	"github.com/kevent-exporter/kevent_exporter/internal/testenv"
	"github.com/kevent-exporter/kevent_exporter/netlinksrc/srcinfo"
)

// running is a subscription started by a test, with its sink and the
// stats Run returns.
type running struct {
	s      *Subscription
	sk     *sink
	cancel context.CancelFunc
	final  chan srcinfo.Stats
}

func run(cfg Config, logger log.Logger, prev *running) (*running, bool) {
	r := &running{s: New(cfg, decoder.NewRaw(nil), logger), sk: newSink(), final: make(chan srcinfo.Stats, 1)}
	handed := prev != nil && prev.s.HandOver(r.s)
	if prev != nil {
		prev.cancel()
	}
	var ctx context.Context
	ctx, r.cancel = context.WithCancel(context.Background())
	go func() { r.final <- r.s.Run(ctx, r.sk) }()
	return r, handed
}

// TestHandOverCountsEveryDatagram replaces a subscription again and again
// during a flood, changing its receive buffer, senders and groups, each
// successor started while its predecessor stops: with the socket handed
// over, every datagram sent is read or counted lost by exactly one of them.
func TestHandOverCountsEveryDatagram(t *testing.T) {
	testenv.RequireRoot(t, "multicast on NETLINK_USERSOCK")
	const sent, handovers = 100000, 100
	group, other := testenv.UsersockGroup(t), testenv.UsersockGroup(t)
	cfgs := []Config{
		{Groups: []uint32{group}, ReceiveBufferBytes: 64 << 10},
		{Groups: []uint32{group, other}, ReceiveBufferBytes: 1 << 20, Senders: srcinfo.SendersAny},
		{Groups: []uint32{other, group}, ReceiveBufferBytes: 256 << 10, Senders: srcinfo.SendersRoot},
	}
	for i := range cfgs {
		cfgs[i].Name, cfgs[i].Protocol = "handover", unix.NETLINK_USERSOCK
	}
	logs := &syncbuf.Buffer{}
	logger := log.NewLogfmtLogger(logs)
	cur, _ := run(cfgs[0], logger, nil)
	waitUp(t, cur.s)

	next := make(chan struct{})
	flooded := make(chan error, 1)
	go func() {
		snd, err := nlsend.NewSender(unix.NETLINK_USERSOCK, group)
		if err != nil {
			flooded <- err
			return
		}
		defer snd.Close()
		b := make([]byte, 0, 64)
		for i := 0; i < sent; i++ {
			if i%(sent/handovers) == 0 {
				<-next
			}
			b = nlsend.AppendMessage(b[:0], 0x20, uint32(i), []byte("flood"))
			if err := snd.Send(b); err != nil {
				flooded <- err
				return
			}
		}
		flooded <- nil
	}()

	var events, datagrams, lost uint64
	for k := 1; k <= handovers; k++ {
		next <- struct{}{}
		prev := cur
		var handed bool
		cur, handed = run(cfgs[k%len(cfgs)], logger, prev)
		if !handed {
			t.Fatalf("handover %d refused", k)
		}
		var st srcinfo.Stats
		select {
		case st = <-prev.final:
		case <-time.After(30 * time.Second):
			t.Fatal("a subscription handing its socket over did not stop within 30s")
		}
		if st.Up() {
			t.Errorf("handover %d: the stopped subscription reports itself up", k)
		}
		e, _ := prev.sk.counts()
		events += uint64(e)
		datagrams += st.Datagrams
		lost += st.Lost
	}
	if err := <-flooded; err != nil {
		t.Fatal(err)
	}
	cur.cancel()
	st := <-cur.final
	e, _ := cur.sk.counts()
	events, datagrams, lost = events+uint64(e), datagrams+st.Datagrams, lost+st.Lost
	t.Logf("%d handovers: events=%d lost=%d", handovers, events, lost)
	if events+lost != sent || datagrams != events {
		t.Errorf("events + lost = %d + %d = %d, want %d (datagrams received %d)", events, lost, events+lost, sent, datagrams)
	}
	if n := strings.Count(logs.String(), `msg="Took over the socket of the source's previous configuration, with its queue"`); n != handovers {
		t.Errorf("%d takeovers logged, want %d", n, handovers)
	}
}

// TestHandOverToUnjoinableGroups hands a socket with a queue over to a
// subscription none of whose groups can be joined: it counts the queue,
// closes the socket and retries as if opening had failed.
func TestHandOverToUnjoinableGroups(t *testing.T) {
	testenv.RequireRoot(t, "multicast on NETLINK_USERSOCK")
	const sent = 1000
	group := testenv.UsersockGroup(t)
	logs := &syncbuf.Buffer{}
	logger := log.NewLogfmtLogger(logs)
	first, _ := run(Config{Name: "unjoinable", Protocol: unix.NETLINK_USERSOCK, Groups: []uint32{group}}, logger, nil)
	first.sk.hold, first.sk.held = make(chan struct{}), make(chan struct{})
	// Told once the stop has set the socket's read deadline: only then
	// may the held reader go on, or it could read the queue itself
	// before it sees the stop.
	told := make(chan struct{})
	first.s.stopping = func() { close(told) }
	waitUp(t, first.s)
	snd := newSender(t, group)
	for i := 0; i < sent; i++ {
		if err := snd.Send(nlsend.AppendMessage(nil, 0x20, uint32(i), []byte("x"))); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			<-first.sk.held // the rest stays queued
		}
	}
	// usersock has 32 groups: 40 cannot be joined.
	second, handed := run(Config{Name: "unjoinable", Protocol: unix.NETLINK_USERSOCK, Groups: []uint32{40}}, logger, first)
	if !handed {
		t.Fatal("handover refused")
	}
	<-told
	close(first.sk.hold)
	st1 := <-first.final
	e2e.Eventually(t, "the successor fails to join its groups", func() bool { return strings.Contains(logs.String(), "joining group 40") })
	second.cancel()
	st2 := <-second.final
	e1, _ := first.sk.counts()
	e2, _ := second.sk.counts()
	t.Logf("predecessor: events=%d lost=%d; successor: events=%d lost=%d", e1, st1.Lost, e2, st2.Lost)
	if got := uint64(e1+e2) + st1.Lost + st2.Lost; got != sent {
		t.Errorf("events + lost = %d, want %d", got, sent)
	}
	if e2 == 0 {
		t.Error("the successor counted nothing of the queue it was handed")
	}
}

// TestHandOverSendsRequests: a subscription that takes a socket over sends
// its requests, as one that opens a socket does. Its decoder is new, and
// the rtnetlink decoder learns the links' states from the link dump that
// its request asks for: without it, the first change of each link after a
// reload would teach the state instead of being counted.
func TestHandOverSendsRequests(t *testing.T) {
	testenv.RequireRoot(t, "rtnetlink subscriptions in a private network namespace")
	cfg := Config{Name: "links", Protocol: unix.NETLINK_ROUTE, Groups: []uint32{unix.RTNLGRP_LINK}, Requests: [][]byte{decoder.RtnetlinkDumpRequest()}}
	first, _ := run(cfg, log.NewNopLogger(), nil)
	// The first subscription reads its dump to the end (lo's RTM_NEWLINK,
	// type 16, then NLMSG_DONE): a dump the second reads is its own.
	e2e.Eventually(t, "the first subscription reads its dump", func() bool { return first.sk.count("16") >= 1 && first.sk.count("done") == 1 })
	cfg.ReceiveBufferBytes = 1 << 20
	second, handed := run(cfg, log.NewNopLogger(), first)
	if !handed {
		t.Fatal("handover refused")
	}
	defer func() {
		second.cancel()
		<-second.final
	}()
	<-first.final
	e2e.Eventually(t, "the second subscription reads a dump of its own", func() bool { return second.sk.count("16") >= 1 && second.sk.count("done") == 1 })
}
