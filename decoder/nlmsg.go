package decoder

import (
	"encoding/binary"
	"errors"
)

// Netlink message header layout (struct nlmsghdr), the types the kernel
// reserves below NLMSG_MIN_TYPE and the flags the decoders read. The
// linux test checks them against golang.org/x/sys/unix.
const (
	nlmsgHeaderLen = 16
	nlmsgAlignTo   = 4

	nlmsgNoop    = 0x1
	nlmsgError   = 0x2
	nlmsgDone    = 0x3
	nlmsgOverrun = 0x4

	nlmFRequest = 0x1
	nlmFMulti   = 0x2
	nlmFDump    = 0x300
)

// message is one netlink message inside a datagram.
//
// It is 32 bytes of at most four fields, so that the compiler keeps it in
// registers; a larger message measured up to twice as slow to decode.
type message struct {
	Type    uint16
	Flags   uint16
	Seq     uint32
	Payload []byte
}

// faults is embedded in every decoder. When Diagnose decodes a datagram
// with a new decoder, diag collects why it rejects messages; otherwise it
// is nil, and rejecting a message costs no more than building its fault,
// which allocates nothing.
type faults struct {
	diag *diagnosis
}

// fail says why m is malformed, and returns false, so that a decoder
// rejects a message with
//
//	return d.fail(m, faultf("...", ...))
func (x *faults) fail(m message, f fault) bool {
	if x.diag != nil {
		x.diag.add(x.diag.offset(m.Payload)-nlmsgHeaderLen, f)
	}
	return false
}

// attrs sets ad to decode the attributes that follow the first skip bytes
// of m's payload (a family's header: struct genlmsghdr, struct
// ifinfomsg...), which the caller has checked are there. names names the
// attribute types in faults. ad is the caller's variable, set field by
// field: a decoder returned and copied into it measured a third slower,
// the copy reading what the fields' stores had not yet written.
func (x *faults) attrs(ad *attrDecoder, m message, skip int, names attrNames) {
	ad.b, ad.diag, ad.names = m.Payload[skip:], x.diag, names
	ad.rest, ad.bad, ad.want = nil, nil, 0
}

// genlCommand returns the command of a generic netlink message, or fails m
// if its payload is too short for the generic netlink header.
func (x *faults) genlCommand(m message) (cmd uint8, ok bool) {
	if len(m.Payload) < genlHeaderLen {
		return 0, x.failGenlHeader(m)
	}
	return m.Payload[0], true
}

// failGenlHeader is genlCommand's fault, apart so that genlCommand is
// inlined.
func (x *faults) failGenlHeader(m message) bool {
	return x.fail(m, faultf("generic netlink message with a %d-byte payload, too short for its header (%d bytes)", len(m.Payload), genlHeaderLen))
}

// recorder returns x, for Diagnose to set its diag.
func (x *faults) recorder() *faults { return x }

// messageReader walks the netlink messages packed in one datagram without
// copying them: Next returns the next message, in registers, and Failed and
// Err say whether and why the walk ended early.
type messageReader struct {
	// b is the messages not yet read. The walk ends at a fault with b
	// left at it.
	b []byte
}

// Next returns the next message, if there is one.
func (r *messageReader) Next() (message, bool) {
	if len(r.b) < nlmsgHeaderLen {
		return message{}, false
	}
	l := int(binary.NativeEndian.Uint32(r.b))
	if l < nlmsgHeaderLen || l > len(r.b) {
		return message{}, false
	}
	m := message{
		Type:    binary.NativeEndian.Uint16(r.b[4:6]),
		Flags:   binary.NativeEndian.Uint16(r.b[6:8]),
		Seq:     binary.NativeEndian.Uint32(r.b[8:12]),
		Payload: r.b[nlmsgHeaderLen:l],
	}
	r.b = r.b[min(nlmsgAlign(l), len(r.b)):]
	return m, true
}

// Failed reports whether the rest of the datagram cannot be framed: fewer
// bytes than a header, or a length under the header's size or past the
// datagram's end.
func (r *messageReader) Failed() bool { return len(r.b) > 0 }

