package netlinksrc

import (
	"sync"
	"time"
)

// rateLimiter lets a repeating condition be logged at most once per
// interval, counting the occurrences it kept quiet in between. Callers log
// themselves, so that the line's caller is theirs:
//
//	if n, ok := s.openErrors.allow(); ok {
//		level.Error(s.logger).Log(quieted(n, "msg", "...")...)
//	}
type rateLimiter struct {
	interval time.Duration

	mu         sync.Mutex
	last       time.Time
	suppressed int
}

// allow reports whether to log now and, if so, how many occurrences were
// kept quiet since the last line.
func (r *rateLimiter) allow() (suppressed int, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	if !r.last.IsZero() && now.Sub(r.last) < r.interval {
		r.suppressed++
		return 0, false
	}
	suppressed = r.suppressed
	r.last, r.suppressed = now, 0
	return suppressed, true
}

// quieted returns keyvals, with the number of occurrences kept quiet when
// there were any.
func quieted(suppressed int, keyvals ...any) []any {
	if suppressed > 0 {
		keyvals = append(keyvals, "suppressed_since_last_log", suppressed)
	}
	return keyvals
}
