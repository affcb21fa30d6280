// Package decoder turns netlink datagrams into events.
//
// Decoders work in place: an Event's byte slices alias the datagram or the
// decoder's own memory and must not be modified. A caller decodes a batch of
// datagrams by appending to one events slice, starting from an empty one;
// the events stay valid until the next batch starts (Decode is called with
// an empty events slice) or the datagrams' buffer is reused. Decoding
// allocates nothing once the decoder's and the caller's buffers have grown
// to size. A decoder is used by one goroutine.
package decoder

import (
	"fmt"
)

// Event is one decoded kernel event.
type Event struct {
	// Name identifies the event, e.g. "net/change" or "done". It may be
	// the decoder's own memory (uevent builds it, raw shares it between
	// messages of a type).
	Name []byte
	// Value is the event's value; valid only when HasValue is set.
	Value    float64
	HasValue bool
	// Payload is the event's text, without a trailing NUL.
	Payload []byte
	// Object is what the event is about (an interface, a thermal zone, a
	// device), or empty. Like Name it may be the decoder's own memory.
	Object []byte
	// Gone names an object the kernel removed, as of this event: the
	// event's own Object when the event is the object's last (link/del),
	// or another (the former name of a renamed interface). The objects
	// under it, named Gone followed by "/" ("tz3/trip1" under "tz3"), are
	// gone with it. Empty when the event removes nothing.
	Gone []byte

	// Sequence numbering, set by decoders whose format carries it.
	HasSeq   bool
	Seq      uint64
	Instance uint64
}

// A Decoder decodes the messages in one datagram.
type Decoder interface {
	// Decode appends the events found in datagram to events and returns
	// them, with the number of messages that were malformed. A malformed
	// message never hides the well-formed ones around it where their
	// boundaries can still be found.
	Decode(events []Event, datagram []byte) ([]Event, int)
}

// Options tune a decoder.
type Options struct {
	// TypeNames maps netlink message types (raw decoder) or generic
	// netlink commands (genl decoder) to event names.
	TypeNames map[uint16]string
	// Genl says the messages come from a generic netlink family, with a
	// generic netlink header after the netlink header.
	Genl bool
}

// Names lists the decoders New knows.
var Names = []string{"raw", "uevent", "kevent", "genl", "thermal", "acpi", "quota", "rtnetlink", "proc", "conntrack"}

// New returns the decoder called name.
func New(name string, opts Options) (Decoder, error) {
	switch name {
	case "raw":
		return NewRaw(opts.TypeNames), nil
	case "uevent":
		return NewUevent(), nil
	case "kevent":
		if opts.Genl {
			return NewKeventGenl(), nil
		}
		return NewKevent(), nil
	case "genl":
		return NewGenl(opts.TypeNames), nil
	case "thermal":
		return NewThermal(), nil
	case "acpi":
		return NewACPI(), nil
	case "quota":
		return NewQuota(), nil
	case "rtnetlink":
		return NewRtnetlink(), nil
	case "proc":
		return NewProc(), nil
	case "conntrack":
		return NewConntrack(), nil
	default:
		return nil, fmt.Errorf("unknown decoder %q", name)
	}
}
