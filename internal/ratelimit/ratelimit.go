// Package ratelimit keeps a repeating log line to one per interval,
// counting the ones it kept quiet, for the exporter's every repeating
// error.
package ratelimit

import (
	"sync"
	"time"
)

// Interval is the least time between two log lines of one kind.
const Interval = 10 * time.Second

// Limiter lets a repeating condition be logged at most once per interval,
// counting the occurrences it kept quiet in between. Callers log
// themselves, so that the line's caller is theirs:
//
//	if n, ok := l.Allow(); ok {
//		level.Error(logger).Log(ratelimit.Quieted(n, "msg", "...")...)
//	}
//
// The zero value logs at most once per Interval.
type Limiter struct {
	// Every is the least time between two lines; 0 means Interval.
	Every time.Duration

	mu         sync.Mutex
	next       time.Time
	suppressed int
	// now is the clock, replaceable in tests.
	now func() time.Time
}

// Allow reports whether to log now and, if so, how many occurrences were
// kept quiet since the last line.
func (l *Limiter) Allow() (suppressed int, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if l.now != nil {
		now = l.now()
	}
	if now.Before(l.next) {
		l.suppressed++
		return 0, false
	}
	every := l.Every
	if every == 0 {
		every = Interval
	}
	suppressed, l.suppressed = l.suppressed, 0
	l.next = now.Add(every)
	return suppressed, true
}

// Quieted returns keyvals, with the number of occurrences kept quiet when
// there were any.
func Quieted(suppressed int, keyvals ...any) []any {
	if suppressed > 0 {
		keyvals = append(keyvals, "suppressed_since_last_log", suppressed)
	}
	return keyvals
}
