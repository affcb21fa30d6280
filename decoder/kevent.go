package decoder

import "encoding/binary"

// The kevent wire format, as kmod/kevent_netlink.h defines it. A test checks
// these against the header.
const (
	KeventMsgEvent = 0x10

	KeventAttrSeq         = 1
	KeventAttrInstance    = 2
	KeventAttrTimestampNS = 3
	KeventAttrName        = 4
	KeventAttrValue       = 5
	KeventAttrPayload     = 6
	KeventAttrPad         = 7

	KeventNameMax    = 64
	KeventPayloadMax = 256
)

const (
	nlaHeaderLen = 4
	// nlaTypeMask strips NLA_F_NESTED and NLA_F_NET_BYTEORDER.
	nlaTypeMask = 0x3fff
)

// Kevent decodes the reference kernel module's messages: netlink messages of
// type KEVENT_MSG_EVENT carrying attributes. Unknown attributes are skipped
// so that the module can add new ones.
type Kevent struct{}

// NewKevent returns a kevent decoder.
func NewKevent() *Kevent {
	return &Kevent{}
}

// Decode implements Decoder.
func (d *Kevent) Decode(events []Event, datagram []byte) ([]Event, int) {
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
		ev, ok := decodeKevent(m)
		if !ok {
			bad++
			continue
		}
		events = append(events, ev)
	}
}

// decodeKevent decodes one message's attributes. A wrong-sized number, a
// missing or overlong name or an overlong payload makes the message malformed.
func decodeKevent(m message) (Event, bool) {
	if m.Type != KeventMsgEvent {
		return Event{}, false
	}
	var (
		ev                Event
		haveSeq, haveInst bool
		b                 = m.Payload
	)
	for len(b) > 0 {
		if len(b) < nlaHeaderLen {
			return Event{}, false
		}
		l := int(binary.NativeEndian.Uint16(b[0:2]))
		if l < nlaHeaderLen || l > len(b) {
			return Event{}, false
		}
		v := b[nlaHeaderLen:l]
		switch binary.NativeEndian.Uint16(b[2:4]) & nlaTypeMask {
		case KeventAttrSeq:
			if len(v) != 8 {
				return Event{}, false
			}
			ev.Seq, haveSeq = binary.NativeEndian.Uint64(v), true
		case KeventAttrInstance:
			if len(v) != 8 {
				return Event{}, false
			}
			ev.Instance, haveInst = binary.NativeEndian.Uint64(v), true
		case KeventAttrValue:
			if len(v) != 8 {
				return Event{}, false
			}
			ev.Value, ev.HasValue = float64(int64(binary.NativeEndian.Uint64(v))), true
		case KeventAttrName:
			ev.Name = cString(v)
		case KeventAttrPayload:
			ev.Payload = cString(v)
		}
		if next := nlmsgAlign(l); next < len(b) {
			b = b[next:]
		} else {
			b = nil
		}
	}
	if len(ev.Name) == 0 || len(ev.Name) >= KeventNameMax || len(ev.Payload) >= KeventPayloadMax {
		return Event{}, false
	}
	ev.HasSeq = haveSeq && haveInst
	return ev, true
}
