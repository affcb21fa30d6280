package decoder

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// A Problem is one malformed message in a datagram, as Diagnose explains it.
type Problem struct {
	// Offset is where in the datagram the malformed message starts, or
	// the rest of the datagram that could not be framed.
	Offset int
	// Reason says what is wrong, naming byte offsets in the datagram.
	Reason string
}

func (p Problem) String() string {
	return fmt.Sprintf("at byte %d: %s", p.Offset, p.Reason)
}

// Diagnose says why messages of datagram are malformed for the decoder d.
// It is the cold path of kevent_exporter monitor: the decoders only count
// malformed messages, to keep decoding cheap, and Diagnose walks the
// datagram again as d's Decode does to say what it found wrong. It returns
// one Problem for each message that Decode counts as malformed, in order,
// and nil when Decode finds none or d is of a type it does not know.
//
// Diagnose looks at d's type and transport only, never at its state, so it
// leaves the events of d's current batch intact and may run on any
// goroutine.
func Diagnose(d Decoder, datagram []byte) []Problem {
	switch d := d.(type) {
	case *Raw:
		return diagnoseMessages(datagram, diagnoseRaw)
	case *Kevent:
		if d.genl {
			return diagnoseMessages(datagram, diagnoseKeventGenl)
		}
		return diagnoseMessages(datagram, diagnoseKevent)
	case *Genl:
		return diagnoseMessages(datagram, diagnoseGenl)
	case *Uevent:
		if p, ok := diagnoseUevent(datagram); !ok {
			return []Problem{p}
		}
	}
	return nil
}

// diagnoseMessages frames datagram as messageReader does and asks check
// about each message found, which starts at byte off. The framing errors
// are messageReader's: each ends the walk.
func diagnoseMessages(datagram []byte, check func(m message, off int) string) []Problem {
	var problems []Problem
	for off := 0; off < len(datagram); {
		rest := datagram[off:]
		if len(rest) < nlmsgHeaderLen {
			return append(problems, Problem{off, fmt.Sprintf(
				"%d bytes left, too few for a netlink message header (%d bytes)", len(rest), nlmsgHeaderLen)})
		}
		l := int(binary.NativeEndian.Uint32(rest[0:4]))
		switch {
		case l < nlmsgHeaderLen:
			return append(problems, Problem{off, fmt.Sprintf(
				"message length %d is shorter than the netlink message header (%d bytes)", l, nlmsgHeaderLen)})
		case l > len(rest):
			return append(problems, Problem{off, fmt.Sprintf(
				"message length %d runs past the end of the datagram (%d bytes left)", l, len(rest))})
		}
		m := message{
			Type:    binary.NativeEndian.Uint16(rest[4:6]),
			Flags:   binary.NativeEndian.Uint16(rest[6:8]),
			Seq:     binary.NativeEndian.Uint32(rest[8:12]),
			Payload: rest[nlmsgHeaderLen:l],
		}
		if reason := check(m, off); reason != "" {
			problems = append(problems, Problem{off, reason})
		}
		off += nlmsgAlign(l)
	}
	return problems
}

// diagnoseAttrs walks the attributes in b, which starts at byte at of the
// datagram, as the decoders do, calling visit for each well-framed one. It
// returns the first problem, visit's or the framing's, or "".
func diagnoseAttrs(b []byte, at int, name func(uint16) string, visit func(typ uint16, v []byte, at int) string) string {
	for len(b) > 0 {
		if len(b) < nlaHeaderLen {
			return fmt.Sprintf("%d bytes left at byte %d, too few for an attribute header (%d bytes)", len(b), at, nlaHeaderLen)
		}
		l := int(binary.NativeEndian.Uint16(b[0:2]))
		typ := binary.NativeEndian.Uint16(b[2:4]) & nlaTypeMask
		if l < nlaHeaderLen || l > len(b) {
			return fmt.Sprintf("attribute %s at byte %d has length %d, outside %d-%d (its header to the end of the message)",
				name(typ), at, l, nlaHeaderLen, len(b))
		}
		if reason := visit(typ, b[nlaHeaderLen:l], at); reason != "" {
			return reason
		}
		next := nlmsgAlign(l)
		if next >= len(b) {
			break
		}
		b, at = b[next:], at+next
	}
	return ""
}

