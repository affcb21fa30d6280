package netlinksrc

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"
)

func TestRateLimitedLogger(t *testing.T) {
	var buf bytes.Buffer
	r := &rateLimitedLogger{logger: log.NewLogfmtLogger(&buf), interval: 50 * time.Millisecond}
	for i := 0; i < 100; i++ {
		r.Log("msg", "boom")
	}
	if got := strings.Count(buf.String(), "boom"); got != 1 {
		t.Fatalf("%d lines within the interval, want 1:\n%s", got, buf.String())
	}
	time.Sleep(60 * time.Millisecond)
	r.Log("msg", "boom")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || lines[1] != "msg=boom suppressed_since_last_log=99" {
		t.Fatalf("after the interval: %q, want a second line counting 99 suppressed", lines)
	}
}
