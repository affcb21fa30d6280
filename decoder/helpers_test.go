package decoder_test

import (
	"encoding/binary"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kevent-exporter/kevent_exporter/decoder"
	"github.com/kevent-exporter/kevent_exporter/internal/nlsend"
)

// nlSeq is the nlmsg_seq of the test messages; the decoders ignore it.
const nlSeq = 1

// Well-formed messages and attributes are built with nlsend.AppendMessage
// and nlsend.AppendAttr. The helpers below build what nlsend does not:
// framing that lies or lacks its padding.

// nlmsghdr returns the header of a message of type typ with sequence nlSeq,
// and no payload behind it, whose length field says length. It builds
// malformed framing.
func nlmsghdr(length uint32, typ uint16) []byte {
	b := nlsend.AppendMessage(nil, typ, nlSeq, nil)
	binary.NativeEndian.PutUint32(b[0:4], length)
	return b
}

// withoutPadding cuts a message to the length its header says, as the last
// message of a datagram may be.
func withoutPadding(msg []byte) []byte {
	return msg[:binary.NativeEndian.Uint32(msg[0:4])]
}

// rawAttr returns an attribute header whose length field says length,
// followed by v unpadded. It builds malformed attributes.
func rawAttr(length, typ uint16, v []byte) []byte {
	b := nlsend.AppendAttr(nil, typ, nil)
	binary.NativeEndian.PutUint16(b[0:2], length)
	return append(b, v...)
}

// withoutAttrPadding cuts an attribute to the length its header says, as the
// last attribute of a message may be.
func withoutAttrPadding(attr []byte) []byte {
	return attr[:binary.NativeEndian.Uint16(attr[0:2])]
}

// concat joins byte slices into a new slice.
func concat(bs ...[]byte) []byte {
	var out []byte
	for _, b := range bs {
		out = append(out, b...)
	}
	return out
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
	Object   string
	Value    float64
	HasValue bool
	Payload  string
	Gone     string
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
			Object:   string(e.Object),
			HasValue: e.HasValue,
			Payload:  string(e.Payload),
			Gone:     string(e.Gone),
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

// checkDecode decodes datagram with d and compares the events and the
// malformed count with want and wantBad.
func checkDecode(t *testing.T, d decoder.Decoder, datagram []byte, want []event, wantBad int) {
	t.Helper()

	got, bad := d.Decode(nil, datagram)
	if diff := cmp.Diff(want, toEvents(got)); diff != "" {
		t.Errorf("unexpected events (-want +got):\n%s", diff)
	}
	if bad != wantBad {
		t.Errorf("unexpected malformed count: want %d, got %d", wantBad, bad)
	}
}

// checkReasons fails unless Diagnose explains the malformed messages of
// datagram for d with reasons, in order.
func checkReasons(t *testing.T, d decoder.Decoder, datagram []byte, reasons ...string) {
	t.Helper()

	var got []string
	for _, p := range decoder.Diagnose(d, datagram) {
		got = append(got, p.Reason)
	}
	if diff := cmp.Diff(reasons, got); diff != "" {
		t.Errorf("unexpected reasons (-want +got):\n%s", diff)
	}
}

// checkMessageCounts fails unless a netlink decoder could have found events
// and bad malformed messages in datagram: bad is not negative, and there are
// no more in all than datagram holds message headers, plus one for a rest
// that cannot be framed.
func checkMessageCounts(t *testing.T, datagram []byte, events []decoder.Event, bad int) {
	t.Helper()

	if bad < 0 {
		t.Fatalf("negative malformed count %d", bad)
	}
	if n, max := len(events)+bad, len(datagram)/16+1; n > max {
		t.Fatalf("%d events and %d malformed messages from %d bytes, want at most %d in all",
			len(events), bad, len(datagram), max)
	}
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
