package monitor

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"regexp"
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/kevent-exporter/kevent_exporter/config"
	"github.com/kevent-exporter/kevent_exporter/internal/sigexit"
	"github.com/kevent-exporter/kevent_exporter/internal/source"
)

const (
	// pollInterval is how often the sources' stats are read for loss,
	// rejected senders and up/down changes: "as it is detected" without a
	// hook in netlinksrc.
	pollInterval = 100 * time.Millisecond
	// downAfter is how long a source may take to attach before it is
	// reported down; opening a socket takes far less, so a source still
	// down by then is waiting for its module or not permitted.
	downAfter = 500 * time.Millisecond
	// bufferBytes is the stdout buffer, flushed once per batch.
	bufferBytes = 64 << 10
)

// monitor prints the events of its sources, and what it detects about
// them, to one writer. Each source's subscription calls its sink on its own
// goroutine; the mutex keeps lines whole and in one order.
type monitor struct {
	// name is the command's name, which messages start with.
	name   string
	format Format
	count  uint64
	start  time.Time
	// finished is closed when the monitor stops printing: --count reached
	// or the writer failed.
	finished chan struct{}
	// eventRE and objectRE, when set, choose the events printed.
	eventRE, objectRE *regexp.Regexp

	mu sync.Mutex
	w  *bufio.Writer
	// line is scratch memory for the line being built.
	line     []byte
	printed  uint64
	stopped  bool
	writeErr error
}

// newMonitor returns a monitor called name printing to w in format, which
// stops after count events unless count is 0.
func newMonitor(name string, w io.Writer, format Format, count uint64) *monitor {
	return &monitor{
		name:     name,
		format:   format,
		count:    count,
		start:    time.Now(),
		finished: make(chan struct{}),
		w:        bufio.NewWriterSize(w, bufferBytes),
	}
}

// run monitors sources until a signal on sig, the timeout, or --count, and
// returns the exit status. The summary and the reason for a failure go to
// stderr.
func (m *monitor) run(sources []config.Source, logger log.Logger, sig <-chan os.Signal, timeout time.Duration, stderr io.Writer) int {
	sinks := make([]*sink, 0, len(sources))
	for _, sc := range sources {
		// Drops as dropwatch shows them: with the interface.
		sc.InputInterface = sc.InputInterface || sc.Decoder == "drop_monitor"
		d, err := source.NewDecoder(sc)
		if err != nil {
			fmt.Fprintf(stderr, "%s: source %q: %v\n", m.name, sc.Name, err)
			return ExitError
		}
		sinks = append(sinks, newSink(m, sc, d, logger))
	}

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var wg sync.WaitGroup
	for _, s := range sinks {
		wg.Go(func() { s.final = s.sub.Run(ctx, s) })
	}

	// A first signal stops the run; a second one exits at once, without
	// waiting for the sources or for a stdout that nobody reads.
	interrupted := make(chan struct{})
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case s := <-sig:
			close(interrupted)
			level.Info(logger).Log("msg", "Stopping: the sources read what is queued; a second signal exits at once", "signal", s)
		case <-done:
			return
		}
		select {
		case s := <-sig:
			fmt.Fprintf(stderr, "%s: %v again: exiting without waiting for the sources to stop\n", m.name, s)
			os.Exit(sigexit.Status(s, ExitError))
		case <-done:
		}
	}()

	var timedOut <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		timedOut = t.C
	}
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	timeoutPassed := false
loop:
	for {
		select {
		case <-tick.C:
			for _, s := range sinks {
				s.poll(s.sub.Stats(), false)
			}
			if timeoutPassed && m.settled(sinks) {
				break loop
			}
		case <-interrupted:
			break loop
		case <-timedOut:
			// However short the timeout, the run says whether the
			// sources open: it goes on until each has attached or
			// been reported down.
			timeoutPassed, timedOut = true, nil
			for _, s := range sinks {
				s.poll(s.sub.Stats(), false)
			}
			if m.settled(sinks) {
				break loop
			}
		case <-m.finished:
			break loop
		}
	}
	// A source that attached since the last tick was opened.
	for _, s := range sinks {
		s.poll(s.sub.Stats(), false)
	}

	// The subscriptions leave their groups and account for what is queued
	// (printed, unless the monitor stopped printing), which takes a moment
	// under a flood.
	stop()
	wg.Wait()
	for _, s := range sinks {
		s.poll(s.final, true)
	}

	m.mu.Lock()
	m.flushLocked()
	printed, writeErr := m.printed, m.writeErr
	m.mu.Unlock()

	opened := 0
	for _, s := range sinks {
		fmt.Fprintln(stderr, s.summary())
		if s.attached.Load() {
			opened++
		}
	}
	switch {
	case writeErr != nil:
		fmt.Fprintf(stderr, "%s: writing the output: %v\n", m.name, writeErr)
		return ExitError
	case opened == 0 && !m.settled(sinks):
		fmt.Fprintf(stderr, "%s: no source was opened: the run was stopped %v after the start, while they were still opening\n",
			m.name, time.Since(m.start).Round(time.Millisecond))
		return ExitError
	case opened == 0:
		fmt.Fprintf(stderr, "%s: no source could be opened: none attached during the run (the log above says why)\n", m.name)
		return ExitError
	case timeoutPassed && m.count > 0 && printed < m.count:
		fmt.Fprintf(stderr, "%s: --timeout %v passed after %d of --count %d events\n", m.name, timeout, printed, m.count)
		return ExitCountNotReached
	}
	return ExitOK
}

// settled reports whether each of sinks has attached or been reported
// down.
func (m *monitor) settled(sinks []*sink) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, s := range sinks {
		if !s.attached.Load() && !s.shownDown {
			return false
		}
	}
	return true
}

// writeLocked writes a line, or several that belong together, unless the
// monitor stopped printing. It keeps b's memory for the next line.
func (m *monitor) writeLocked(b []byte) {
	m.line = b[:0]
	if m.stopped {
		return
	}
	if _, err := m.w.Write(b); err != nil {
		m.failLocked(err)
	}
}

// flushLocked writes out what is buffered.
func (m *monitor) flushLocked() {
	if m.writeErr != nil {
		return
	}
	if err := m.w.Flush(); err != nil {
		m.failLocked(err)
	}
}

func (m *monitor) failLocked(err error) {
	if m.writeErr == nil {
		m.writeErr = err
	}
	m.stopLocked()
}

// stopLocked makes the monitor print nothing more, and ends its run.
func (m *monitor) stopLocked() {
	if !m.stopped {
		m.stopped = true
		close(m.finished)
	}
}
