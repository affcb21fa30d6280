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
	KeventAttrObject      = 8

	KeventNameMax    = 64
	KeventPayloadMax = 256
	KeventObjectMax  = 64
)

const (
	nlaHeaderLen = 4
	// nlaTypeMask strips NLA_F_NESTED and NLA_F_NET_BYTEORDER.
	nlaTypeMask = 0x3fff
)

// Kevent decodes the reference kernel module's messages: netlink messages of
// type KEVENT_MSG_EVENT carrying attributes. Unknown attributes are skipped
// so that the module can add new ones.
//
// The same attributes come over either transport of the module: a classic
// protocol (netlink messages of type KeventMsgEvent) or its generic
// netlink family (messages whose type is the family's id, with a generic
// netlink header of command KeventCmdEvent in front of the attributes).
type Kevent struct {
	genl bool
}

// NewKevent returns a kevent decoder for the classic transport.
func NewKevent() *Kevent {
	return &Kevent{}
}

// NewKeventGenl returns a kevent decoder for the generic netlink family.
func NewKeventGenl() *Kevent {
	return &Kevent{genl: true}
}

// Decode implements Decoder.
func (d *Kevent) Decode(events []Event, datagram []byte) ([]Event, int) {
	return decodeMessages(events, datagram, d)
}

// decodeMessage decodes one message's attributes into ev. A wrong-sized
// number, a missing or overlong name or an overlong payload makes the message
// malformed.
func (d *Kevent) decodeMessage(ev *Event, m message) bool {
	b := m.Payload
	if d.genl {
		// The type is the family's id, which only the controller knows;
		// the subscription's socket receives nothing else.
		if len(b) < genlHeaderLen || b[0] != KeventCmdEvent {
			return false
		}
		b = b[genlHeaderLen:]
	} else if m.Type != KeventMsgEvent {
		return false
	}
	var haveSeq, haveInst bool
	for len(b) > 0 {
		if len(b) < nlaHeaderLen {
			return false
		}
		l := int(binary.NativeEndian.Uint16(b[0:2]))
		if l < nlaHeaderLen || l > len(b) {
			return false
		}
		v := b[nlaHeaderLen:l]
		switch binary.NativeEndian.Uint16(b[2:4]) & nlaTypeMask {
		case KeventAttrSeq:
			if len(v) != 8 {
				return false
			}
			ev.Seq, haveSeq = binary.NativeEndian.Uint64(v), true
		case KeventAttrInstance:
			if len(v) != 8 {
				return false
			}
			ev.Instance, haveInst = binary.NativeEndian.Uint64(v), true
		case KeventAttrValue:
			if len(v) != 8 {
				return false
			}
			ev.Value, ev.HasValue = float64(int64(binary.NativeEndian.Uint64(v))), true
		case KeventAttrName:
			ev.Name = cString(v)
		case KeventAttrPayload:
			ev.Payload = cString(v)
		case KeventAttrObject:
			ev.Object = cString(v)
		}
		b = skipAligned(b, l)
	}
	if len(ev.Name) == 0 || len(ev.Name) >= KeventNameMax || len(ev.Payload) >= KeventPayloadMax || len(ev.Object) >= KeventObjectMax {
		return false
	}
	ev.HasSeq = haveSeq && haveInst
	return true
}
