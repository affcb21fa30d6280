package decoder

import (
	"fmt"
	"strings"
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
// malformed messages, to keep decoding cheap, and Diagnose decodes the
// datagram again with a new decoder of d's kind and transport, which
// reports the fault it found in each malformed message, and formats them.
// It returns one Problem for each message that Decode counts as malformed,
// in order, and nil when Decode finds none or d is of a type it does not
// know.
//
// Diagnose looks at d's kind and transport only, never at its state, so it
// leaves the events of d's current batch intact and may run on any
// goroutine. A decoder whose verdict on a message depended on its state
// would break this; none does.
func Diagnose(d Decoder, datagram []byte) []Problem {
	if d, ok := d.(diagnoser); ok {
		return d.diagnose(datagram)
	}
	return nil
}

// A diagnoser is a decoder that Diagnose explains.
type diagnoser interface {
	// diagnose decodes datagram with a new decoder of its kind and
	// transport and returns the problems it reports.
	diagnose(datagram []byte) []Problem
}

// A diagnosis collects the problems of a datagram. A nil diagnosis, that
// of decoding, collects nothing.
type diagnosis struct {
	datagram []byte
	problems []Problem
}

// offset returns where b, a slice of the datagram, starts in it: slices of
// it share its end of capacity, so that messages and attributes need not
// carry their places.
func (g *diagnosis) offset(b []byte) int {
	return cap(g.datagram) - cap(b)
}

// add records the fault of the message at byte off, if g is not nil.
func (g *diagnosis) add(off int, f fault) {
	if g != nil {
		g.problems = append(g.problems, Problem{off, f.String()})
	}
}

// A recorder is a decoder with faults embedded.
type recorder interface {
	recorder() *faults
}

// diagnoseMessages decodes datagram with d, a new decoder, and returns the
// problems it finds.
func diagnoseMessages[A interface {
	messageAppender
	recorder
}](datagram []byte, d A) []Problem {
	g := diagnosis{datagram: datagram}
	d.recorder().diag = &g
	walkMessages(nil, datagram, d, &g)
	return g.problems
}

// diagnoseEach is diagnoseMessages for a decoder of one event per message.
func diagnoseEach[D interface {
	messageDecoder
	recorder
}](datagram []byte, d D) []Problem {
	g := diagnosis{datagram: datagram}
	d.recorder().diag = &g
	walkMessages(nil, datagram, oneEach[D]{d}, &g)
	return g.problems
}

// A fault says why a decoder rejects a message. It holds a constant
// reason, a fmt format, and what its verbs take, so that rejecting a
// message allocates nothing however malformed it is: Diagnose formats it,
// on the cold path. The zero fault is none.
//
// The reason's verbs take, in order: the attribute's name, for a fault
// about an attribute; the quoted text, if any; then the numbers.
type fault struct {
	reason string
	// hasAttr says the first verb takes the name of attribute type attr
	// among names.
	hasAttr bool
	attr    uint16
	names   attrNames
	// quote, if not nil, is text the next verb takes, quoted and cut
	// to maxQuoted bytes.
	quote []byte
	args  [4]int
}

// faultf returns a fault whose reason's verbs take args (at most 4).
func faultf(reason string, args ...int) fault {
	f := fault{reason: reason}
	copy(f.args[:], args)
	return f
}

// attrFaultf returns a fault about attribute attr, named by names: the
// first verb of reason takes its name, the others args.
func attrFaultf(names attrNames, attr uint16, reason string, args ...int) fault {
	f := faultf(reason, args...)
	f.hasAttr, f.attr, f.names = true, attr, names
	return f
}

// quoting returns f whose reason takes text, quoted, after the
// attribute's name if any.
func (f fault) quoting(text []byte) fault {
	f.quote = text
	if f.quote == nil {
		f.quote = []byte{}
	}
	return f
}

// String formats f's reason.
func (f fault) String() string {
	args := make([]any, 0, 2+len(f.args))
	if f.hasAttr {
		args = append(args, f.names.name(f.attr))
	}
	if f.quote != nil {
		args = append(args, quoteBounded(f.quote))
	}
	for _, a := range f.args {
		args = append(args, a)
	}
	// Only as many as the reason takes: fmt would print the others.
	n := strings.Count(f.reason, "%") - 2*strings.Count(f.reason, "%%")
	return fmt.Sprintf(f.reason, args[:min(n, len(args))]...)
}

// maxQuoted bounds the text of a datagram quoted in a Reason.
const maxQuoted = 64

// quoteBounded quotes b, or its first maxQuoted bytes followed by "...".
func quoteBounded(b []byte) string {
	if len(b) > maxQuoted {
		return fmt.Sprintf("%q...", b[:maxQuoted])
	}
	return fmt.Sprintf("%q", b)
}
