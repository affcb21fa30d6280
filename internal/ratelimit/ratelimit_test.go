package ratelimit

import (
	"fmt"
	"testing"
	"time"
)

// TestLimiter: one line per interval, the next one counting the
// occurrences kept quiet, under one key.
func TestLimiter(t *testing.T) {
	now := time.Unix(1e9, 0)
	l := &Limiter{now: func() time.Time { return now }}
	var logged []string
	log := func() {
		if n, ok := l.Allow(); ok {
			logged = append(logged, fmt.Sprintln(Quieted(n, "msg", "boom")...))
		}
	}
	for range 100 {
		log()
	}
	if len(logged) != 1 || logged[0] != "msg boom\n" {
		t.Fatalf("within the interval: %q, want one line", logged)
	}
	now = now.Add(Interval - time.Nanosecond)
	log()
	if len(logged) != 1 {
		t.Fatalf("just before the interval ends: %q, want one line", logged)
	}
	now = now.Add(time.Nanosecond)
	log()
	if len(logged) != 2 || logged[1] != "msg boom suppressed_since_last_log 100\n" {
		t.Fatalf("after the interval: %q, want a second line counting 100 kept quiet", logged)
	}
	fast := &Limiter{Every: time.Second, now: func() time.Time { return now }}
	fast.Allow()
	now = now.Add(time.Second)
	if _, ok := fast.Allow(); !ok {
		t.Fatal("Every: no line one Every later")
	}
}
