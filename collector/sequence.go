package collector

// seqWindow is how many sequence numbers behind the highest one seen are
// remembered, to tell a late message from a duplicate.
const seqWindow = 128

// sequenceTracker follows the sequence numbers of one sender instance and
// counts the numbers that never arrived. A gap is counted when it is seen;
// a message that arrives late into a gap counted earlier is counted as
// reordered (so that missing - reordered is what is still missing), one
// seen twice as a duplicate. A new instance starts afresh without counting
// what happened before it as missing; messages numbered below the first one
// tracked were never counted missing and are not counted at all.
type sequenceTracker struct {
	started  bool
	instance uint64
	first    uint64
	highest  uint64
	// seen has bit i set when highest-i has arrived.
	seen [seqWindow / 64]uint64

	missing, reordered, duplicates, resets uint64
}

func (t *sequenceTracker) observe(instance, seq uint64) {
	if !t.started || instance != t.instance {
		if t.started {
			t.resets++
		}
		t.started, t.instance, t.first, t.highest = true, instance, seq, seq
		t.seen = [seqWindow / 64]uint64{1}
		return
	}
	switch {
	case seq < t.first:
		// Sent before the first message tracked: nothing to settle.
	case seq > t.highest:
		d := seq - t.highest
		t.missing += d - 1
		t.shift(d)
		t.highest = seq
		t.seen[0] |= 1
	case t.highest-seq >= seqWindow:
		// Too old to tell a late message from a duplicate: it fell in a
		// gap counted missing, or is a copy; counted as late.
		t.reordered++
	default:
		i := t.highest - seq
		w, bit := i/64, uint64(1)<<(i%64)
		if t.seen[w]&bit != 0 {
			t.duplicates++
			return
		}
		t.seen[w] |= bit
		t.reordered++
	}
}

// shift moves the window d places: bit i becomes bit i+d.
func (t *sequenceTracker) shift(d uint64) {
	if d >= seqWindow {
		t.seen = [seqWindow / 64]uint64{}
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
