package decoder_test

import (
	"testing"

	"github.com/kevent-exporter/kevent_exporter/decoder"
	"github.com/kevent-exporter/kevent_exporter/internal/nlsend"
)

// benchmarkDecode decodes each datagram in turn into a reused events slice,
// as the collector does, and fails if a datagram does not decode cleanly.
func benchmarkDecode(b *testing.B, d decoder.Decoder, datagrams ...[]byte) {
	b.Helper()

	var events []decoder.Event
	for _, dg := range datagrams {
		var bad int
		if events, bad = d.Decode(events[:0], dg); len(events) == 0 || bad != 0 {
			b.Fatalf("datagram %q: %d events, %d malformed", dg, len(events), bad)
		}
	}

	b.ReportAllocs()
	for b.Loop() {
		for _, dg := range datagrams {
			events, _ = d.Decode(events[:0], dg)
		}
	}
}

func BenchmarkRawDecode(b *testing.B) {
	benchmarkDecode(b, decoder.NewRaw(map[uint16]string{0x10: "temperature"}),
		seedDatagram,
		concat(
			nlsend.AppendMessage(nil, 0x10, nlSeq, cstr("42")),
			nlsend.AppendMessage(nil, 0x10, nlSeq, cstr(" -3.5\n")),
			nlsend.AppendMessage(nil, 0x11, nlSeq, cstr("link up on eth0")),
			nlsend.AppendMessage(nil, 0x3, nlSeq, nil),
		),
	)
}

func BenchmarkUeventDecode(b *testing.B) {
	b.Run("kernel", func(b *testing.B) {
		benchmarkDecode(b, decoder.NewUevent(), []byte(loUevent))
	})
	b.Run("libudev", func(b *testing.B) {
		props := loProps + "ID_MM_CANDIDATE=1\x00ID_NET_NAME=lo\x00USEC_INITIALIZED=4242424\x00TAGS=:systemd:\x00"
		benchmarkDecode(b, decoder.NewUevent(), nlsend.AppendLibudev(nil, props))
	})
}

func BenchmarkKeventDecode(b *testing.B) {
	benchmarkDecode(b, decoder.NewKevent(),
		moduleEvent(1, "heartbeat", 1, ""),
		concat(
			moduleEvent(2, "disk_io_errors", 3, "sda: I/O error, sector 1234"),
			moduleEvent(3, "temperature", -12, "sensor0"),
			moduleEvent(4, "heartbeat", 1, ""),
		),
	)
}