// diagnoseGenlHeader explains why a generic netlink message's payload
// cannot hold its header, or returns "".
func diagnoseGenlHeader(m message) string {
	if len(m.Payload) < genlHeaderLen {
		return fmt.Sprintf("generic netlink message with a %d-byte payload, too short for its header (%d bytes)", len(m.Payload), genlHeaderLen)
	}
	return ""
}

// diagnoseRaw explains why Raw rejects m, or returns "".
func diagnoseRaw(m message, _ int) string {
	if m.Type == nlmsgError && len(m.Payload) < 4 {
		return fmt.Sprintf("NLMSG_ERROR message with a %d-byte payload, too short for its errno (4 bytes)", len(m.Payload))
	}
	return ""
}

// diagnoseGenl explains why Genl rejects m, which starts at byte off of its
// datagram, or returns "".
func diagnoseGenl(m message, off int) string {
	if reason := diagnoseGenlHeader(m); reason != "" {
		return reason
	}
	return diagnoseAttrs(m.Payload[genlHeaderLen:], off+nlmsgHeaderLen+genlHeaderLen, attrType,
		func(uint16, []byte, int) string { return "" })
}

// attrType names an attribute type of a family without names.
func attrType(t uint16) string { return fmt.Sprintf("type %d", t) }

// keventAttrNames are the names kmod/kevent_netlink.h gives the attributes.
var keventAttrNames = map[uint16]string{
	KeventAttrSeq:         "KEVENT_A_SEQ",
	KeventAttrInstance:    "KEVENT_A_INSTANCE",
	KeventAttrTimestampNS: "KEVENT_A_TIMESTAMP_NS",
	KeventAttrName:        "KEVENT_A_NAME",
	KeventAttrValue:       "KEVENT_A_VALUE",
	KeventAttrPayload:     "KEVENT_A_PAYLOAD",
	KeventAttrPad:         "KEVENT_A_PAD",
	KeventAttrObject:      "KEVENT_A_OBJECT",
}

// keventAttrName names attribute type t, e.g. "KEVENT_A_VALUE (5)".
func keventAttrName(t uint16) string {
	if n, ok := keventAttrNames[t]; ok {
		return fmt.Sprintf("%s (%d)", n, t)
	}
	return attrType(t)
}

// diagnoseKevent explains why the classic Kevent rejects m, which starts at
// byte off of its datagram, or returns "".
func diagnoseKevent(m message, off int) string {
	if m.Type != KeventMsgEvent {
		return fmt.Sprintf("message type %#x is not KEVENT_MSG_EVENT (%#x)", m.Type, KeventMsgEvent)
	}
	return diagnoseKeventAttrs(m.Payload, off+nlmsgHeaderLen)
}

// diagnoseKeventGenl explains why the generic netlink Kevent rejects m, or
// returns "".
func diagnoseKeventGenl(m message, off int) string {
	if reason := diagnoseGenlHeader(m); reason != "" {
		return reason
	}
	if cmd := m.Payload[0]; cmd != KeventCmdEvent {
		return fmt.Sprintf("generic netlink command %d is not KEVENT_CMD_EVENT (%d)", cmd, KeventCmdEvent)
	}
	return diagnoseKeventAttrs(m.Payload[genlHeaderLen:], off+nlmsgHeaderLen+genlHeaderLen)
}

