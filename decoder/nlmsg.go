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
	// The last message of a datagram may lack its alignment padding.
	if next := nlmsgAlign(l); next < len(r.b) {
		r.b = r.b[next:]
	} else {
		r.b = nil
	}
	return m, true, false
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
