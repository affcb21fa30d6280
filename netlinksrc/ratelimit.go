package netlinksrc

import (
	"sync"
	"time"

	"github.com/go-kit/log"
)

// rateLimitedLogger logs a repeating condition at most once per interval,
// saying how many occurrences it kept quiet about in between.
type rateLimitedLogger struct {
	logger   log.Logger
	interval time.Duration

	mu         sync.Mutex
	last       time.Time
	suppressed int
}

// Log logs keyvals unless it logged less than interval ago.
func (r *rateLimitedLogger) Log(keyvals ...any) {
	r.mu.Lock()
	now := time.Now()
	if !r.last.IsZero() && now.Sub(r.last) < r.interval {
		r.suppressed++
		r.mu.Unlock()
		return
	}
	suppressed := r.suppressed
	r.last, r.suppressed = now, 0
	r.mu.Unlock()
	if suppressed > 0 {
		keyvals = append(keyvals, "suppressed_since_last_log", suppressed)
	}
	_ = r.logger.Log(keyvals...)
}
