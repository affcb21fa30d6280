// Package monitor is the exporter's monitor command: it prints the events
// of the exporter's sources as they arrive, as udevadm monitor does
// uevents, with the loss, decode errors and source state it detects. It
// receives and decodes exactly as the exporter does (internal/source,
// netlinksrc, decoder); only the sink differs. Main runs the command; an
// Encoder formats its lines.
package monitor

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/kevent-exporter/kevent_exporter/config"
	"github.com/kevent-exporter/kevent_exporter/internal/logging"
)

// The exit statuses of Main, as grep's: 0 done, 1 not found (--count not
// reached before --timeout), 2 trouble.
const (
	ExitOK              = 0
	ExitCountNotReached = 1
	// ExitError is for bad flags or configuration, no source that could be
	// opened, or a failed stdout.
	ExitError = 2
)

// Main runs the monitor with its command-line arguments, those after
// "monitor", and returns its exit status. It prints the events and notices
// to stdout; its log, its summary and the reason for a failure go to
// stderr. program is the program's name, which messages and help start
// with. Main runs until --count or --timeout, or until SIGINT or SIGTERM;
// a second signal exits the process at once with 128 + the signal's
// number, without waiting for a stdout that nobody reads.
func Main(program string, args []string, stdout, stderr io.Writer) int {
	name := program + " monitor"
	f, err := parseFlags(name, args, stderr)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return ExitError
	}
	logger, _, err := logging.New(stderr, f.logLevel, f.logFormat)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return ExitError
	}

	// Caught from the start, so that an interrupt while a large file loads
	// still ends cleanly: the load goes on in the background, its result
	// dropped.
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sig)
	type loaded struct {
		cfg *config.Config
		err error
	}
	load := make(chan loaded, 1)
	go func() {
		cfg, err := f.config()
		load <- loaded{cfg, err}
	}()
	var cfg *config.Config
	select {
	case <-sig:
		return ExitOK
	case l := <-load:
		if l.err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", name, l.err)
			return ExitError
		}
		cfg = l.cfg
	}

	m := newMonitor(name, stdout, f.format(), f.count)
	m.eventRE, m.objectRE = f.eventRE, f.objectRE
	return m.run(cfg.Sources, logger, sig, f.timeout, stderr)
}