// Err returns why the rest of the datagram cannot be framed, or no fault.
func (r *messageReader) Err() fault {
	switch {
	case len(r.b) == 0:
		return fault{}
	case len(r.b) < nlmsgHeaderLen:
		return faultf("%d bytes left, too few for a netlink message header (%d bytes)", len(r.b), nlmsgHeaderLen)
	}
	l := int(binary.NativeEndian.Uint32(r.b[0:4]))
	if l < nlmsgHeaderLen {
		return faultf("message length %d is shorter than the netlink message header (%d bytes)", l, nlmsgHeaderLen)
	}
	return faultf("message length %d runs past the end of the datagram (%d bytes left)", l, len(r.b))
}

// A messageDecoder decodes one netlink message into an event.
type messageDecoder interface {
	// decodeMessage fills in ev, which is zero, from m and reports whether
	// m was well-formed; a malformed m is rejected with m.fail.
	decodeMessage(ev *Event, m message) bool
}

// decodeMessages implements Decoder.Decode for a decoder of netlink
// messages. It appends an event for each message in datagram and returns
// them, with the number of malformed messages: those d rejects, and a rest of
// the datagram that cannot be framed.
//
// d fills in the event in place in events rather than returning it: an Event
// is too large to return in registers, and copying it through memory for
// every message measured slower.
//
// It and appendMessages are generic so that the decoders are not boxed in
// an interface value (an allocation per datagram).
func decodeMessages[D messageDecoder](events []Event, datagram []byte, d D) ([]Event, int) {
	return appendMessages(events, datagram, oneEach[D]{d})
}

// oneEach makes a messageDecoder, one event per message, a messageAppender.
type oneEach[D messageDecoder] struct{ d D }

func (o oneEach[D]) appendMessage(events []Event, m message) ([]Event, bool) {
	events = append(events, Event{})
	if !o.d.decodeMessage(&events[len(events)-1], m) {
		return events[:len(events)-1], false
	}
	return events, true
}

// A messageAppender decodes one netlink message into as many events as it
// makes, none included (a notification that changes nothing).
type messageAppender interface {
	// appendMessage appends m's events to events and reports whether m
	// was well-formed; a malformed m appends nothing, and is rejected
	// with m.fail.
	appendMessage(events []Event, m message) ([]Event, bool)
}

// appendMessages walks the netlink messages of datagram and appends their
// events, with the number of malformed messages: those d rejects, and a
// rest of the datagram that cannot be framed.
func appendMessages[A messageAppender](events []Event, datagram []byte, d A) ([]Event, int) {
	return walkMessages(events, datagram, d, nil)
}

// walkMessages is appendMessages, whose malformed messages diag, if not
// nil, collects. It is the one message loop of the decoders of netlink
// messages.
func walkMessages[A messageAppender](events []Event, datagram []byte, d A, diag *diagnosis) ([]Event, int) {
	var bad int
	r := messageReader{b: datagram}
	for {
		m, ok := r.Next()
		if !ok {
			break
		}
		if events, ok = d.appendMessage(events, m); !ok {
			bad++
		}
	}
	if r.Failed() {
		bad++
		if diag != nil {
			diag.add(diag.offset(r.b), r.Err())
		}
	}
	return events, bad
}

// nlmsgAlign returns n rounded up to the netlink alignment, where the next
// message or attribute starts.
func nlmsgAlign(n int) int {
	return (n + nlmsgAlignTo - 1) &^ (nlmsgAlignTo - 1)
}

// cString returns b up to its first NUL.
func cString(b []byte) []byte {
	for i, c := range b {
		if c == 0 {
			return b[:i]
		}
	}
	return b
}

// Messages calls f with the type and payload (what follows the header) of
// each netlink message packed in datagram, in order, until f returns an
// error, which it returns; or, if the rest of the datagram cannot be
// framed, an error saying why. It is the decoders' framing, for readers of
// netlink messages outside them, such as the generic netlink controller's
// notifications a family source follows.
func Messages(datagram []byte, f func(typ uint16, payload []byte) error) error {
	r := messageReader{b: datagram}
	for m, ok := r.Next(); ok; m, ok = r.Next() {
		if err := f(m.Type, m.Payload); err != nil {
			return err
		}
	}
	if r.Failed() {
		return errors.New(r.Err().String())
	}
	return nil
}
