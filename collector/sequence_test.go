package collector

import "testing"

func TestSequenceTracker(t *testing.T) {
	type counts struct{ missing, reordered, duplicates, resets uint64 }
	tests := []struct {
		name string
		seqs []uint64 // instance 1 unless a value is >= 1<<40, which switches to instance 2
		want counts
	}{
		{name: "in order", seqs: []uint64{1, 2, 3, 4}},
		{name: "starts mid-stream without loss", seqs: []uint64{500, 501}},
		{name: "gap", seqs: []uint64{1, 2, 6}, want: counts{missing: 3}},
		{name: "late arrival fills counted gap", seqs: []uint64{1, 3, 2}, want: counts{missing: 1, reordered: 1}},
		{name: "duplicate", seqs: []uint64{1, 2, 2, 1}, want: counts{duplicates: 2}},
		{name: "late then duplicate", seqs: []uint64{1, 3, 2, 2}, want: counts{missing: 1, reordered: 1, duplicates: 1}},
		{name: "gap across word boundary", seqs: []uint64{1, 70, 5, 5, 69}, want: counts{missing: 68, reordered: 2, duplicates: 1}},
		{name: "beyond window", seqs: []uint64{1, 1000, 2}, want: counts{missing: 998, reordered: 1}},
		{name: "window edge", seqs: []uint64{1, 128, 1}, want: counts{missing: 126, duplicates: 1}},
		{name: "jump then window", seqs: []uint64{1, 300, 299, 299}, want: counts{missing: 298, reordered: 1, duplicates: 1}},
		{name: "late messages below the first tracked", seqs: []uint64{100, 99, 98, 101}},
		{name: "below first after a gap", seqs: []uint64{100, 103, 99, 101}, want: counts{missing: 2, reordered: 1}},
		{name: "new instance resets", seqs: []uint64{1, 2, 1<<40 + 7, 1<<40 + 8}, want: counts{resets: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var tr sequenceTracker
			for _, s := range tt.seqs {
				inst := uint64(1)
				if s >= 1<<40 {
					inst, s = 2, s-1<<40
				}
				tr.observe(inst, s)
			}
			got := counts{tr.missing, tr.reordered, tr.duplicates, tr.resets}
			if got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}
