package netlinksrc

import (
	"fmt"
	"testing"
	"time"
)

func TestRateLimiter(t *testing.T) {
	r := &rateLimiter{interval: 50 * time.Millisecond}
	var logged []string
	log := func() {
		if n, ok := r.allow(); ok {
			logged = append(logged, fmt.Sprintln(quieted(n, "msg", "boom")...))
		}
	}
	for i := 0; i < 100; i++ {
		log()
	}
	if len(logged) != 1 || logged[0] != "msg boom\n" {
		t.Fatalf("within the interval: %q, want one line", logged)
	}
	time.Sleep(60 * time.Millisecond) // past the interval
	log()
	if len(logged) != 2 || logged[1] != "msg boom suppressed_since_last_log 99\n" {
		t.Fatalf("after the interval: %q, want a second line counting 99 kept quiet", logged)
	}
}
