package netlinksrc_test

import (
	"encoding/binary"
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
		{"drop_monitor", decoder.NewDropMon(false), func(i int) []byte {
			// A packet alert as the kernel's drop monitor sends it.
			var p []byte
			p = append(p, decoder.DropMonCmdPacketAlert, 2, 0, 0)
			p = nlsend.AppendAttr(p, decoder.DropMonAttrOrigin, []byte{0, 0})
			p = nlsend.AppendAttr(p, decoder.DropMonAttrPC, binary.NativeEndian.AppendUint64(nil, 0xffffffff81a009a2))
			p = nlsend.AppendAttr(p, decoder.DropMonAttrReason, []byte([]string{"NO_SOCKET\x00", "TCP_CSUM\x00"}[i%2]))
			p = nlsend.AppendAttr(p, decoder.DropMonAttrSymbol, []byte("__udp4_lib_rcv+0x9a2/0xc30\x00"))
			p = nlsend.AppendAttr(p, decoder.DropMonAttrInPort|0x8000, nlsend.AppendAttr(nil, decoder.DropMonAttrPortNetdevIfindex, binary.NativeEndian.AppendUint32(nil, 1)))
			p = nlsend.AppendAttr(p, decoder.DropMonAttrTimestamp, binary.NativeEndian.AppendUint64(nil, uint64(i)))
			p = nlsend.AppendAttr(p, decoder.DropMonAttrOrigLen, binary.NativeEndian.AppendUint32(nil, uint32(40+i)))
			p = nlsend.AppendAttr(p, decoder.DropMonAttrProto, []byte{8, 0})
			p = nlsend.AppendAttr(p, decoder.DropMonAttrPayload, []byte{0})
			return nlsend.AppendMessage(nil, 0x1c, 0, p)
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
