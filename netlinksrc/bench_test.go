package netlinksrc_test

import (
	"fmt"
	"testing"

	"github.com/go-kit/log"

	"github.com/kevent-exporter/kevent_exporter/collector"
	"github.com/kevent-exporter/kevent_exporter/decoder"
	"github.com/kevent-exporter/kevent_exporter/internal/nlsend"
	"github.com/kevent-exporter/kevent_exporter/netlinksrc"
)

// BenchmarkHandle measures the steady-state path from a datagram in the
// read buffer to counters updated: decode, then record. One op is one
// message. It must not allocate.
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
		b.Run(bc.name, func(b *testing.B) {
			sink := collector.NewSourceMetrics("bench", collector.SourceOptions{PayloadInfo: true})
			s := netlinksrc.New(netlinksrc.Config{Name: "bench"}, bc.dec, log.NewNopLogger())
			msgs := make([][]byte, 64)
			for i := range msgs {
				msgs[i] = bc.msg(i)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				m := msgs[i%len(msgs)]
				netlinksrc.HandleForBenchmark(s, sink, m)
			}
		})
	}
}
