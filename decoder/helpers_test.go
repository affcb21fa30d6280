package decoder_test

import (
	"encoding/binary"
	"strconv"

	"github.com/kevent-exporter/kevent_exporter/decoder"
)

// align4 rounds n up to the netlink alignment of 4 bytes.
func align4(n int) int {
	return (n + 3) &^ 3
}

// concat joins byte slices into a new slice.
func concat(bs ...[]byte) []byte {
	var out []byte
	for _, b := range bs {
		out = append(out, b...)
	}
	return out
}

// nlmsghdr returns a native-endian struct nlmsghdr of type typ whose length
// field says length, with no payload behind it. It builds malformed framing.
func nlmsghdr(length uint32, typ uint16) []byte {
	b := make([]byte, 16)
	binary.NativeEndian.PutUint32(b[0:4], length)
	binary.NativeEndian.PutUint16(b[4:6], typ)
	binary.NativeEndian.PutUint32(b[8:12], 1) // nlmsg_seq
	return b
}

// nlmsg returns a netlink message of type typ carrying payload, as the
// kernel's nlmsg_put builds it: the header's length counts the header and the
// payload, and zero padding follows up to the next 4-byte boundary.
func nlmsg(typ uint16, payload []byte) []byte {
	b := nlmsghdr(uint32(16+len(payload)), typ)
	b = append(b, payload...)
	return append(b, make([]byte, align4(len(b))-len(b))...)
}

// withoutPadding cuts a message built by nlmsg to the length its header
// says, as the last message of a datagram may be.
func withoutPadding(msg []byte) []byte {
	return msg[:binary.NativeEndian.Uint32(msg[0:4])]
}

// nlattr returns a netlink attribute (struct nlattr) of type typ with value
// v, padded to 4 bytes; the length field does not count the padding.
func nlattr(typ uint16, v []byte) []byte {
	b := make([]byte, 4, align4(4+len(v)))
	binary.NativeEndian.PutUint16(b[0:2], uint16(4+len(v)))
	binary.NativeEndian.PutUint16(b[2:4], typ)
	b = append(b, v...)
	return append(b, make([]byte, align4(len(b))-len(b))...)
}

// u32 returns v in native byte order.
func u32(v uint32) []byte {
	return binary.NativeEndian.AppendUint32(nil, v)
}

// u64 returns v in native byte order.
func u64(v uint64) []byte {
	return binary.NativeEndian.AppendUint64(nil, v)
}

// cstr returns s with a terminating NUL.
func cstr(s string) []byte {
	return append([]byte(s), 0)
}

// event is a decoder.Event with strings for its byte slices, so that test
// failures print readable diffs.
type event struct {
	Name     string
	Value    float64
	HasValue bool
	Payload  string
	HasSeq   bool
	Seq      uint64
	Instance uint64
}

// toEvents converts decoded events for comparison; no events gives nil.
// Value is kept only when HasValue is set, since it means nothing otherwise
// (Raw leaves +Inf there for "1e400"), and likewise Seq and Instance.
func toEvents(evs []decoder.Event) []event {
	if len(evs) == 0 {
		return nil
	}
	out := make([]event, 0, len(evs))
	for _, e := range evs {
		ev := event{
			Name:     string(e.Name),
			HasValue: e.HasValue,
			Payload:  string(e.Payload),
			HasSeq:   e.HasSeq,
		}
		if e.HasValue {
			ev.Value = e.Value
		}
		if e.HasSeq {
			ev.Seq, ev.Instance = e.Seq, e.Instance
		}
		out = append(out, ev)
	}
	return out
}

// within reports whether sub is empty or lies inside b's memory, i.e. is a
// slice of b rather than a copy.
func within(b, sub []byte) bool {
	if len(sub) == 0 {
		return true
	}
	for i := range b {
		if &b[i] == &sub[0] {
			return i+len(sub) <= len(b)
		}
	}
	return false
}

// isTypeNumber reports whether s is a netlink message type in decimal.
func isTypeNumber(s string) bool {
	_, err := strconv.ParseUint(s, 10, 16)
	return err == nil
}
