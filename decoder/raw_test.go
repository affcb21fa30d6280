package decoder_test

import (
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kevent-exporter/kevent_exporter/decoder"
	"github.com/kevent-exporter/kevent_exporter/internal/nlsend"
)

// seedDatagram is the datagram the seed module (vmtest/seedmod) multicasts:
// one NLMSG_DONE message, sequence 1, carrying "Hello from kernel" without a
// NUL, padded from 33 to 36 bytes.
var seedDatagram = []byte{
	0x21, 0x00, 0x00, 0x00, // nlmsg_len: 33
	0x03, 0x00, // nlmsg_type: NLMSG_DONE
	0x00, 0x00, // nlmsg_flags
	0x01, 0x00, 0x00, 0x00, // nlmsg_seq: 1
	0x00, 0x00, 0x00, 0x00, // nlmsg_pid
	'H', 'e', 'l', 'l', 'o', ' ', 'f', 'r', 'o', 'm', ' ',
	'k', 'e', 'r', 'n', 'e', 'l',
	0x00, 0x00, 0x00, // padding
}

// nlmsgerr returns the payload of an NLMSG_ERROR message: struct nlmsgerr,
// the negative errno followed by the header of the offending request.
func nlmsgerr(errno int32) []byte {
	return nlsend.AppendMessage(u32(uint32(errno)), 0x10, nlSeq, nil)
}

