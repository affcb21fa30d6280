package decoder

import (
	"encoding/binary"
	"strconv"
)

// Raw decodes the seed module's format: netlink messages whose payload is
// text, possibly NUL-terminated. The event name is the message type, the
// payload is the text up to its first NUL, and a payload that reads as a
// number is also the event's value.
//
// A Raw keeps state (the names of the types it has seen): use one per
// receive loop.
type Raw struct {
	faults
	names map[uint16][]byte
}

// kernelTypeNames are the names the kernel gives the types it reserves.
var kernelTypeNames = map[uint16]string{
	nlmsgNoop:    "noop",
	nlmsgError:   "error",
	nlmsgDone:    "done",
	nlmsgOverrun: "overrun",
}

// KernelType returns the type the kernel reserves under name ("noop",
// "error", "done" or "overrun"), the name the raw decoder gives it.
func KernelType(name string) (uint16, bool) {
	for t, n := range kernelTypeNames {
		if n == name {
			return t, true
		}
	}
	return 0, false
}

// NewRaw returns a raw decoder; typeNames overrides the event names of
// message types, which are otherwise the kernel's names or decimal numbers.
func NewRaw(typeNames map[uint16]string) *Raw {
	d := &Raw{names: make(map[uint16][]byte)}
	for t, n := range kernelTypeNames {
		d.names[t] = []byte(n)
	}
	for t, n := range typeNames {
		d.names[t] = []byte(n)
	}
	return d
}

// Decode implements Decoder.
func (d *Raw) Decode(events []Event, datagram []byte) ([]Event, int) {
	return decodeMessages(events, datagram, d)
}

func (d *Raw) diagnose(datagram []byte) []Problem {
	return diagnoseEach(datagram, NewRaw(nil))
}

// decodeMessage decodes m into ev. An NLMSG_ERROR message too short for its
// errno is malformed.
func (d *Raw) decodeMessage(ev *Event, m message) bool {
	ev.Name = d.name(m.Type)
	if m.Type == nlmsgError {
		// struct nlmsgerr starts with the negative errno.
		if len(m.Payload) < 4 {
			return d.fail(m, faultf("NLMSG_ERROR message with a %d-byte payload, too short for its errno (4 bytes)", len(m.Payload)))
		}
		ev.Value = float64(int32(binary.NativeEndian.Uint32(m.Payload)))
		ev.HasValue = true
	} else {
		ev.Payload = cString(m.Payload)
		ev.Value, ev.HasValue = parseNumber(ev.Payload)
	}
	return true
}

// name returns the event name of a message type, remembering decimal names
// so that a type costs one allocation over the decoder's life.
func (d *Raw) name(t uint16) []byte {
	n, ok := d.names[t]
	if !ok {
		n = strconv.AppendUint(nil, uint64(t), 10)
		d.names[t] = n
	}
	return n
}

// maxNumberLen bounds the numbers parseNumber reads; longer text is not
// taken for a number (and would cost a string allocation in strconv).
const maxNumberLen = 32

// parseNumber reads b as a decimal number ([+-]digits[.digits][e[+-]digits]),
// allowing surrounding spaces. Text is checked against that grammar before
// strconv sees it, since strconv's errors allocate and most payloads are
// not numbers. A number out of float64's range is not a value.
func parseNumber(b []byte) (float64, bool) {
	b = trimSpace(b)
	if len(b) == 0 || len(b) > maxNumberLen || !isDecimal(b) {
		return 0, false
	}
	v, err := strconv.ParseFloat(string(b), 64)
	return v, err == nil
}

// isDecimal reports whether b is [+-]digits[.digits][(e|E)[+-]digits], with
// at least one digit in the mantissa.
func isDecimal(b []byte) bool {
	i := 0
	if i < len(b) && (b[i] == '+' || b[i] == '-') {
		i++
	}
	digits := 0
	for ; i < len(b) && isDigit(b[i]); i++ {
		digits++
	}
	if i < len(b) && b[i] == '.' {
		for i++; i < len(b) && isDigit(b[i]); i++ {
			digits++
		}
	}
	if digits == 0 {
		return false
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		exp := 0
		for ; i < len(b) && isDigit(b[i]); i++ {
			exp++
		}
		if exp == 0 {
			return false
		}
	}
	return i == len(b)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func trimSpace(b []byte) []byte {
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r'
}
