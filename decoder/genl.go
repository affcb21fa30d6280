package decoder

import (
	"encoding/binary"
	"strconv"
)

// genlHeaderLen is the size of struct genlmsghdr: cmd, version, reserved.
const genlHeaderLen = 4

// genlPayloadMax bounds the rendering of a message's attributes: the
// collector keeps 256 bytes of a payload.
const genlPayloadMax = 256

// Genl decodes the messages of any generic netlink family that has no
// decoder of its own. The event name is the command's name from the
// configured names, or its number; the payload is a compact rendering of
// the top-level attributes, "type=value" separated by spaces: a printable
// NUL-terminated string quoted, an 8-, 16-, 32- or 64-bit value as an
// unsigned number (native byte order, as most families send them), anything
// else (nested attributes, other binary values) as its length, e.g.
// "5=<12B>".
//
// Payloads are built in the decoder's own memory, appended one after
// another while the caller appends events, so that every event of a batch
// keeps its own; a call with an empty events slice starts a new batch.
type Genl struct {
	faults
	names map[uint8][]byte
	buf   []byte
}

// NewGenl returns a genl decoder; cmdNames names commands (at most 255).
func NewGenl(cmdNames map[uint16]string) *Genl {
	d := &Genl{names: make(map[uint8][]byte)}
	for c, n := range cmdNames {
		if c <= 0xff {
			d.names[uint8(c)] = []byte(n)
		}
	}
	return d
}

// Decode implements Decoder.
func (d *Genl) Decode(events []Event, datagram []byte) ([]Event, int) {
	if len(events) == 0 {
		d.buf = d.buf[:0]
	}
	return decodeMessages(events, datagram, d)
}

func (d *Genl) diagnose(datagram []byte) []Problem {
	return diagnoseEach(datagram, NewGenl(nil))
}

func (d *Genl) decodeMessage(ev *Event, m message) bool {
	cmd, ok := d.genlCommand(m)
	if !ok {
		return false
	}
	n, ok := d.names[cmd]
	if !ok {
		// Remembered: a command costs one allocation over the
		// decoder's life.
		n = strconv.AppendUint(nil, uint64(cmd), 10)
		d.names[cmd] = n
	}
	ev.Name = n
	start := len(d.buf)
	var ad attrDecoder
	d.attrs(&ad, m, genlHeaderLen, nil)
	for typ, v := range ad.All {
		if len(d.buf)-start < genlPayloadMax {
			d.appendAttr(start, typ&nlaTypeMask, typ&nlaFNested != 0, v)
		}
	}
	if ad.Failed() {
		d.buf = d.buf[:start]
		return d.fail(m, ad.Err())
	}
	end := min(len(d.buf), start+genlPayloadMax)
	ev.Payload = d.buf[start:end:end]
	return true
}

// appendAttr renders one attribute after the others of the message whose
// rendering starts at start.
func (d *Genl) appendAttr(start int, typ uint16, nested bool, v []byte) {
	if len(d.buf) > start {
		d.buf = append(d.buf, ' ')
	}
	d.buf = strconv.AppendUint(d.buf, uint64(typ), 10)
	d.buf = append(d.buf, '=')
	if nested {
		d.buf = append(d.buf, '<')
		d.buf = strconv.AppendInt(d.buf, int64(len(v)), 10)
		d.buf = append(d.buf, 'B', '>')
		return
	}
	if s, ok := printableCString(v); ok {
		d.buf = append(d.buf, '"')
		for _, c := range s {
			if c == '"' || c == '\\' {
				d.buf = append(d.buf, '\\')
			}
			d.buf = append(d.buf, c)
		}
		d.buf = append(d.buf, '"')
		return
	}
	switch len(v) {
	case 1:
		d.buf = strconv.AppendUint(d.buf, uint64(v[0]), 10)
	case 2:
		d.buf = strconv.AppendUint(d.buf, uint64(binary.NativeEndian.Uint16(v)), 10)
	case 4:
		d.buf = strconv.AppendUint(d.buf, uint64(binary.NativeEndian.Uint32(v)), 10)
	case 8:
		d.buf = strconv.AppendUint(d.buf, binary.NativeEndian.Uint64(v), 10)
	default:
		d.buf = append(d.buf, '<')
		d.buf = strconv.AppendInt(d.buf, int64(len(v)), 10)
		d.buf = append(d.buf, 'B', '>')
	}
}

// printableCString returns v without its terminating NUL if v is a
// NUL-terminated string of printable ASCII (at least one character).
func printableCString(v []byte) ([]byte, bool) {
	if len(v) < 2 || v[len(v)-1] != 0 {
		return nil, false
	}
	s := v[:len(v)-1]
	for _, c := range s {
		if c < 0x20 || c > 0x7e {
			return nil, false
		}
	}
	return s, true
}
