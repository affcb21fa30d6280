package decoder_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/kevent-exporter/kevent_exporter/decoder"
	"github.com/kevent-exporter/kevent_exporter/internal/nlsend"
)

// Netlink attribute type flags the decoder must strip.
const (
	nlaFNested       = 0x8000
	nlaFNetByteorder = 0x4000
)

// keventMsg returns a KEVENT_MSG_EVENT message carrying attrs.
func keventMsg(attrs ...[]byte) []byte {
	return nlsend.AppendMessage(nil, decoder.KeventMsgEvent, nlSeq, concat(attrs...))
}

// seqAttr returns a KEVENT_A_SEQ attribute.
func seqAttr(v uint64) []byte {
	return nlsend.AppendAttr(nil, decoder.KeventAttrSeq, u64(v))
}

// instanceAttr returns a KEVENT_A_INSTANCE attribute.
func instanceAttr(v uint64) []byte {
	return nlsend.AppendAttr(nil, decoder.KeventAttrInstance, u64(v))
}

// timestampAttr returns a KEVENT_A_TIMESTAMP_NS attribute.
func timestampAttr(v uint64) []byte {
	return nlsend.AppendAttr(nil, decoder.KeventAttrTimestampNS, u64(v))
}

// nameAttr returns a KEVENT_A_NAME attribute holding s and a NUL.
func nameAttr(s string) []byte {
	return nlsend.AppendAttr(nil, decoder.KeventAttrName, cstr(s))
}

// valueAttr returns a KEVENT_A_VALUE attribute.
func valueAttr(v int64) []byte {
	return nlsend.AppendAttr(nil, decoder.KeventAttrValue, u64(uint64(v)))
}

// payloadAttr returns a KEVENT_A_PAYLOAD attribute holding s and a NUL.
func payloadAttr(s string) []byte {
	return nlsend.AppendAttr(nil, decoder.KeventAttrPayload, cstr(s))
}

// padAttr returns the empty KEVENT_A_PAD attribute nla_put_64bit inserts to
// align a 64-bit value on architectures without efficient unaligned access.
func padAttr() []byte {
	return nlsend.AppendAttr(nil, decoder.KeventAttrPad, nil)
}

// moduleEvent returns the message kmod/kevent.c sends for an event of
// instance 0xfeed, in the module's attribute order; an empty payload is left
// out.
func moduleEvent(seq uint64, name string, value int64, payload string) []byte {
	return keventMsg(nlsend.AppendKeventAttrs(nil, nlsend.KeventEvent{
		Seq:         seq,
		Instance:    0xfeed,
		TimestampNS: 1700000000123456789,
		Name:        name,
		Value:       value,
		Payload:     payload,
	}))
}

// moduleEventWant is the event decoded from moduleEvent's message.
func moduleEventWant(seq uint64, name string, value int64, payload string) event {
	return event{
		Name:     name,
		Value:    float64(value),
		HasValue: true,
		Payload:  payload,
		HasSeq:   true,
		Seq:      seq,
		Instance: 0xfeed,
	}
}

