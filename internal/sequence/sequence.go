// Package sequence follows the sequence numbers of a sender that numbers
// its messages, such as the kevent module, and says what each number tells
// about the ones before it: in order, a gap, late, a copy, or a restarted
// sender. The collector counts what it says as metrics and the monitor
// prints it, so the two agree by construction.
package sequence

// Window is how many sequence numbers behind the highest one seen a Tracker
// remembers, to tell a late message from a copy.
const Window = 128

// Kind is what one sequence number says about the numbers before it.
type Kind uint8

const (
	// InOrder is the number after the highest so far.
	InOrder Kind = iota
	// First is the first number of the first instance followed.
	First
	// Reset is the first number of a new instance: the sender restarted
	// (the module was reloaded), which is not a loss.
	Reset
	// Gap is a number above the highest by more than one: the numbers in
	// between are missing.
	Gap
	// Late is a number that fills part of a gap counted earlier, or one
	// Window or more behind the highest, which cannot be told from a copy.
	Late
	// Duplicate is a number already seen within the window.
	Duplicate
	// Untracked is a number below the first one followed of its instance:
	// it was sent before the Tracker started following, and settles
	// nothing.
	Untracked
)

var kindNames = [...]string{
	InOrder:   "in_order",
	First:     "first",
	Reset:     "reset",
	Gap:       "gap",
	Late:      "late",
	Duplicate: "duplicate",
	Untracked: "untracked",
}

// String returns the kind's name, as "gap".
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unknown"
}

// Counts are what a Tracker counted since it started.
type Counts struct {
	// Missing is the numbers that gaps skipped.
	Missing uint64
	// Reordered is the Late numbers: Missing - Reordered is what is still
	// missing.
	Reordered uint64
	// Duplicates is the numbers seen twice.
	Duplicates uint64
	// Resets is the new instances after the first.
	Resets uint64
}

// A Tracker follows the sequence numbers of one sender instance at a time
// and counts the numbers that never arrived. A gap is counted when it is
// seen; a number that arrives late into a gap counted earlier is counted
// as reordered, one seen twice as a duplicate. A new instance starts
// afresh without counting what happened before it as missing. The zero
// Tracker is ready to use; it is not safe for concurrent use.
type Tracker struct {
	started  bool
	instance uint64
	// first is the first number of the instance followed: those below it
	// were sent before the Tracker started following it.
	first, highest uint64
	// seen has bit i set when highest-i has arrived.
	seen   [Window / 64]uint64
	counts Counts
}

// Observe takes the next number received, seq of sender instance, and
// counts and returns what it says. missing is the numbers a Gap skipped,
// else 0.
func (t *Tracker) Observe(instance, seq uint64) (kind Kind, missing uint64) {
	if !t.started || instance != t.instance {
		kind = First
		if t.started {
			kind = Reset
			t.counts.Resets++
		}
		t.started, t.instance, t.first, t.highest = true, instance, seq, seq
		t.seen = [Window / 64]uint64{1}
		return kind, 0
	}
	switch {
	case seq < t.first:
		return Untracked, 0
	case seq > t.highest:
		d := seq - t.highest
		t.shift(d)
		t.highest = seq
		t.seen[0] |= 1
		if d == 1 {
			return InOrder, 0
		}
		t.counts.Missing += d - 1
		return Gap, d - 1
	case t.highest-seq >= Window:
		// Too old to tell a late number from a copy: it fell in a gap
		// counted missing, or is a copy; counted as late.
		t.counts.Reordered++
		return Late, 0
	default:
		i := t.highest - seq
		w, bit := i/64, uint64(1)<<(i%64)
		if t.seen[w]&bit != 0 {
			t.counts.Duplicates++
			return Duplicate, 0
		}
		t.seen[w] |= bit
		t.counts.Reordered++
		return Late, 0
	}
}

// shift moves the window d places: bit i becomes bit i+d.
func (t *Tracker) shift(d uint64) {
	if d >= Window {
		t.seen = [Window / 64]uint64{}
		return
	}
	words, bits := int(d/64), d%64
	for i := len(t.seen) - 1; i >= 0; i-- {
		var v uint64
		if j := i - words; j >= 0 {
			v = t.seen[j] << bits
			if bits != 0 && j > 0 {
				v |= t.seen[j-1] >> (64 - bits)
			}
		}
		t.seen[i] = v
	}
}

// Started reports whether the Tracker has observed a number.
func (t *Tracker) Started() bool { return t.started }

// Instance returns the sender instance followed.
func (t *Tracker) Instance() uint64 { return t.instance }

// Highest returns the highest number seen of the instance followed.
func (t *Tracker) Highest() uint64 { return t.highest }

// Counts returns what the Tracker counted.
func (t *Tracker) Counts() Counts { return t.counts }
