package decoder

import (
	"encoding/binary"
	"fmt"
)

const (
	// nlaHeaderLen is the size of struct nlattr: length and type.
	nlaHeaderLen = 4
	// nlaFNested flags an attribute holding attributes.
	nlaFNested = 0x8000
	// nlaTypeMask strips NLA_F_NESTED and NLA_F_NET_BYTEORDER.
	nlaTypeMask = 0x3fff
)

// attrNames names a kind of attributes by type, for faults: the names the
// kernel's headers give them.
type attrNames map[uint16]string

// name names attribute type t, e.g. "KEVENT_A_VALUE (5)", or "type 5" for
// a type without a name.
func (n attrNames) name(t uint16) string {
	if s, ok := n[t]; ok {
		return fmt.Sprintf("%s (%d)", s, t)
	}
	return fmt.Sprintf("type %d", t)
}

// attrDecoder walks the netlink attributes (struct nlattr) of a message
// without copying them, in the shape of mdlayher/netlink's
// AttributeDecoder with Go's iterators: ranging over All yields each
// attribute's type and value, the value readers (Uint8, Uint32, Uint64,
// Sized) read a value, and Failed and Err say whether and why the walk went
// wrong: an attribute that cannot be framed, which ends it, or the first
// value a reader found of the wrong size. Unlike mdlayher's, it allocates
// nothing, even for a malformed message: Err returns a fault, which
// Diagnose formats.
//
//	var ad attrDecoder
//	d.attrs(&ad, m, genlHeaderLen, names)
//	for typ, v := range ad.All {
//		switch typ & nlaTypeMask {
//		case fooAttrID:
//			id = ad.Uint32(v)
//		}
//	}
//	if ad.Failed() {
//		return d.fail(m, ad.Err())
//	}
//
// Get one from faults.attrs, or Nested for the attributes inside an
// attribute (a nest's walk in another's body stops the compiler inlining
// the outer one). All is small enough to be inlined, and the compiler then
// keeps the walk in registers: a Next method, which keeps it in the
// decoder's memory, measured twice as slow.
type attrDecoder struct {
	// b is the attributes.
	b []byte
	// diag, when Diagnose decodes the message, places the faults in the
	// datagram, and names names the types in them.
	diag  *diagnosis
	names attrNames
	// rest is where All stopped: the end, an attribute it could not
	// frame, or one after which the loop broke off.
	rest []byte
	// bad is the first value a reader found not to be want bytes.
	bad  []byte
	want int
}

// All yields each attribute's type, with its NLA_F_NESTED and
// NLA_F_NET_BYTEORDER flags (typ&nlaTypeMask is the type), and value.
func (d *attrDecoder) All(yield func(typ uint16, v []byte) bool) {
	b := d.b
	for len(b) >= nlaHeaderLen {
		l := int(binary.NativeEndian.Uint16(b))
		if l < nlaHeaderLen || l > len(b) || !yield(binary.NativeEndian.Uint16(b[2:]), b[nlaHeaderLen:l]) {
			break
		}
		b = b[min((l+nlmsgAlignTo-1)&^(nlmsgAlignTo-1), len(b)):]
	}
	d.rest = b
}

// header returns the header of the attribute whose value is v, a slice of
// b: slices of b share its end of capacity.
func (d *attrDecoder) header(v []byte) []byte {
	return d.b[cap(d.b)-cap(v)-nlaHeaderLen:]
}

// Sized returns v if it is n bytes (n > 0); otherwise it notes the fault
// and returns nil.
func (d *attrDecoder) Sized(v []byte, n int) []byte {
	if len(v) != n {
		d.wrongSize(v, n)
		return nil
	}
	return v
}

// wrongSize notes that v is not n bytes, if no value was found wrong yet.
func (d *attrDecoder) wrongSize(v []byte, n int) {
	if d.want == 0 {
		d.bad, d.want = v, n
	}
}

// Uint8 returns v as a u8, or 0 if it is not 1 byte, a fault.
func (d *attrDecoder) Uint8(v []byte) uint8 {
	if v := d.Sized(v, 1); v != nil {
		return v[0]
	}
	return 0
}

// Uint32 returns v as a native u32, or 0 if it is not 4 bytes, a fault.
func (d *attrDecoder) Uint32(v []byte) uint32 {
	if v := d.Sized(v, 4); v != nil {
		return binary.NativeEndian.Uint32(v)
	}
	return 0
}

// Uint64 returns v as a native u64, or 0 if it is not 8 bytes, a fault.
func (d *attrDecoder) Uint64(v []byte) uint64 {
	if v := d.Sized(v, 8); v != nil {
		return binary.NativeEndian.Uint64(v)
	}
	return 0
}

// Nested sets nest to decode the attributes inside v, named by names; it
// is set in place, as faults.attrs sets a decoder.
func (d *attrDecoder) Nested(nest *attrDecoder, v []byte, names attrNames) {
	nest.b, nest.diag, nest.names = v, d.diag, names
	nest.rest, nest.bad, nest.want = nil, nil, 0
}

// Failed reports whether the walk went wrong.
func (d *attrDecoder) Failed() bool { return d.want != 0 || d.unframed() }

// unframed reports whether All stopped at an attribute it could not frame,
// rather than at the end or where the loop broke off. All leaves that to
// this, on the cold side of the walk, to stay small enough to be inlined.
func (d *attrDecoder) unframed() bool {
	if len(d.rest) == 0 {
		return false
	}
	if len(d.rest) < nlaHeaderLen {
		return true
	}
	l := int(binary.NativeEndian.Uint16(d.rest))
	return l < nlaHeaderLen || l > len(d.rest)
}

// Err returns why the walk went wrong, or no fault.
func (d *attrDecoder) Err() fault {
	switch rest := len(d.rest); {
	case d.want != 0:
		return d.Faultf(d.bad, "attribute %s at byte %d carries %d bytes, want %d", len(d.bad), d.want)
	case !d.unframed():
		return fault{}
	case rest < nlaHeaderLen:
		return faultf("%d bytes left at byte %d, too few for an attribute header (%d bytes)", rest, d.at(d.rest), nlaHeaderLen)
	}
	t := binary.NativeEndian.Uint16(d.rest[2:4]) & nlaTypeMask
	return attrFaultf(d.names, t, "attribute %s at byte %d has length %d, outside %d-%d (its header to the end of the message)",
		d.at(d.rest), int(binary.NativeEndian.Uint16(d.rest[0:2])), nlaHeaderLen, len(d.rest))
}

// Faultf returns a fault of the attribute whose value is v: reason's
// first two verbs take its name and its place in the datagram, the others
// args.
func (d *attrDecoder) Faultf(v []byte, reason string, args ...int) fault {
	h := d.header(v)
	f := attrFaultf(d.names, binary.NativeEndian.Uint16(h[2:])&nlaTypeMask, reason, d.at(h))
	copy(f.args[1:], args)
	return f
}

// at returns where b, a slice of d.b, starts in the datagram, or in d.b
// when no Diagnose asks.
func (d *attrDecoder) at(b []byte) int {
	if d.diag == nil {
		return cap(d.b) - cap(b)
	}
	return d.diag.offset(b)
}