var keventTests = []struct {
	name     string
	datagram []byte
	want     []event
	bad      int
}{
	{
		name:     "full event",
		datagram: moduleEvent(1, "heartbeat", 42, "module alive"),
		want:     []event{moduleEventWant(1, "heartbeat", 42, "module alive")},
	},
	{
		name:     "negative value",
		datagram: moduleEvent(2, "temp", -273, "cold"),
		want:     []event{moduleEventWant(2, "temp", -273, "cold")},
	},
	{
		name:     "no payload",
		datagram: moduleEvent(3, "heartbeat", 0, ""),
		want:     []event{moduleEventWant(3, "heartbeat", 0, "")},
	},
	{
		name: "pad attributes",
		datagram: keventMsg(
			padAttr(), seqAttr(4),
			padAttr(), instanceAttr(0xfeed),
			padAttr(), timestampAttr(1),
			nameAttr("padded"),
			padAttr(), valueAttr(7),
		),
		want: []event{moduleEventWant(4, "padded", 7, "")},
	},
	{
		name: "unknown attribute",
		datagram: keventMsg(
			nlsend.AppendAttr(nil, 99, []byte("abcde")), // unaligned, padded to 8 bytes
			seqAttr(5), instanceAttr(0xfeed),
			nameAttr("future"),
			nlsend.AppendAttr(nil, 99, nil),
			valueAttr(1),
			payloadAttr("p"),
		),
		want: []event{moduleEventWant(5, "future", 1, "p")},
	},
	{
		name: "attribute type flags",
		datagram: keventMsg(
			seqAttr(6), instanceAttr(0xfeed),
			nlsend.AppendAttr(nil, nlaFNested|decoder.KeventAttrName, cstr("nested")),
			nlsend.AppendAttr(nil, nlaFNetByteorder|decoder.KeventAttrPayload, cstr("flagged")),
			valueAttr(2),
		),
		want: []event{moduleEventWant(6, "nested", 2, "flagged")},
	},
	{
		name:     "no value",
		datagram: keventMsg(seqAttr(1), instanceAttr(0xfeed), nameAttr("novalue")),
		want:     []event{{Name: "novalue", HasSeq: true, Seq: 1, Instance: 0xfeed}},
	},
	{
		name:     "no seq",
		datagram: keventMsg(instanceAttr(0xfeed), nameAttr("noseq"), valueAttr(1)),
		want:     []event{{Name: "noseq", Value: 1, HasValue: true}},
	},
	{
		name:     "seq without instance",
		datagram: keventMsg(seqAttr(9), nameAttr("noinstance"), valueAttr(1)),
		want:     []event{{Name: "noinstance", Value: 1, HasValue: true}},
	},
	{
		name:     "name without NUL",
		datagram: keventMsg(nlsend.AppendAttr(nil, decoder.KeventAttrName, []byte("bare")), valueAttr(1)),
		want:     []event{{Name: "bare", Value: 1, HasValue: true}},
	},
	{
		name:     "name stops at NUL",
		datagram: keventMsg(nlsend.AppendAttr(nil, decoder.KeventAttrName, []byte("short\x00junk")), valueAttr(1)),
		want:     []event{{Name: "short", Value: 1, HasValue: true}},
	},
	{
		name:     "longest name",
		datagram: moduleEvent(1, strings.Repeat("n", 63), 1, ""),
		want:     []event{moduleEventWant(1, strings.Repeat("n", 63), 1, "")},
	},
	{
		name:     "name too long",
		datagram: moduleEvent(1, strings.Repeat("n", 64), 1, ""),
		bad:      1,
	},
	{
		name:     "name missing",
		datagram: keventMsg(seqAttr(1), instanceAttr(0xfeed), valueAttr(1)),
		bad:      1,
	},
	{
		name:     "name empty",
		datagram: moduleEvent(1, "", 1, ""),
		bad:      1,
	},
	{
		name:     "longest payload",
		datagram: moduleEvent(1, "big", 1, strings.Repeat("p", 255)),
		want:     []event{moduleEventWant(1, "big", 1, strings.Repeat("p", 255))},
	},
	{
		name:     "payload too long",
		datagram: moduleEvent(1, "big", 1, strings.Repeat("p", 256)),
		bad:      1,
	},
	{
		name: "object: the interface of a netdev event",
		datagram: keventMsg(nlsend.AppendKeventAttrs(nil, nlsend.KeventEvent{
			Seq: 7, Instance: 0xfeed, Name: "netdev_up", Value: 3, Payload: "eth0", Object: "eth0",
		})),
		want: []event{func() event {
			e := moduleEventWant(7, "netdev_up", 3, "eth0")
			e.Object = "eth0"
			return e
		}()},
	},
	{
		name: "object too long",
		datagram: keventMsg(nlsend.AppendKeventAttrs(nil, nlsend.KeventEvent{
			Seq: 7, Instance: 0xfeed, Name: "netdev_up", Value: 3, Object: strings.Repeat("o", 64),
		})),
		bad: 1,
	},
	{
		name:     "short seq",
		datagram: keventMsg(nlsend.AppendAttr(nil, decoder.KeventAttrSeq, u32(1)), instanceAttr(0xfeed), nameAttr("x"), valueAttr(1)),
		bad:      1,
	},
	{
		name:     "short instance",
		datagram: keventMsg(seqAttr(1), nlsend.AppendAttr(nil, decoder.KeventAttrInstance, u32(1)), nameAttr("x"), valueAttr(1)),
		bad:      1,
	},
	{
		name:     "long value",
		datagram: keventMsg(nameAttr("x"), nlsend.AppendAttr(nil, decoder.KeventAttrValue, concat(u64(1), u32(0)))),
		bad:      1,
	},
	{
		name:     "attribute length under header size",
		datagram: keventMsg(nameAttr("x"), rawAttr(2, decoder.KeventAttrValue, nil)),
		bad:      1,
	},
	{
		name:     "attribute zero length",
		datagram: keventMsg(rawAttr(0, 99, nil), nameAttr("x")),
		bad:      1,
	},
	{
		name:     "truncated attribute header",
		datagram: keventMsg(nameAttr("x"), []byte{8, 0}),
		bad:      1,
	},
	{
		name:     "attribute length past message",
		datagram: keventMsg(nameAttr("x"), rawAttr(12, decoder.KeventAttrValue, u32(1))),
		bad:      1,
	},
	{
		name: "attribute length into next message",
		datagram: concat(
			keventMsg(nameAttr("x"), rawAttr(24, 99, u32(0))),
			moduleEvent(2, "next", 2, ""),
		),
		want: []event{moduleEventWant(2, "next", 2, "")},
		bad:  1,
	},
	{
		name:     "wrong message type",
		datagram: nlsend.AppendMessage(nil, 0x3, nlSeq, concat(seqAttr(1), instanceAttr(0xfeed), nameAttr("x"), valueAttr(1))),
		bad:      1,
	},
	{
		name:     "seed message",
		datagram: seedDatagram,
		bad:      1,
	},
	{
		name:     "empty message",
		datagram: keventMsg(),
		bad:      1,
	},
	{
		name: "two events",
		datagram: concat(
			moduleEvent(1, "first", 1, "one"),
			moduleEvent(2, "second", 2, "two"),
		),
		want: []event{
			moduleEventWant(1, "first", 1, "one"),
			moduleEventWant(2, "second", 2, "two"),
		},
	},
	{
		name: "malformed then good",
		datagram: concat(
			moduleEvent(1, strings.Repeat("n", 64), 1, ""),
			moduleEvent(2, "good", 2, "fine"),
		),
		want: []event{moduleEventWant(2, "good", 2, "fine")},
		bad:  1,
	},
	{
		name: "last message and attribute without padding",
		datagram: concat(
			moduleEvent(1, "first", 1, ""),
			withoutPadding(keventMsg(seqAttr(2), instanceAttr(0xfeed), valueAttr(2), nameAttr("ab"))),
		),
		want: []event{
			moduleEventWant(1, "first", 1, ""),
			moduleEventWant(2, "ab", 2, ""),
		},
	},
	{
		// The case above keeps the padding of "ab\x00": its message's
		// length counts it and comes out aligned. Here the last attribute
		// ends the message, and the message the datagram, 3 bytes past
		// an alignment boundary.
		name: "last attribute without padding",
		datagram: concat(
			moduleEvent(1, "first", 1, ""),
			withoutPadding(keventMsg(seqAttr(2), instanceAttr(0xfeed), valueAttr(2), withoutAttrPadding(nameAttr("ab")))),
		),
		want: []event{
			moduleEventWant(1, "first", 1, ""),
			moduleEventWant(2, "ab", 2, ""),
		},
	},
	{
		name:     "truncated datagram",
		datagram: moduleEvent(1, "heartbeat", 1, "cut")[:40],
		bad:      1,
	},
	{
		name: "truncated datagram after event",
		datagram: concat(
			moduleEvent(1, "heartbeat", 1, ""),
			moduleEvent(2, "heartbeat", 2, "")[:20],
		),
		want: []event{moduleEventWant(1, "heartbeat", 1, "")},
		bad:  1,
	},
	{
		name:     "empty datagram",
		datagram: []byte{},
	},
}

