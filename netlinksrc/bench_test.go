package netlinksrc_test

import (
	"fmt"
	"testing"

	"github.com/go-kit/log"
	"golang.org/x/sys/unix"

	"github.com/kevent-exporter/kevent_exporter/collector"
	"github.com/kevent-exporter/kevent_exporter/decoder"
	"github.com/kevent-exporter/kevent_exporter/internal/nlsend"
	"github.com/kevent-exporter/kevent_exporter/netlinksrc"
)

// BenchmarkHandle measures the steady-state path from a datagram in the
// read buffer to counters updated: check the sender, decode, record. One
// op is one message. It must not allocate.
func BenchmarkHandle(b *testing.B) {
	for _, bc := range []struct {
		name string
		dec  decoder.Decoder
		msg  func(i int) []byte
	}{
		{"raw", decoder.NewRaw(nil), func(i int) []byte {
			return nlsend.AppendMessage(nil, 16+uint16(i%8), uint32(i), []byte(fmt.Sprintf("%d", i)))
		}},
		{"kevent", decoder.NewKevent(), func(i int) []byte {
			return nlsend.AppendKevent(nil, nlsend.KeventEvent{Seq: uint64(i + 1), Instance: 7, Name: fmt.Sprintf("event_%d", i%8), Value: int64(i), Payload: "eth0"})
		}},
		{"uevent", decoder.NewUevent(), func(i int) []byte {
			return []byte(fmt.Sprintf("change@/devices/virtual/net/lo\x00ACTION=change\x00DEVPATH=/devices/virtual/net/lo\x00SUBSYSTEM=net\x00INTERFACE=lo\x00IFINDEX=1\x00SEQNUM=%d\x00", i))
		}},
	} {
		for _, from := range []struct {
			name string
			root bool
		}{{"kernel", false}, {"root", true}} {
			// On usersock, whose default trusts root's userspace senders:
			// a root sender's credentials are parsed and checked.
			b.Run(bc.name+"/from_"+from.name, func(b *testing.B) {
				sink := collector.NewSourceMetrics("bench", collector.SourceOptions{PayloadInfo: true})
				s := netlinksrc.New(netlinksrc.Config{Name: "bench", Protocol: unix.NETLINK_USERSOCK}, bc.dec, log.NewNopLogger())
				msgs := make([][]byte, 64)
				for i := range msgs {
					msgs[i] = bc.msg(i)
				}
				// The first borrows the source's receive batch.
				netlinksrc.HandleForBenchmark(s, sink, msgs[0], from.root)
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					netlinksrc.HandleForBenchmark(s, sink, msgs[i%len(msgs)], from.root)
				}
				b.StopTimer()
				if st := s.Stats(); st.Rejected != [len(st.Rejected)]uint64{} {
					b.Fatalf("rejected %v: the benchmark measured the wrong path", st.Rejected)
				}
			})
		}
	}
}
