package decoder

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

// The kevent module's generic netlink family, as kmod/kevent_netlink.h
// defines it (KEVENT_GENL_*, enum kevent_cmd). A test checks these against
// the header.
//
// A message of the family is a netlink header whose type is the family's id
// (assigned at run time: resolve KeventGenlFamily with the generic netlink
// controller's CTRL_CMD_GETFAMILY), a generic netlink header whose command is
// KeventCmdEvent and version KeventGenlVersion, then the same attributes as
// the classic KeventMsgEvent message (KeventAttrSeq ... KeventAttrPad).
const (
	// KeventGenlFamily is the name of the family (KEVENT_GENL_NAME). The
	// family exists in the initial network namespace only.
	KeventGenlFamily = "kevent"
	// KeventGenlVersion is the family's version (KEVENT_GENL_VERSION), in
	// CTRL_ATTR_VERSION and in every message's generic netlink header.
	KeventGenlVersion = 1
	// KeventGenlGroup is the name of the multicast group every event is
	// sent to (KEVENT_GENL_MCGRP_EVENTS); its id is assigned at run time.
	KeventGenlGroup = "events"
	// KeventCmdEvent is the generic netlink command of an event message
	// (KEVENT_CMD_EVENT).
	KeventCmdEvent = 1
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
	faults
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

func (d *Kevent) diagnose(datagram []byte) []Problem {
	return diagnoseEach(datagram, &Kevent{genl: d.genl})
}

// keventAttrNames are the names kmod/kevent_netlink.h gives the attributes.
var keventAttrNames = attrNames{
	KeventAttrSeq:         "KEVENT_A_SEQ",
	KeventAttrInstance:    "KEVENT_A_INSTANCE",
	KeventAttrTimestampNS: "KEVENT_A_TIMESTAMP_NS",
	KeventAttrName:        "KEVENT_A_NAME",
	KeventAttrValue:       "KEVENT_A_VALUE",
	KeventAttrPayload:     "KEVENT_A_PAYLOAD",
	KeventAttrPad:         "KEVENT_A_PAD",
	KeventAttrObject:      "KEVENT_A_OBJECT",
}

// decodeMessage decodes one message's attributes into ev. A wrong-sized
// number, a missing or overlong name or an overlong payload or object makes
// the message malformed.
func (d *Kevent) decodeMessage(ev *Event, m message) bool {
	skip := 0
	if d.genl {
		// The type is the family's id, which only the controller knows;
		// the subscription's socket receives nothing else.
		cmd, ok := d.genlCommand(m)
		if !ok {
			return false
		}
		if cmd != KeventCmdEvent {
			return d.fail(m, faultf("generic netlink command %d is not KEVENT_CMD_EVENT (%d)", int(cmd), KeventCmdEvent))
		}
		skip = genlHeaderLen
	} else if m.Type != KeventMsgEvent {
		return d.fail(m, faultf("message type %#x is not KEVENT_MSG_EVENT (%#x)", int(m.Type), KeventMsgEvent))
	}
	var haveSeq, haveInst bool
	var ad attrDecoder
	d.attrs(&ad, m, skip, keventAttrNames)
	for typ, v := range ad.All {
		switch typ & nlaTypeMask {
		case KeventAttrSeq:
			ev.Seq, haveSeq = ad.Uint64(v), true
		case KeventAttrInstance:
			ev.Instance, haveInst = ad.Uint64(v), true
		case KeventAttrValue:
			ev.Value, ev.HasValue = float64(int64(ad.Uint64(v))), true
		case KeventAttrName:
			ev.Name = cString(v)
		case KeventAttrPayload:
			ev.Payload = cString(v)
		case KeventAttrObject:
			ev.Object = cString(v)
		}
	}
	switch {
	case ad.Failed():
		return d.fail(m, ad.Err())
	case len(ev.Name) == 0:
		return d.fail(m, faultf("no event name: KEVENT_A_NAME is missing or empty"))
	case len(ev.Name) >= KeventNameMax:
		return d.fail(m, faultf("event name of %d bytes, longer than %d (KEVENT_NAME_MAX with the NUL)", len(ev.Name), KeventNameMax-1))
	case len(ev.Payload) >= KeventPayloadMax:
		return d.fail(m, faultf("payload of %d bytes, longer than %d (KEVENT_PAYLOAD_MAX with the NUL)", len(ev.Payload), KeventPayloadMax-1))
	case len(ev.Object) >= KeventObjectMax:
		return d.fail(m, faultf("object of %d bytes, longer than %d (KEVENT_OBJECT_MAX with the NUL)", len(ev.Object), KeventObjectMax-1))
	}
	ev.HasSeq = haveSeq && haveInst
	return true
}