func TestKeventDecode(t *testing.T) {
	for _, tt := range keventTests {
		t.Run(tt.name, func(t *testing.T) {
			checkDecode(t, decoder.NewKevent(), tt.datagram, tt.want, tt.bad)
		})
	}
}

func FuzzKevent(f *testing.F) {
	for _, tt := range keventTests {
		f.Add(tt.datagram)
	}

	d := decoder.NewKevent()
	f.Fuzz(func(t *testing.T, datagram []byte) {
		events, bad := d.Decode(nil, datagram)
		checkMessageCounts(t, datagram, events, bad)
		for i, e := range events {
			if len(e.Name) == 0 || len(e.Name) >= decoder.KeventNameMax || bytes.IndexByte(e.Name, 0) >= 0 {
				t.Fatalf("event %d: bad name %q", i, e.Name)
			}
			if len(e.Payload) >= decoder.KeventPayloadMax || bytes.IndexByte(e.Payload, 0) >= 0 {
				t.Fatalf("event %d: bad payload %q", i, e.Payload)
			}
			if !within(datagram, e.Name) {
				t.Fatalf("event %d: name %q is not a slice of the datagram", i, e.Name)
			}
			if !within(datagram, e.Payload) {
				t.Fatalf("event %d: payload %q is not a slice of the datagram", i, e.Payload)
			}
		}
	})
}
