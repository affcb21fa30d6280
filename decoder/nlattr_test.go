package decoder

import (
	"encoding/binary"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// attr returns a netlink attribute of type typ holding v, with its padding.
func attr(typ uint16, v ...byte) []byte {
	b := binary.NativeEndian.AppendUint16(nil, uint16(nlaHeaderLen+len(v)))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = append(b, v...)
	for len(b)%nlmsgAlignTo != 0 {
		b = append(b, 0)
	}
	return b
}

// attrMessage returns a message of the attributes, as the walker gives it,
// and the datagram it is the only message of.
func attrMessage(attrs ...[]byte) (message, []byte) {
	var p []byte
	for _, a := range attrs {
		p = append(p, a...)
	}
	datagram := make([]byte, nlmsgHeaderLen, nlmsgHeaderLen+len(p))
	binary.NativeEndian.PutUint32(datagram, uint32(nlmsgHeaderLen+len(p)))
	datagram = append(datagram, p...)
	return message{Payload: datagram[nlmsgHeaderLen:]}, datagram
}

func TestAttrDecoder(t *testing.T) {
	names := attrNames{1: "A_ONE", 2: "A_TWO"}
	type seen struct {
		Typ uint16
		V   []byte
	}
	for _, c := range []struct {
		name   string
		attrs  [][]byte
		read   func(ad *attrDecoder, typ uint16, v []byte) // a value reader, or nil
		want   []seen
		reason string
	}{
		{name: "none"},
		{
			name:  "types with their flags, values without padding",
			attrs: [][]byte{attr(1, 'a'), attr(2|nlaFNested, 1, 2, 3, 4), attr(3)},
			want:  []seen{{1, []byte{'a'}}, {2 | nlaFNested, []byte{1, 2, 3, 4}}, {3, []byte{}}},
		},
		{
			name:  "the last attribute without its padding",
			attrs: [][]byte{attr(1, 1, 2, 3, 4), attr(2, 'x')[:5]},
			want:  []seen{{1, []byte{1, 2, 3, 4}}, {2, []byte{'x'}}},
		},
		{
			name:   "bytes left after the last attribute",
			attrs:  [][]byte{attr(1, 'a'), {1, 2}},
			want:   []seen{{1, []byte{'a'}}},
			reason: "2 bytes left at byte 24, too few for an attribute header (4 bytes)",
		},
		{
			name:   "a length past the end",
			attrs:  [][]byte{attr(1, 'a'), {20, 0, 2, 0, 0, 0, 0, 0}},
			want:   []seen{{1, []byte{'a'}}},
			reason: "attribute A_TWO (2) at byte 24 has length 20, outside 4-8 (its header to the end of the message)",
		},
		{
			name:   "a length under the header's",
			attrs:  [][]byte{{2, 0, 7, 0}},
			reason: "attribute type 7 at byte 16 has length 2, outside 4-4 (its header to the end of the message)",
		},
		{
			name:  "a value of the wrong size, then one of the right size",
			attrs: [][]byte{attr(1, 1, 2), attr(2, 1, 0, 0, 0), attr(1, 1)},
			read: func(ad *attrDecoder, typ uint16, v []byte) {
				ad.Uint32(v)
			},
			want:   []seen{{1, []byte{1, 2}}, {2, []byte{1, 0, 0, 0}}, {1, []byte{1}}},
			reason: "attribute A_ONE (1) at byte 16 carries 2 bytes, want 4",
		},
		{
			name:  "a value of the wrong size before attributes that cannot be framed",
			attrs: [][]byte{attr(2, 1), {1}},
			read: func(ad *attrDecoder, typ uint16, v []byte) {
				ad.Uint64(v)
			},
			want:   []seen{{2, []byte{1}}},
			reason: "attribute A_TWO (2) at byte 16 carries 1 bytes, want 8",
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			m, datagram := attrMessage(c.attrs...)
			for _, diagnosing := range []bool{false, true} {
				var x faults
				if diagnosing {
					x.diag = &diagnosis{datagram: datagram}
				}
				var ad attrDecoder
				x.attrs(&ad, m, 0, names)
				var got []seen
				for typ, v := range ad.All {
					got = append(got, seen{typ, v})
					if c.read != nil {
						c.read(&ad, typ, v)
					}
				}
				if diff := cmp.Diff(c.want, got); diff != "" {
					t.Errorf("attributes (-want +got):\n%s", diff)
				}
				if ad.Failed() != (c.reason != "") {
					t.Errorf("Failed() = %t, want %t", ad.Failed(), c.reason != "")
				}
				// Offsets are the datagram's when diagnosing; the
				// reason is only ever formatted then.
				if !diagnosing {
					continue
				}
				if got := ad.Err(); got.reason == "" && c.reason != "" || got.reason != "" && got.String() != c.reason {
					t.Errorf("Err() = %q, want %q", got.String(), c.reason)
				}
			}
		})
	}
}

// TestAttrDecoderBreak: a loop that breaks off leaves no fault.
func TestAttrDecoderBreak(t *testing.T) {
	m, _ := attrMessage(attr(1, 'a'), attr(2, 'b'), attr(3, 'c'))
	var (
		x  faults
		ad attrDecoder
	)
	x.attrs(&ad, m, 0, nil)
	for typ := range ad.All {
		if typ == 2 {
			break
		}
	}
	if ad.Failed() {
		t.Errorf("Failed() after a break, Err() = %q", ad.Err().String())
	}
}

// TestAttrDecoderNested: a nest's attributes are walked and placed in the
// datagram.
func TestAttrDecoderNested(t *testing.T) {
	m, datagram := attrMessage(attr(1, 'a'), attr(2|nlaFNested, append(attr(5, 1, 2, 3, 4), 9)...))
	x := faults{diag: &diagnosis{datagram: datagram}}
	var ad attrDecoder
	x.attrs(&ad, m, 0, nil)
	var reasons []string
	for typ, v := range ad.All {
		if typ&nlaTypeMask != 2 {
			continue
		}
		var nest attrDecoder
		ad.Nested(&nest, v, attrNames{5: "N_FIVE"})
		for typ, v := range nest.All {
			if typ == 5 {
				reasons = append(reasons, nest.Faultf(v, "attribute %s at byte %d holds %d bytes", len(v)).String())
			}
		}
		reasons = append(reasons, nest.Err().String())
	}
	want := []string{
		"attribute N_FIVE (5) at byte 28 holds 4 bytes",
		"1 bytes left at byte 36, too few for an attribute header (4 bytes)",
	}
	if diff := cmp.Diff(want, reasons); diff != "" {
		t.Errorf("reasons (-want +got):\n%s", diff)
	}
}

// TestAttrDecoderAllocatesNothing walks well-formed and malformed
// attributes, reading their values, without allocating.
func TestAttrDecoderAllocatesNothing(t *testing.T) {
	m, _ := attrMessage(attr(1, 1, 2, 3, 4), attr(2, 1), attr(3, 'x'), []byte{1, 2})
	var x faults
	n := testing.AllocsPerRun(100, func() {
		var ad attrDecoder
		x.attrs(&ad, m, 0, nil)
		for typ, v := range ad.All {
			if typ == 2 {
				ad.Uint32(v)
			}
		}
		if !ad.Failed() || ad.Err().reason == "" {
			t.Fatal("no fault")
		}
	})
	if n != 0 {
		t.Errorf("%v allocations per walk", n)
	}
}
