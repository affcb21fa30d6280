package decoder_test

import (
	"encoding/binary"
	"strings"
	"testing"

	"github.com/kevent-exporter/kevent_exporter/decoder"
	"github.com/kevent-exporter/kevent_exporter/internal/nlsend"
)

// genlFamilyID stands for the id the controller gave a family.
const genlFamilyID = 0x1c

// genlMsg builds a generic netlink message of the family: struct
// genlmsghdr (cmd, version, reserved) and the attributes.
func genlMsg(cmd uint8, attrs ...[]byte) []byte {
	p := []byte{cmd, 1, 0, 0}
	for _, a := range attrs {
		p = append(p, a...)
	}
	return nlsend.AppendMessage(nil, genlFamilyID, 0, p)
}

func u32attr(typ uint16, v uint32) []byte {
	return nlsend.AppendAttr(nil, typ, binary.NativeEndian.AppendUint32(nil, v))
}

func TestGenl(t *testing.T) {
	names := map[uint16]string{1: "trip_up"}
	for _, c := range []struct {
		name     string
		datagram []byte
		want     []event
		bad      int
	}{
		{"named command, numbers and a string",
			genlMsg(1, u32attr(1, 3), u32attr(2, 1), nlsend.AppendAttr(nil, 3, cstr("tz3"))),
			[]event{{Name: "trip_up", Payload: `1=3 2=1 3="tz3"`}}, 0},
		{"unnamed command, 8-, 16- and 64-bit values and a blob",
			genlMsg(7, nlsend.AppendAttr(nil, 1, []byte{9}), nlsend.AppendAttr(nil, 2, []byte{1, 0}), nlsend.AppendAttr(nil, 3, binary.NativeEndian.AppendUint64(nil, 1<<40)), nlsend.AppendAttr(nil, 4, []byte{1, 2, 3})),
			[]event{{Name: "7", Payload: "1=9 2=1 3=1099511627776 4=<3B>"}}, 0},
		{"quotes and backslashes escaped; unprintable strings are blobs",
			genlMsg(1, nlsend.AppendAttr(nil, 1, cstr(`a"b\c`)), nlsend.AppendAttr(nil, 2, cstr("x\nyz"))),
			[]event{{Name: "trip_up", Payload: `1="a\"b\\c" 2=<5B>`}}, 0},
		{"nested attribute shown by size",
			genlMsg(1, nlsend.AppendAttr(nil, 1|0x8000, u32attr(1, 5))),
			[]event{{Name: "trip_up", Payload: "1=<8B>"}}, 0},
		{"no attributes", genlMsg(2), []event{{Name: "2"}}, 0},
		{"two messages", append(genlMsg(1, u32attr(1, 1)), genlMsg(2, u32attr(1, 2))...),
			[]event{{Name: "trip_up", Payload: "1=1"}, {Name: "2", Payload: "1=2"}}, 0},
		{"no generic netlink header", nlsend.AppendMessage(nil, genlFamilyID, 0, []byte{1, 1}), nil, 1},
		{"attribute length past the message", genlMsg(1, []byte{200, 0, 1, 0}), nil, 1},
		{"attribute length under its header", genlMsg(1, []byte{2, 0, 1, 0}), nil, 1},
		{"truncated attribute header", genlMsg(1, []byte{8, 0}), nil, 1},
		{"bad message beside a good one", append(genlMsg(1, []byte{2, 0, 1, 0}), genlMsg(2, u32attr(1, 2))...),
			[]event{{Name: "2", Payload: "1=2"}}, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			checkDecode(t, decoder.NewGenl(names), c.datagram, c.want, c.bad)
		})
	}
}

// TestGenlPayloadBound: a message with many attributes renders 256 bytes.
func TestGenlPayloadBound(t *testing.T) {
	var attrs [][]byte
	for i := 0; i < 200; i++ {
		attrs = append(attrs, u32attr(1, 123456789))
	}
	events, bad := decoder.NewGenl(nil).Decode(nil, genlMsg(1, attrs...))
	if bad != 0 || len(events) != 1 {
		t.Fatalf("%d events, %d bad", len(events), bad)
	}
	if p := string(events[0].Payload); len(p) != 256 || !strings.HasPrefix(p, "1=123456789 1=") {
		t.Fatalf("payload of %d bytes: %q", len(p), p)
	}
}

// TestGenlBatch: each event of a batch keeps its own payload.
func TestGenlBatch(t *testing.T) {
	d := decoder.NewGenl(nil)
	events, _ := d.Decode(nil, genlMsg(1, u32attr(1, 1)))
	events, _ = d.Decode(events, genlMsg(1, u32attr(1, 22)))
	if got := string(events[0].Payload) + "," + string(events[1].Payload); got != "1=1,1=22" {
		t.Fatalf("payloads %s, want 1=1,1=22", got)
	}
}

// TestKeventGenl decodes the module's events from its generic netlink
// family: the same attributes behind a generic netlink header of command
// KEVENT_CMD_EVENT, in a message whose type is the family's id.
func TestKeventGenl(t *testing.T) {
	attrs := nlsend.AppendKeventAttrs(nil, nlsend.KeventEvent{Seq: 5, Instance: 0xfeed, Name: "disk_full", Value: 42, Payload: "/dev/sda1"})
	good := genlMsg(decoder.KeventCmdEvent, attrs)
	want := []event{{Name: "disk_full", Value: 42, HasValue: true, Payload: "/dev/sda1", HasSeq: true, Seq: 5, Instance: 0xfeed}}
	checkDecode(t, decoder.NewKeventGenl(), good, want, 0)
	// Another command, and a classic message, are not events of the family.
	checkDecode(t, decoder.NewKeventGenl(), genlMsg(decoder.KeventCmdEvent+1, attrs), nil, 1)
	checkDecode(t, decoder.NewKeventGenl(), moduleEvent(1, "x", 1, ""), nil, 1)
	// And the classic decoder takes no family message.
	checkDecode(t, decoder.NewKevent(), good, nil, 1)
	d, err := decoder.New("kevent", decoder.Options{Genl: true})
	if err != nil {
		t.Fatal(err)
	}
	checkDecode(t, d, good, want, 0)
}

func FuzzGenl(f *testing.F) {
	f.Add(genlMsg(1, u32attr(1, 3), nlsend.AppendAttr(nil, 3, cstr("tz3"))))
	f.Add(genlMsg(1, []byte{2, 0, 1, 0}))
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, datagram []byte) {
		events, bad := decoder.NewGenl(nil).Decode(nil, datagram)
		checkMessageCounts(t, datagram, events, bad)
		for _, e := range events {
			if len(e.Payload) > 256 {
				t.Fatalf("payload of %d bytes", len(e.Payload))
			}
		}
	})
}

func BenchmarkGenlDecode(b *testing.B) {
	benchmarkDecode(b, decoder.NewGenl(map[uint16]string{1: "trip_up"}),
		genlMsg(1, u32attr(1, 3), u32attr(2, 1), u32attr(3, 85000), nlsend.AppendAttr(nil, 4, cstr("tz3"))))
}

func BenchmarkKeventGenlDecode(b *testing.B) {
	benchmarkDecode(b, decoder.NewKeventGenl(), genlMsg(decoder.KeventCmdEvent,
		nlsend.AppendKeventAttrs(nil, nlsend.KeventEvent{Seq: 5, Instance: 0xfeed, Name: "heartbeat", Value: 1})))
}