var rawTests = []struct {
	name     string
	names    map[uint16]string
	datagram []byte
	want     []event
	bad      int
}{
	{
		name:     "seed message",
		datagram: seedDatagram,
		want:     []event{{Name: "done", Payload: "Hello from kernel"}},
	},
	{
		name:     "payload stops at NUL",
		datagram: nlsend.AppendMessage(nil, 0x10, nlSeq, []byte("hello\x00junk\xff\x00more")),
		want:     []event{{Name: "16", Payload: "hello"}},
	},
	{
		name:     "integer",
		datagram: nlsend.AppendMessage(nil, 0x10, nlSeq, []byte("42")),
		want:     []event{{Name: "16", Payload: "42", Value: 42, HasValue: true}},
	},
	{
		name:     "integer with NUL",
		datagram: nlsend.AppendMessage(nil, 0x10, nlSeq, cstr("42")),
		want:     []event{{Name: "16", Payload: "42", Value: 42, HasValue: true}},
	},
	{
		name:     "negative float with spaces",
		datagram: nlsend.AppendMessage(nil, 0x10, nlSeq, []byte(" -3.5\n")),
		want:     []event{{Name: "16", Payload: " -3.5\n", Value: -3.5, HasValue: true}},
	},
	{
		name:     "exponent",
		datagram: nlsend.AppendMessage(nil, 0x10, nlSeq, []byte("1e3")),
		want:     []event{{Name: "16", Payload: "1e3", Value: 1000, HasValue: true}},
	},
	{
		name:     "digits then letters",
		datagram: nlsend.AppendMessage(nil, 0x10, nlSeq, []byte("12abc")),
		want:     []event{{Name: "16", Payload: "12abc"}},
	},
	{
		name:     "nan",
		datagram: nlsend.AppendMessage(nil, 0x10, nlSeq, []byte("nan")),
		want:     []event{{Name: "16", Payload: "nan"}},
	},
	{
		name:     "infinity",
		datagram: nlsend.AppendMessage(nil, 0x10, nlSeq, []byte("Inf")),
		want:     []event{{Name: "16", Payload: "Inf"}},
	},
	{
		name:     "hexadecimal",
		datagram: nlsend.AppendMessage(nil, 0x10, nlSeq, []byte("0x10")),
		want:     []event{{Name: "16", Payload: "0x10"}},
	},
	{
		name:     "number characters only",
		datagram: nlsend.AppendMessage(nil, 0x10, nlSeq, []byte("1.2.3")),
		want:     []event{{Name: "16", Payload: "1.2.3"}},
	},
	{
		name:     "out of range",
		datagram: nlsend.AppendMessage(nil, 0x10, nlSeq, []byte("1e400")),
		want:     []event{{Name: "16", Payload: "1e400"}},
	},
	{
		name:     "spaces only",
		datagram: nlsend.AppendMessage(nil, 0x10, nlSeq, []byte(" \t\n")),
		want:     []event{{Name: "16", Payload: " \t\n"}},
	},
	{
		name:     "empty payload",
		datagram: nlsend.AppendMessage(nil, 0x10, nlSeq, nil),
		want:     []event{{Name: "16"}},
	},
	{
		name:     "custom type",
		datagram: nlsend.AppendMessage(nil, 0x20, nlSeq, []byte("x")),
		want:     []event{{Name: "32", Payload: "x"}},
	},
	{
		name:  "type names",
		names: map[uint16]string{0x20: "custom", 0x3: "finished"},
		datagram: concat(
			nlsend.AppendMessage(nil, 0x20, nlSeq, []byte("x")),
			nlsend.AppendMessage(nil, 0x3, nlSeq, nil),
			nlsend.AppendMessage(nil, 0x21, nlSeq, nil),
			nlsend.AppendMessage(nil, 0x1, nlSeq, nil),
		),
		want: []event{
			{Name: "custom", Payload: "x"},
			{Name: "finished"},
			{Name: "33"},
			{Name: "noop"},
		},
	},
	{
		name:     "error with errno",
		datagram: nlsend.AppendMessage(nil, 0x2, nlSeq, nlmsgerr(-2)),
		want:     []event{{Name: "error", Value: -2, HasValue: true}},
	},
	{
		name:     "error acknowledgement",
		datagram: nlsend.AppendMessage(nil, 0x2, nlSeq, nlmsgerr(0)),
		want:     []event{{Name: "error", Value: 0, HasValue: true}},
	},
	{
		name: "error without errno",
		datagram: concat(
			nlsend.AppendMessage(nil, 0x3, nlSeq, []byte("a")),
			nlsend.AppendMessage(nil, 0x2, nlSeq, []byte{0xfe, 0xff}),
			nlsend.AppendMessage(nil, 0x3, nlSeq, []byte("b")),
		),
		want: []event{{Name: "done", Payload: "a"}, {Name: "done", Payload: "b"}},
		bad:  1,
	},
	{
		name:     "noop",
		datagram: nlsend.AppendMessage(nil, 0x1, nlSeq, nil),
		want:     []event{{Name: "noop"}},
	},
	{
		name:     "overrun",
		datagram: nlsend.AppendMessage(nil, 0x4, nlSeq, nil),
		want:     []event{{Name: "overrun"}},
	},
	{
		name: "several messages",
		datagram: concat(
			nlsend.AppendMessage(nil, 0x10, nlSeq, []byte("abcde")), // 21 bytes, next one at 24
			nlsend.AppendMessage(nil, 0x11, nlSeq, []byte("42")),
			nlsend.AppendMessage(nil, 0x12, nlSeq, nil),
			withoutPadding(nlsend.AppendMessage(nil, 0x13, nlSeq, []byte("xyz"))),
		),
		want: []event{
			{Name: "16", Payload: "abcde"},
			{Name: "17", Payload: "42", Value: 42, HasValue: true},
			{Name: "18"},
			{Name: "19", Payload: "xyz"},
		},
	},
	{
		name:     "single message without padding",
		datagram: withoutPadding(nlsend.AppendMessage(nil, 0x10, nlSeq, []byte("abcde"))),
		want:     []event{{Name: "16", Payload: "abcde"}},
	},
	{
		name:     "truncated header",
		datagram: nlmsghdr(16, 0x10)[:10],
		bad:      1,
	},
	{
		name:     "truncated header after message",
		datagram: concat(nlsend.AppendMessage(nil, 0x10, nlSeq, []byte("ok")), nlmsghdr(16, 0x10)[:8]),
		want:     []event{{Name: "16", Payload: "ok"}},
		bad:      1,
	},
	{
		name:     "length under header size",
		datagram: concat(nlmsghdr(8, 0x10), []byte("abcd")),
		bad:      1,
	},
	{
		name: "zero length after message",
		datagram: concat(
			nlsend.AppendMessage(nil, 0x10, nlSeq, []byte("ok")),
			nlmsghdr(0, 0x10),
			nlsend.AppendMessage(nil, 0x10, nlSeq, []byte("lost")),
		),
		want: []event{{Name: "16", Payload: "ok"}},
		bad:  1,
	},
	{
		name:     "length past datagram",
		datagram: concat(nlmsghdr(64, 0x10), []byte("short")),
		bad:      1,
	},
	{
		name:     "length past datagram after message",
		datagram: concat(nlsend.AppendMessage(nil, 0x10, nlSeq, []byte("ok")), nlmsghdr(17, 0x10)),
		want:     []event{{Name: "16", Payload: "ok"}},
		bad:      1,
	},
	{
		name:     "non-UTF-8 payload",
		datagram: nlsend.AppendMessage(nil, 0x10, nlSeq, []byte("\xff\xfe ok \xc3")),
		want:     []event{{Name: "16", Payload: "\xff\xfe ok \xc3"}},
	},
	{
		name:     "empty datagram",
		datagram: []byte{},
	},
	{
		name: "nil datagram",
	},
}

