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
	"cmp"
	"fmt"
	"slices"
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

	// Count is how many occurrences the event stands for, where one
	// message reports several at once (the drop monitor's summaries); 0
	// counts as 1.
	Count uint64

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
	// netlink commands (genl decoder) to event names: a source's
	// event_names, for a decoder whose Info says EventNames.
	TypeNames map[uint16]string
	// Genl says the messages come from a generic netlink family, with a
	// generic netlink header after the netlink header: the source names
	// a family.
	Genl bool
	// Interfaces makes the drop_monitor decoder name each dropped
	// packet's input interface in its payload.
	Interfaces bool
}

// An Info describes a decoder: how to make one, and what a source of it
// reads and sends. The configuration checks sources against it, the
// sources and the monitor make decoders and requests from it, and a test
// checks README's tables against it.
type Info struct {
	// Name is the decoder's name, a source's decoder key.
	Name string
	// New makes a decoder; each source has its own.
	New func(Options) Decoder
	// Protocol is the classic netlink protocol the decoder reads, the
	// only one a source of it may name; AnyProtocol for any, and
	// NoProtocol for a decoder of generic netlink families only.
	Protocol int
	// Families says the decoder reads generic netlink families (a
	// source's family key). Family, if set, is the family it is written
	// for; a source may name another.
	Families bool
	Family   string
	// Groups are the multicast groups the decoder reads. For a decoder
	// of one protocol they are the only ones a source of it may join;
	// for one written for a family, they are the family's groups.
	Groups []Group
	// Requests, if not nil, returns the messages a source sends the
	// kernel each time its socket opens (netlinksrc.Config.Requests).
	Requests func() [][]byte
	// EventNames says the decoder takes a source's event_names: names of
	// netlink message types, or of a family's commands.
	EventNames bool
}

// A Group is a multicast group a decoder reads.
type Group struct {
	// Name is a family's group name, or the name of a protocol's group:
	// the one a source may give it, or the kernel's.
	Name string
	// Number is a protocol's group, numbered from 1 as a source's groups
	// are; 0 for a family's, whose ids the kernel assigns at run time.
	Number uint32
}

const (
	// AnyProtocol is the Protocol of a decoder of any classic protocol.
	AnyProtocol = -1
	// NoProtocol is the Protocol of a decoder of generic netlink families
	// only.
	NoProtocol = -2
)

// registry describes every decoder, in the order Names lists them. Adding
// a decoder is a file of its own, its test file and an entry here.
var registry = []Info{
	{
		Name:       "raw",
		New:        func(o Options) Decoder { return NewRaw(o.TypeNames) },
		Protocol:   AnyProtocol,
		Families:   true,
		EventNames: true,
	},
	{
		Name:     "uevent",
		New:      func(Options) Decoder { return NewUevent() },
		Protocol: AnyProtocol,
		Families: true,
	},
	{
		Name: "kevent",
		New: func(o Options) Decoder {
			if o.Genl {
				return NewKeventGenl()
			}
			return NewKevent()
		},
		Protocol: AnyProtocol,
		Families: true,
		Family:   KeventGenlFamily,
		Groups:   []Group{{Name: KeventGenlGroup}},
	},
	{
		Name:       "genl",
		New:        func(o Options) Decoder { return NewGenl(o.TypeNames) },
		Protocol:   NoProtocol,
		Families:   true,
		EventNames: true,
	},
	{
		Name:     "thermal",
		New:      func(Options) Decoder { return NewThermal() },
		Protocol: NoProtocol,
		Families: true,
		Family:   ThermalGenlFamily,
		Groups:   []Group{{Name: ThermalGenlEventGroup}, {Name: ThermalGenlSamplingGroup}},
	},
	{
		Name:     "acpi",
		New:      func(Options) Decoder { return NewACPI() },
		Protocol: NoProtocol,
		Families: true,
		Family:   ACPIGenlFamily,
		Groups:   []Group{{Name: ACPIGenlGroup}},
	},
	{
		Name:     "quota",
		New:      func(Options) Decoder { return NewQuota() },
		Protocol: NoProtocol,
		Families: true,
		Family:   QuotaGenlFamily,
		Groups:   []Group{{Name: QuotaGenlGroup}},
	},
	{
		Name:     "rtnetlink",
		New:      func(Options) Decoder { return NewRtnetlink() },
		Protocol: netlinkRoute,
		Groups:   groupsByNumber(RtnetlinkGroups),
		Requests: func() [][]byte { return [][]byte{RtnetlinkDumpRequest()} },
	},
	{
		Name:     "proc",
		New:      func(Options) Decoder { return NewProc() },
		Protocol: netlinkConnector,
		Groups:   []Group{{Name: "CN_IDX_PROC", Number: cnIdxProc}},
		Requests: ProcListenRequests,
	},
	{
		Name:     "conntrack",
		New:      func(Options) Decoder { return NewConntrack() },
		Protocol: ConntrackProtocol,
		Groups:   groupsByNumber(ConntrackGroups),
	},
	{
		Name:     "xfrm",
		New:      func(Options) Decoder { return NewXfrm() },
		Protocol: netlinkXfrm,
		Groups:   groupsByNumber(XfrmGroups),
	},
	{
		Name:     "audit",
		New:      func(Options) Decoder { return NewAudit() },
		Protocol: netlinkAudit,
		Groups:   groupsByNumber(AuditGroups),
	},
	{
		Name:     "drop_monitor",
		New:      func(o Options) Decoder { return NewDropMon(o.Interfaces) },
		Protocol: NoProtocol,
		Families: true,
		Family:   DropMonFamily,
		Groups:   []Group{{Name: DropMonGroup}},
	},
}

// groupsByNumber returns a protocol's named groups (RtnetlinkGroups,
// ConntrackGroups, XfrmGroups, AuditGroups) by number.
func groupsByNumber(names map[string]uint32) []Group {
	groups := make([]Group, 0, len(names))
	for name, n := range names {
		groups = append(groups, Group{Name: name, Number: n})
	}
	slices.SortFunc(groups, func(a, b Group) int { return cmp.Compare(a.Number, b.Number) })
	return groups
}

// Names lists the decoders New knows, in the registry's order.
var Names = func() []string {
	names := make([]string, len(registry))
	for i, d := range registry {
		names[i] = d.Name
	}
	return names
}()

// Infos returns the description of every decoder, in the order of Names.
func Infos() []Info {
	return slices.Clone(registry)
}

// Lookup returns the description of the decoder called name.
func Lookup(name string) (Info, bool) {
	i := slices.IndexFunc(registry, func(d Info) bool { return d.Name == name })
	if i < 0 {
		return Info{}, false
	}
	return registry[i], true
}

// New returns the decoder called name.
func New(name string, opts Options) (Decoder, error) {
	d, ok := Lookup(name)
	if !ok {
		return nil, fmt.Errorf("unknown decoder %q", name)
	}
	return d.New(opts), nil
}

// Requests returns the messages a source of decoder name sends the kernel
// each time its socket opens (netlinksrc.Config.Requests), or nil.
func Requests(name string) [][]byte {
	if d, ok := Lookup(name); ok && d.Requests != nil {
		return d.Requests()
	}
	return nil
}
