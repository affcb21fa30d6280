// Command drain measures how fast the exporter's receive path (netlinksrc,
// a decoder and collector, the code kevent_exporter runs) drains messages
// already queued on its socket. It speaks the same protocol as baseline.c:
//
//	drain -g GROUP -r RCVBUF -n EXPECTED [-f raw|kevent]
//	drain -family NAME -group NAME -r RCVBUF -n EXPECTED -f kevent
//	drain -print-group FAMILY/GROUP
//
// With -family, it reads the module's format behind generic netlink
// headers on a family's group, trusting any sender, so that a root flood
// sender can stand in for the module (flood -f genl -p 16 -g ID, the id
// that -print-group prints).
//
// prints "ready" once its socket is bound, holds its reader after the first
// message, and on a line from stdin lets it go and times the rest. The
// sequence numbers the flood sender put in the messages (the payload's
// number in raw, KEVENT_A_SEQ in kevent) are checked for gaps.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"strings"
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/mdlayher/genetlink"
	"golang.org/x/sys/unix"

	"github.com/kevent-exporter/kevent_exporter/collector"
	"github.com/kevent-exporter/kevent_exporter/decoder"
	"github.com/kevent-exporter/kevent_exporter/netlinksrc"
	"github.com/kevent-exporter/kevent_exporter/netlinksrc/srcinfo"
)

// checkingSink checks sequence numbers, then counts in the collector.
type checkingSink struct {
	next    *collector.SourceMetrics
	release chan struct{}
	held    sync.Once

	mu              sync.Mutex
	received, gaps  uint64
	lastSeq         uint64
	first, lastTime time.Time
}

func (s *checkingSink) Record(events []decoder.Event, n, bad int) {
	s.held.Do(func() { <-s.release })
	now := time.Now()
	s.mu.Lock()
	if s.received == 0 {
		s.first = now
	}
	s.lastTime = now
	for i := range events {
		seq := events[i].Seq
		if !events[i].HasSeq {
			seq = uint64(events[i].Value)
		}
		if s.received > 0 && seq > s.lastSeq+1 {
			s.gaps += seq - s.lastSeq - 1
		}
		s.lastSeq = seq
		s.received++
	}
	s.mu.Unlock()
	s.next.Record(events, n, bad)
}

func main() {
	group := flag.Uint("g", 0, "usersock multicast group (1-32)")
	rcvbuf := flag.Int("r", 64<<20, "receive buffer bytes")
	expected := flag.Uint64("n", 0, "messages the flood sends")
	format := flag.String("f", "raw", "decoder: raw or kevent")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the drain to this file")
	family := flag.String("family", "", "generic netlink family to read instead of usersock")
	groupName := flag.String("group", "", "the family's multicast group")
	printGroup := flag.String("print-group", "", "print the id of FAMILY/GROUP and exit")
	senders := flag.String("senders", "", "trusted senders: kernel, root or any (default: the protocol's usual)")
	flag.Parse()
	if *printGroup != "" {
		fam, grp, _ := strings.Cut(*printGroup, "/")
		c, err := genetlink.Dial(nil)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		f, err := c.GetFamily(fam)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		for _, g := range f.Groups {
			if g.Name == grp {
				fmt.Println(g.ID)
				os.Exit(0)
			}
		}
		fmt.Fprintf(os.Stderr, "family %s has no group %s\n", fam, grp)
		os.Exit(1)
	}
	if (*family == "" && (*group < 1 || *group > 32)) || *expected == 0 {
		flag.Usage()
		os.Exit(2)
	}
	dec, err := decoder.New(*format, decoder.Options{Genl: *family != ""})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}

	cfg := netlinksrc.Config{Name: "drain", Protocol: unix.NETLINK_USERSOCK, Groups: []uint32{uint32(*group)}, ReceiveBufferBytes: *rcvbuf}
	if *family != "" {
		cfg = netlinksrc.Config{Name: "drain", Family: *family, GroupNames: []string{*groupName}, ReceiveBufferBytes: *rcvbuf, Senders: srcinfo.SendersAny}
	}
	if *senders != "" {
		if cfg.Senders, err = srcinfo.ParseSenders(*senders); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
	}
	src := netlinksrc.New(cfg, dec, log.NewLogfmtLogger(os.Stderr))
	metrics := collector.NewSourceMetrics("drain", collector.SourceOptions{PayloadInfo: true})
	sink := &checkingSink{next: metrics, release: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go src.Run(ctx, sink)
	for !src.Stats().Up() {
		time.Sleep(time.Millisecond)
	}
	fmt.Println("ready")
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		fmt.Fprintln(os.Stderr, "drain: no go line on stdin:", err)
		os.Exit(1)
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	close(sink.release)

	// Done when every message is counted or lost, or after 2 idle seconds.
	var received, lost uint64
	idleSince, lastReceived := time.Now(), uint64(0)
	for {
		time.Sleep(time.Millisecond)
		sink.mu.Lock()
		received = sink.received
		sink.mu.Unlock()
		lost = src.Stats().Lost
		if received+lost >= *expected {
			break
		}
		if received != lastReceived {
			idleSince, lastReceived = time.Now(), received
		} else if time.Since(idleSince) > 2*time.Second {
			break
		}
	}
	sink.mu.Lock()
	secs := sink.lastTime.Sub(sink.first).Seconds()
	st := src.Stats()
	var rejected uint64
	for _, n := range st.Rejected {
		rejected += n
	}
	fmt.Printf("received=%d lost=%d rejected=%d enobufs=%d seq_gaps=%d seconds=%.3f rate=%.0f\n",
		received, lost, rejected, st.Overruns, sink.gaps, secs, float64(received)/secs)
	sink.mu.Unlock()
}
