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

// TestParseSenders: the configuration's values parse to the Senders that
// print them, leaving senders out is SendersDefault, and anything else is
// an error that trusts only the kernel.
func TestParseSenders(t *testing.T) {
	values := SendersValues()
	if want := []string{"kernel", "root", "any"}; !slices.Equal(values, want) {
		t.Fatalf("SendersValues() = %q, want %q", values, want)
	}
	values[0] = "changed"
	if SendersValues()[0] != "kernel" {
		t.Fatal("changing what SendersValues returned changed the values")
	}
	for _, name := range SendersValues() {
		s, err := ParseSenders(name)
		if err != nil || s == SendersDefault || s.String() != name {
			t.Errorf("ParseSenders(%q) = %s, %v", name, s, err)
		}
	}
	if s, err := ParseSenders(""); err != nil || s != SendersDefault {
		t.Errorf("ParseSenders(\"\") = %s, %v; want default", s, err)
	}
	for _, name := range []string{"everyone", "Kernel", "default", " root"} {
		s, err := ParseSenders(name)
		if err == nil || s != SendersKernel {
			t.Errorf("ParseSenders(%q) = %s, %v; want kernel and an error", name, s, err)
		}
	}
	const want = `senders "everyone" must be one of kernel, root, any`
	if _, err := ParseSenders("everyone"); err == nil || err.Error() != want {
		t.Errorf("error %v, want %s", err, want)
	}
	if got := Senders(99).String(); got != "Senders(99)" {
		t.Errorf("Senders(99) is %q", got)
	}
}