// diagnoseKeventAttrs checks the attributes of an event, which start at
// byte at, as Kevent.decodeMessage does, so that the first fault it names
// is the one that made the decoder give up.
func diagnoseKeventAttrs(b []byte, at int) string {
	var name, payload, object []byte
	reason := diagnoseAttrs(b, at, keventAttrName, func(typ uint16, v []byte, at int) string {
		switch typ {
		case KeventAttrSeq, KeventAttrInstance, KeventAttrValue:
			if len(v) != 8 {
				return fmt.Sprintf("attribute %s at byte %d carries %d bytes, want 8", keventAttrName(typ), at, len(v))
			}
		case KeventAttrName:
			name = cString(v)
		case KeventAttrPayload:
			payload = cString(v)
		case KeventAttrObject:
			object = cString(v)
		}
		return ""
	})
	switch {
	case reason != "":
		return reason
	case len(name) == 0:
		return "no event name: KEVENT_A_NAME is missing or empty"
	case len(name) >= KeventNameMax:
		return fmt.Sprintf("event name of %d bytes, longer than %d (KEVENT_NAME_MAX with the NUL)", len(name), KeventNameMax-1)
	case len(payload) >= KeventPayloadMax:
		return fmt.Sprintf("payload of %d bytes, longer than %d (KEVENT_PAYLOAD_MAX with the NUL)", len(payload), KeventPayloadMax-1)
	case len(object) >= KeventObjectMax:
		return fmt.Sprintf("object of %d bytes, longer than %d (KEVENT_OBJECT_MAX with the NUL)", len(object), KeventObjectMax-1)
	}
	return ""
}

// maxQuoted bounds the text of a datagram quoted in a Reason.
const maxQuoted = 64

// diagnoseUevent explains why Uevent rejects datagram; ok is set when it
// does not.
func diagnoseUevent(b []byte) (p Problem, ok bool) {
	var props []byte
	start := 0
	if bytes.HasPrefix(b, libudevPrefix) {
		if len(b) < libudevHeaderLen {
			return Problem{0, fmt.Sprintf("libudev message of %d bytes, shorter than its header (%d bytes)", len(b), libudevHeaderLen)}, false
		}
		if magic := binary.BigEndian.Uint32(b[8:12]); magic != libudevMagic {
			return Problem{8, fmt.Sprintf("libudev magic %#x, want %#x", magic, libudevMagic)}, false
		}
		off := int(binary.NativeEndian.Uint32(b[16:20]))
		n := int(binary.NativeEndian.Uint32(b[20:24]))
		if off < libudevHeaderLen || n < 0 || off > len(b) || n > len(b)-off {
			return Problem{16, fmt.Sprintf("libudev properties of %d bytes at byte %d lie outside the message's %d bytes after its header",
				n, off, len(b)-libudevHeaderLen)}, false
		}
		props, start = b[off:off+n], off
	} else {
		end := bytes.IndexByte(b, 0)
		if end < 0 {
			return Problem{0, fmt.Sprintf("no NUL-terminated ACTION@DEVPATH line: %s", quoteBounded(b))}, false
		}
		if bytes.IndexByte(b[:end], '@') <= 0 {
			return Problem{0, fmt.Sprintf("first line %s is not ACTION@DEVPATH", quoteBounded(b[:end]))}, false
		}
		props, start = b[end+1:], end+1
	}
	// The last ACTION and SUBSYSTEM count, as in Uevent.Decode.
	var action, subsystem []byte
	for _, kv := range bytes.Split(props, []byte{0}) {
		if k, v, found := bytes.Cut(kv, []byte("=")); found && len(k) > 0 {
			switch string(k) {
			case "ACTION":
				action = v
			case "SUBSYSTEM":
				subsystem = v
			}
		}
	}
	switch {
	case len(action) == 0 && len(subsystem) == 0:
		return Problem{start, "no ACTION and no SUBSYSTEM property (or both empty)"}, false
	case len(action) == 0:
		return Problem{start, "no ACTION property (or it is empty)"}, false
	case len(subsystem) == 0:
		return Problem{start, "no SUBSYSTEM property (or it is empty)"}, false
	}
	return Problem{}, true
}

// quoteBounded quotes b, or its first maxQuoted bytes followed by "...".
func quoteBounded(b []byte) string {
	if len(b) > maxQuoted {
		return fmt.Sprintf("%q...", b[:maxQuoted])
	}
	return fmt.Sprintf("%q", b)
}