func TestRawDecode(t *testing.T) {
	for _, tt := range rawTests {
		t.Run(tt.name, func(t *testing.T) {
			checkDecode(t, decoder.NewRaw(tt.names), tt.datagram, tt.want, tt.bad)
		})
	}
}

func TestRawDecodeAppends(t *testing.T) {
	d := decoder.NewRaw(nil)
	events, _ := d.Decode(nil, nlsend.AppendMessage(nil, 0x10, nlSeq, []byte("first")))
	events, bad := d.Decode(events, nlsend.AppendMessage(nil, 0x11, nlSeq, []byte("second")))

	want := []event{{Name: "16", Payload: "first"}, {Name: "17", Payload: "second"}}
	if diff := cmp.Diff(want, toEvents(events)); diff != "" {
		t.Errorf("unexpected events (-want +got):\n%s", diff)
	}
	if bad != 0 {
		t.Errorf("unexpected malformed count: %d", bad)
	}
}

func FuzzRaw(f *testing.F) {
	for _, tt := range rawTests {
		f.Add(tt.datagram)
	}

	d := decoder.NewRaw(nil)
	f.Fuzz(func(t *testing.T, datagram []byte) {
		events, bad := d.Decode(nil, datagram)
		checkMessageCounts(t, datagram, events, bad)
		for i, e := range events {
			switch name := string(e.Name); name {
			case "noop", "error", "done", "overrun":
			default:
				if !isTypeNumber(name) {
					t.Fatalf("event %d: name %q is not a message type", i, name)
				}
			}
			if !within(datagram, e.Payload) {
				t.Fatalf("event %d: payload %q is not a slice of the datagram", i, e.Payload)
			}
			if e.HasValue && (math.IsNaN(e.Value) || math.IsInf(e.Value, 0)) {
				t.Fatalf("event %d: value %v from payload %q", i, e.Value, e.Payload)
			}
		}
	})
}

// TestKernelType: the name KernelType looks up is the one Raw gives each
// type the kernel reserves, so that the configuration refuses exactly the
// names Raw uses.
func TestKernelType(t *testing.T) {
	for typ := uint16(1); typ <= 4; typ++ {
		payload := []byte("x")
		if typ == 2 {
			payload = nlmsgerr(-1)
		}
		evs, _ := decoder.NewRaw(nil).Decode(nil, nlsend.AppendMessage(nil, typ, nlSeq, payload))
		if len(evs) != 1 {
			t.Fatalf("type %d: %d events, want 1", typ, len(evs))
		}
		name := string(evs[0].Name)
		if got, ok := decoder.KernelType(name); !ok || got != typ {
			t.Errorf("KernelType(%q) = %d, %t; want %d, true", name, got, ok, typ)
		}
	}
	for _, name := range []string{"", "5", "NLMSG_DONE", "Done", "mapping"} {
		if got, ok := decoder.KernelType(name); ok {
			t.Errorf("KernelType(%q) = %d, true; want false", name, got)
		}
	}
}
