package e2e

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// TestValueSum: Value takes the first series with the labels, Sum adds all
// of them; labels not given match any value.
func TestValueSum(t *testing.T) {
	const text = `# TYPE kevent_events_total counter
kevent_events_total{event="add",source="uevent"} 3
kevent_events_total{event="remove",source="uevent"} 4
kevent_events_total{event="add",source="link"} 5
`
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		labels []string
		value  float64
		ok     bool
		sum    float64
	}{
		{nil, 3, true, 12},
		{[]string{"source", "uevent"}, 3, true, 7},
		{[]string{"event", "add", "source", "link"}, 5, true, 5},
		{[]string{"source", "none"}, 0, false, 0},
	} {
		if v, ok := Value(mfs, "kevent_events_total", c.labels...); v != c.value || ok != c.ok {
			t.Errorf("Value(%q) = %v, %t; want %v, %t", c.labels, v, ok, c.value, c.ok)
		}
		if s := Sum(mfs, "kevent_events_total", c.labels...); s != c.sum {
			t.Errorf("Sum(%q) = %v, want %v", c.labels, s, c.sum)
		}
	}
	if _, ok := Value(mfs, "kevent_absent"); ok {
		t.Error("Value of an absent metric exists")
	}
}

// fatalTB records what a test fails with.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper() {}

func (f *fatalTB) Fatal(args ...any) {
	f.msg = fmt.Sprint(args...)
	runtime.Goexit()
}

func TestEventuallyDetails(t *testing.T) {
	defer func(d time.Duration) { Timeout = d }(Timeout)
	Timeout = 50 * time.Millisecond
	polls := 0
	f := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		Eventually(f, "never", func() bool { polls++; return false }, Lazy(func() string { return fmt.Sprint("polls: ", polls) }))
	}()
	<-done
	want := fmt.Sprintf("timed out after 50ms waiting until never\npolls: %d", polls)
	if f.msg != want || polls < 2 {
		t.Errorf("Eventually failed with %q after %d polls, want %q", f.msg, polls, want)
	}
}
