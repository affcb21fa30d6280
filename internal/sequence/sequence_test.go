package sequence

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestTracker(t *testing.T) {
	// r is sequence number n of instance 2 instead of 1.
	const r = 1 << 40
	tests := []struct {
		name  string
		seqs  []uint64
		kinds []Kind
		want  Counts
	}{
		{name: "in order", seqs: []uint64{1, 2, 3, 4}, kinds: []Kind{First, InOrder, InOrder, InOrder}},
		{name: "starts mid-stream without loss", seqs: []uint64{500, 501}, kinds: []Kind{First, InOrder}},
		{name: "gap", seqs: []uint64{1, 2, 6}, kinds: []Kind{First, InOrder, Gap}, want: Counts{Missing: 3}},
		{name: "late arrival fills counted gap", seqs: []uint64{1, 3, 2}, kinds: []Kind{First, Gap, Late}, want: Counts{Missing: 1, Reordered: 1}},
		{name: "duplicate", seqs: []uint64{1, 2, 2, 1}, kinds: []Kind{First, InOrder, Duplicate, Duplicate}, want: Counts{Duplicates: 2}},
		{name: "late then duplicate", seqs: []uint64{1, 3, 2, 2}, kinds: []Kind{First, Gap, Late, Duplicate}, want: Counts{Missing: 1, Reordered: 1, Duplicates: 1}},
		{
			name: "gap across word boundary", seqs: []uint64{1, 70, 5, 5, 69},
			kinds: []Kind{First, Gap, Late, Duplicate, Late}, want: Counts{Missing: 68, Reordered: 2, Duplicates: 1},
		},
		{name: "beyond window", seqs: []uint64{1, 1000, 2}, kinds: []Kind{First, Gap, Late}, want: Counts{Missing: 998, Reordered: 1}},
		{name: "window edge", seqs: []uint64{1, 128, 1}, kinds: []Kind{First, Gap, Duplicate}, want: Counts{Missing: 126, Duplicates: 1}},
		{name: "just beyond window edge", seqs: []uint64{1, 129, 1}, kinds: []Kind{First, Gap, Late}, want: Counts{Missing: 127, Reordered: 1}},
		{
			name: "jump then window", seqs: []uint64{1, 300, 299, 299},
			kinds: []Kind{First, Gap, Late, Duplicate}, want: Counts{Missing: 298, Reordered: 1, Duplicates: 1},
		},
		{name: "late messages below the first tracked", seqs: []uint64{100, 99, 98, 101}, kinds: []Kind{First, Untracked, Untracked, InOrder}},
		{
			name: "below first after a gap", seqs: []uint64{100, 103, 99, 101},
			kinds: []Kind{First, Gap, Untracked, Late}, want: Counts{Missing: 2, Reordered: 1},
		},
		{
			name: "new instance resets", seqs: []uint64{1, 2, r + 7, r + 8, r + 1},
			kinds: []Kind{First, InOrder, Reset, InOrder, Untracked}, want: Counts{Resets: 1},
		},
		{name: "back to an earlier instance", seqs: []uint64{5, r + 5, 6}, kinds: []Kind{First, Reset, Reset}, want: Counts{Resets: 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var tr Tracker
			var kinds []Kind
			for _, s := range tt.seqs {
				inst := uint64(1)
				if s >= r {
					inst, s = 2, s-r
				}
				prev := tr.Highest()
				kind, missing := tr.Observe(inst, s)
				kinds = append(kinds, kind)
				if want := uint64(0); kind == Gap {
					want = s - prev - 1
					if missing != want {
						t.Errorf("%v after %d: missing %d, want %d", s, prev, missing, want)
					}
				} else if missing != 0 {
					t.Errorf("%v: %s with missing %d, want 0", s, kind, missing)
				}
				if tr.Instance() != inst {
					t.Errorf("%v: instance %d, want %d", s, tr.Instance(), inst)
				}
			}
			if diff := cmp.Diff(tt.kinds, kinds); diff != "" {
				t.Errorf("kinds (-want +got):\n%s", diff)
			}
			if got := tr.Counts(); got != tt.want {
				t.Errorf("counts %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestTrackerZero(t *testing.T) {
	var tr Tracker
	if tr.Started() || tr.Counts() != (Counts{}) {
		t.Errorf("zero Tracker: started %t, counts %+v", tr.Started(), tr.Counts())
	}
	tr.Observe(3, 0)
	if !tr.Started() || tr.Instance() != 3 || tr.Highest() != 0 {
		t.Errorf("after one number: started %t, instance %d, highest %d", tr.Started(), tr.Instance(), tr.Highest())
	}
}

func TestKindString(t *testing.T) {
	for k, want := range map[Kind]string{InOrder: "in_order", Gap: "gap", Untracked: "untracked", Untracked + 1: "unknown"} {
		if got := k.String(); got != want {
			t.Errorf("Kind(%d).String() = %q, want %q", k, got, want)
		}
	}
}

// A Tracker says what each number tells, and counts it.
func ExampleTracker() {
	var t Tracker
	for _, seq := range []uint64{1, 2, 5, 4, 4} {
		kind, missing := t.Observe(7, seq)
		fmt.Println(seq, kind, missing)
	}
	// The sender restarted: a new instance.
	kind, _ := t.Observe(8, 1)
	fmt.Println(1, kind)
	fmt.Printf("%+v\n", t.Counts())
	// Output:
	// 1 first 0
	// 2 in_order 0
	// 5 gap 2
	// 4 late 0
	// 4 duplicate 0
	// 1 reset
	// {Missing:2 Reordered:1 Duplicates:1 Resets:1}
}

// BenchmarkObserve measures a number in order, as most are.
func BenchmarkObserve(b *testing.B) {
	var t Tracker
	b.ReportAllocs()
	for i := range uint64(b.N) {
		t.Observe(1, i)
	}
}
