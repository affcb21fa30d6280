package srcinfo

import (
	"slices"
	"testing"
)

// TestNames: the names are the label values of kevent_source_state and
// kevent_datagrams_rejected_total, and the monitor's and the logs' words.
func TestNames(t *testing.T) {
	var states []string
	for st := range NumStates {
		states = append(states, st.String())
	}
	if got, want := states, []string{"waiting", "up", "denied", "failed"}; !slices.Equal(got, want) {
		t.Errorf("states %q, want %q", got, want)
	}
	var reasons []string
	for r := range NumRejectReasons {
		reasons = append(reasons, r.String())
	}
	if got, want := reasons, []string{"not_kernel", "not_root", "no_credentials"}; !slices.Equal(got, want) {
		t.Errorf("reject reasons %q, want %q", got, want)
	}
	if got := State(-1).String(); got != "State(-1)" {
		t.Errorf("State(-1) is %q", got)
	}
	if got := NumRejectReasons.String(); got != "RejectReason(3)" {
		t.Errorf("NumRejectReasons is %q", got)
	}
}

// TestUp: a subscription is up exactly in StateUp.
func TestUp(t *testing.T) {
	for st := range NumStates {
		if got := (Stats{State: st}).Up(); got != (st == StateUp) {
			t.Errorf("%s: Up() = %t", st, got)
		}
	}
}

// TestPlus: the counts add up, the state is the later subscription's.
func TestPlus(t *testing.T) {
	earlier := Stats{State: StateUp, Attachments: 1, GroupsJoined: 2, ReceiveBufferBytes: 1 << 20, Datagrams: 10, Overruns: 1, Lost: 3, Rejected: [NumRejectReasons]uint64{1, 2, 3}, DropReadErrors: 1}
	later := Stats{State: StateWaiting, Attachments: 2, ReceiveBufferBytes: 2 << 20, Datagrams: 5, Lost: 1, Rejected: [NumRejectReasons]uint64{0, 1, 0}}
	want := Stats{State: StateWaiting, Attachments: 3, ReceiveBufferBytes: 2 << 20, Datagrams: 15, Overruns: 1, Lost: 4, Rejected: [NumRejectReasons]uint64{1, 3, 3}, DropReadErrors: 1}
	if got := earlier.Plus(later); got != want {
		t.Errorf("Plus:\n got %+v\nwant %+v", got, want)
	}
}
