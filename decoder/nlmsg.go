package decoder

import "encoding/binary"

// Netlink message header layout (struct nlmsghdr) and the types the kernel
// reserves below NLMSG_MIN_TYPE.
const (
	nlmsgHeaderLen = 16
	nlmsgAlignTo   = 4

	nlmsgNoop    = 0x1
	nlmsgError   = 0x2
	nlmsgDone    = 0x3
	nlmsgOverrun = 0x4
)

// message is one netlink message inside a datagram.
type message struct {
	Type    uint16
	Flags   uint16
	Seq     uint32
	Payload []byte
}

// messageReader walks the netlink messages packed in one datagram without
// copying them.
type messageReader struct {
	b []byte
}

// next returns the next message. ok is false at the end of the datagram;
// malformed is set when the rest of the datagram cannot be framed (a
// truncated header, a length under the header size or past the datagram's
// end), which ends the walk.
func (r *messageReader) next() (m message, ok, malformed bool) {
	if len(r.b) == 0 {
		return message{}, false, false
	}
	if len(r.b) < nlmsgHeaderLen {
		r.b = nil
		return message{}, false, true
	}
	l := int(binary.NativeEndian.Uint32(r.b[0:4]))
	if l < nlmsgHeaderLen || l > len(r.b) {
		r.b = nil
		return message{}, false, true
	}
	m = message{
		Type:    binary.NativeEndian.Uint16(r.b[4:6]),
		Flags:   binary.NativeEndian.Uint16(r.b[6:8]),
		Seq:     binary.NativeEndian.Uint32(r.b[8:12]),
		Payload: r.b[nlmsgHeaderLen:l],
	}
	r.b = skipAligned(r.b, l)
	return m, true, false
}

// A messageDecoder decodes one netlink message into an event.
type messageDecoder interface {
	// decodeMessage fills in ev, which is zero, from m and reports whether
	// m was well-formed.
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
	// was well-formed; a malformed m appends nothing.
	appendMessage(events []Event, m message) ([]Event, bool)
}

// appendMessages walks the netlink messages of datagram and appends their
// events, with the number of malformed messages: those d rejects, and a
// rest of the datagram that cannot be framed. It is the one message loop
// of the decoders of netlink messages.
func appendMessages[A messageAppender](events []Event, datagram []byte, d A) ([]Event, int) {
	var bad int
	r := messageReader{b: datagram}
	for {
		m, ok, malformed := r.next()
		if malformed {
			bad++
		}
		if !ok {
			return events, bad
		}
		var good bool
		if events, good = d.appendMessage(events, m); !good {
			bad++
		}
	}
}

// skipAligned returns b past its first l bytes and their padding to the
// netlink alignment, or nil when nothing follows them. The last message of
// a datagram, and the last attribute of a message, may lack the padding.
func skipAligned(b []byte, l int) []byte {
	if next := nlmsgAlign(l); next < len(b) {
		return b[next:]
	}
	return nil
}

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
