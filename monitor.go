package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/alecthomas/kingpin/v2"
	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"go.yaml.in/yaml/v3"

	"github.com/kevent-exporter/kevent_exporter/config"
	"github.com/kevent-exporter/kevent_exporter/decoder"
	"github.com/kevent-exporter/kevent_exporter/internal/logging"
	"github.com/kevent-exporter/kevent_exporter/netlinksrc"
)

// The monitor's exit statuses, as grep's: 0 done, 1 not found (--count
// not reached before --timeout), 2 trouble.
const (
	monitorExitOK              = 0
	monitorExitCountNotReached = 1
	// monitorExitError: bad flags or configuration, no source could be
	// opened, or stdout failed.
	monitorExitError = 2
)

const (
	// monitorPollInterval is how often the sources' stats are read for
	// loss, rejected senders and up/down changes: "as it is detected"
	// without a hook in netlinksrc.
	monitorPollInterval = 100 * time.Millisecond
	// monitorDownAfter is how long a source may take to attach before it
	// is reported down; opening a socket takes far less, so a source still
	// down by then is waiting for its module or not permitted.
	monitorDownAfter = 500 * time.Millisecond
	// monitorHexDumpBytes bounds the hex dump of a malformed datagram.
	monitorHexDumpBytes = 256
	// monitorBufferBytes is the stdout buffer, flushed once per batch.
	monitorBufferBytes = 64 << 10
	// cmdlineSourceName names the source given by --protocol.
	cmdlineSourceName = "cmdline"
	// textTimeLayout is RFC 3339 with a fixed-width fraction, so that
	// columns line up.
	textTimeLayout = "2006-01-02T15:04:05.000000Z07:00"
)

// monitorFlags are the flags of kevent_exporter monitor.
type monitorFlags struct {
	configFile string
	sources    []string

	// One source on the command line, in the config's terms.
	protocol string
	family   string
	groups   []string
	decoder  string
	senders  string

	// event and object narrow the output to the events whose name and
	// object they match.
	event, object string

	output    string
	count     uint64
	timeout   time.Duration
	logLevel  string
	logFormat string
}

// runMonitor is kevent_exporter monitor: it prints the events of the
// exporter's sources as they arrive, as udevadm monitor does uevents, with
// the loss, decode errors and source state it detects. It receives and
// decodes exactly as the exporter does (netlinksrc, decoder); only the sink
// differs.
func runMonitor(args []string) int {
	app := kingpin.New(exporterName+" monitor", "Prints the events of the exporter's sources as they arrive, one line each, "+
		"with the loss, decode errors and source state it detects. Sources are the configuration's, all of them or those "+
		"named with --source, or one described by --protocol or --family, --groups and --decoder. Exit status: 0 done, "+
		"1 --timeout passed before --count events, 2 bad flags or configuration, no source could be opened, or stdout failed.")
	var f monitorFlags
	app.Flag("config.file", "YAML configuration file; without it the embedded default is used.").StringVar(&f.configFile)
	app.Flag("source", "Monitor the configured source NAME; repeat for more. Default: all of them.").PlaceHolder("NAME").StringsVar(&f.sources)
	app.Flag("protocol", "Monitor one source on this netlink protocol (a number 0-31 or a name, as in the config) instead of the configuration's.").StringVar(&f.protocol)
	app.Flag("family", "Monitor one source on this generic netlink family (a name, as in the config) instead of the configuration's.").StringVar(&f.family)
	app.Flag("groups", "The command-line source's multicast groups: numbered from 1 for a protocol, names for a family; comma-separated or repeated.").PlaceHolder("1,2").StringsVar(&f.groups)
	app.Flag("decoder", "The command-line source's decoder: "+strings.Join(decoder.Names, ", ")+".").StringVar(&f.decoder)
	app.Flag("senders", "Whose datagrams the command-line source decodes: "+strings.Join(config.SendersValues, ", ")+"; default: the protocol's usual senders.").StringVar(&f.senders)
	app.Flag("event", "Print only the events whose name this RE2 regular expression matches, whole: e.g. 'link/(up|down)'. Notices are printed all the same.").PlaceHolder("REGEX").StringVar(&f.event)
	app.Flag("object", "Print only the events whose object this RE2 regular expression matches, whole: e.g. 'eth0|bond.*'. The sources' objects filters, which name series on /metrics, do not narrow the monitor.").PlaceHolder("REGEX").StringVar(&f.object)
	app.Flag("output", "Output format: text (for people) or json (one object per line).").Default("text").EnumVar(&f.output, "text", "json")
	app.Flag("count", "Exit after printing N events; 0: no limit.").PlaceHolder("N").Uint64Var(&f.count)
	app.Flag("timeout", "Exit after this long, e.g. 10s; 0: no limit.").PlaceHolder("DURATION").DurationVar(&f.timeout)
	app.Flag("log.level", "Only log messages with this severity or above: debug, info, warn, error.").Default("info").EnumVar(&f.logLevel, "debug", "info", "warn", "error")
	app.Flag("log.format", "Log format: logfmt or json.").Default("logfmt").EnumVar(&f.logFormat, "logfmt", "json")
	app.HelpFlag.Short('h')
	if _, err := app.Parse(args); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return monitorExitError
	}
	if f.timeout < 0 {
		fmt.Fprintln(os.Stderr, "--timeout must not be negative")
		return monitorExitError
	}
	eventRE, objectRE, err := monitorFilters(f.event, f.object)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return monitorExitError
	}
	logger, _, err := logging.New(os.Stderr, f.logLevel, f.logFormat)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return monitorExitError
	}

	// Caught from the start, so that an interrupt while a large file
	// loads still ends cleanly.
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sig)
	loading, interrupt := context.WithCancel(context.Background())
	var interrupted atomic.Bool
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		select {
		case <-sig:
			interrupted.Store(true)
			interrupt()
		case <-loading.Done():
		}
	}()
	sources, err := loadContext(loading, func() (*config.Config, error) { return monitorSources(&f) })
	interrupt()
	<-watched
	if interrupted.Load() {
		return monitorExitOK
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s monitor: %v\n", exporterName, err)
		return monitorExitError
	}

	m := newMonitor(os.Stdout, f.output == "json", f.count)
	m.eventRE, m.objectRE = eventRE, objectRE
	return m.run(sources.Sources, logger, sig, f.timeout, os.Stderr)
}

// monitorFilters compiles --event and --object, nil where not given.
func monitorFilters(event, object string) (eventRE, objectRE *regexp.Regexp, err error) {
	if event != "" {
		if eventRE, err = config.WholeMatch(event); err != nil {
			return nil, nil, fmt.Errorf("--event: %v", err)
		}
	}
	if object != "" {
		if objectRE, err = config.WholeMatch(object); err != nil {
			return nil, nil, fmt.Errorf("--object: %v", err)
		}
	}
	return eventRE, objectRE, nil
}

// monitorSources returns the sources f asks for, checked as the exporter
// checks its configuration.
func monitorSources(f *monitorFlags) (*config.Config, error) {
	if f.protocol != "" && f.family != "" {
		return nil, errors.New("--protocol and --family both name the command-line source's netlink: give one")
	}
	if f.protocol == "" && f.family == "" {
		if len(f.groups) > 0 || f.decoder != "" || f.senders != "" {
			return nil, errors.New("--groups, --decoder and --senders describe a command-line source: give --protocol or --family too")
		}
		cfg := config.Default()
		if f.configFile != "" {
			var err error
			if cfg, err = config.Load(f.configFile); err != nil {
				return nil, err
			}
		}
		return selectSources(cfg, f.sources)
	}
	flag := "--protocol"
	if f.family != "" {
		flag = "--family"
	}
	if f.configFile != "" || len(f.sources) > 0 {
		return nil, errors.New(flag + " describes a source of its own: it cannot be combined with --config.file or --source")
	}
	if len(f.groups) == 0 || f.decoder == "" {
		return nil, errors.New(flag + " needs --groups and --decoder")
	}
	return cmdlineSource(f)
}

// selectSources keeps the sources of cfg named in names, in the order of
// names; no names keeps them all.
func selectSources(cfg *config.Config, names []string) (*config.Config, error) {
	if len(names) == 0 {
		return cfg, nil
	}
	var out config.Config
	for _, n := range names {
		i := slices.IndexFunc(cfg.Sources, func(s config.Source) bool { return s.Name == n })
		if i < 0 {
			known := make([]string, len(cfg.Sources))
			for j, s := range cfg.Sources {
				known[j] = s.Name
			}
			return nil, fmt.Errorf("no source named %q in the configuration (it has %s)", n, strings.Join(known, ", "))
		}
		if !slices.ContainsFunc(out.Sources, func(s config.Source) bool { return s.Name == n }) {
			out.Sources = append(out.Sources, cfg.Sources[i])
		}
	}
	return &out, nil
}

// cmdlineSource makes the source of --protocol, --groups, --decoder and
// --senders. It is written as a configuration and parsed, so that the
// flags mean what the config's keys mean and are checked the same way.
func cmdlineSource(f *monitorFlags) (*config.Config, error) {
	src := map[string]any{"name": cmdlineSourceName, "decoder": f.decoder}
	if f.family != "" {
		// A family's groups are names.
		src["family"] = f.family
		var names []string
		for _, list := range f.groups {
			for g := range strings.SplitSeq(list, ",") {
				names = append(names, strings.TrimSpace(g))
			}
		}
		src["groups"] = names
	} else {
		// A number must reach the config as a YAML integer: a string "2"
		// would be a protocol name.
		if n, err := strconv.Atoi(f.protocol); err == nil {
			src["protocol"] = n
		} else {
			src["protocol"] = f.protocol
		}
		var groups []uint32
		for _, list := range f.groups {
			for g := range strings.SplitSeq(list, ",") {
				n, err := strconv.ParseUint(strings.TrimSpace(g), 10, 32)
				if err != nil {
					return nil, fmt.Errorf("--groups: %q is not a multicast group number", g)
				}
				groups = append(groups, uint32(n))
			}
		}
		src["groups"] = groups
	}
	if f.senders != "" {
		src["senders"] = f.senders
	}
	b, err := yaml.Marshal(map[string]any{"sources": []any{src}})
	if err != nil {
		return nil, err
	}
	cfg, err := config.Parse(b)
	if err != nil {
		// The lines are those of the YAML made here, not the user's.
		return nil, fmt.Errorf("command-line source: %s", yamlLine.ReplaceAllString(err.Error(), ""))
	}
	return cfg, nil
}

// yamlLine matches the line numbers in configuration errors.
var yamlLine = regexp.MustCompile(`\bline \d+: `)

// monitor prints the events of its sources, and what it detects about
// them, to one writer. Each source's subscription calls its sink on its own
// goroutine; the mutex keeps lines whole and in one order.
type monitor struct {
	json  bool
	count uint64
	start time.Time
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

func newMonitor(w io.Writer, json bool, count uint64) *monitor {
	return &monitor{
		json:     json,
		count:    count,
		start:    time.Now(),
		finished: make(chan struct{}),
		w:        bufio.NewWriterSize(w, monitorBufferBytes),
	}
}

// run monitors sources until a signal on sig, the timeout, or --count, and
// returns the exit status. The summary and the reason for a failure go to
// stderr.
func (m *monitor) run(sources []config.Source, logger log.Logger, sig <-chan os.Signal, timeout time.Duration, stderr io.Writer) int {
	srcs := make([]*monitorSource, 0, len(sources))
	for _, sc := range sources {
		d, err := newDecoder(sc)
		if err != nil {
			fmt.Fprintf(stderr, "%s monitor: source %q: %v\n", exporterName, sc.Name, err)
			return monitorExitError
		}
		srcs = append(srcs, newMonitorSource(m, sc, d, logger))
	}

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var wg sync.WaitGroup
	for _, s := range srcs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.final = s.sub.Run(ctx, s)
		}()
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
			fmt.Fprintf(stderr, "%s monitor: %v again: exiting without waiting for the sources to stop\n", exporterName, s)
			status := monitorExitError
			if n, ok := s.(syscall.Signal); ok {
				status = 128 + int(n)
			}
			os.Exit(status)
		case <-done:
		}
	}()

	var timedOut <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		timedOut = t.C
	}
	tick := time.NewTicker(monitorPollInterval)
	defer tick.Stop()
	timeoutPassed := false
loop:
	for {
		select {
		case <-tick.C:
			for _, s := range srcs {
				s.poll(s.sub.Stats(), false)
			}
		case <-interrupted:
			break loop
		case <-timedOut:
			timeoutPassed = true
			break loop
		case <-m.finished:
			break loop
		}
	}
	// A source that attached since the last tick was opened.
	for _, s := range srcs {
		s.poll(s.sub.Stats(), false)
	}

	// The subscriptions leave their groups and account for what is queued
	// (printed, unless the monitor stopped printing), which takes a moment
	// under a flood.
	stop()
	wg.Wait()
	for _, s := range srcs {
		s.poll(s.final, true)
	}

	m.mu.Lock()
	m.flushLocked()
	printed, writeErr := m.printed, m.writeErr
	m.mu.Unlock()

	opened := 0
	for _, s := range srcs {
		fmt.Fprintln(stderr, s.summary())
		if s.attached.Load() {
			opened++
		}
	}
	switch {
	case writeErr != nil:
		fmt.Fprintf(stderr, "%s monitor: writing the output: %v\n", exporterName, writeErr)
		return monitorExitError
	case opened == 0:
		fmt.Fprintf(stderr, "%s monitor: no source could be opened: none attached during the run (the log above says why)\n", exporterName)
		return monitorExitError
	case timeoutPassed && m.count > 0 && printed < m.count:
		fmt.Fprintf(stderr, "%s monitor: --timeout %v passed after %d of --count %d events\n", exporterName, timeout, printed, m.count)
		return monitorExitCountNotReached
	}
	return monitorExitOK
}

// monitorSource is one monitored source: the sink of its subscription.
type monitorSource struct {
	m   *monitor
	cfg config.Source
	dec decoder.Decoder
	sub *netlinksrc.Subscription
	// textName and jsonName are the source as each format prints it.
	textName, jsonName []byte

	// attached is set once the source has been seen up.
	attached atomic.Bool
	// final is the subscription's last stats, set when Run returns.
	final netlinksrc.Stats

	// Guarded by m.mu.
	events, decodeErrors uint64
	seq                  seqState
	shownUp, shownDown   bool
	last                 netlinksrc.Stats
}

func newMonitorSource(m *monitor, sc config.Source, d decoder.Decoder, logger log.Logger) *monitorSource {
	return &monitorSource{
		m: m, cfg: sc, dec: d,
		sub:      newSubscription(sc, d, logger),
		textName: appendTextWord(nil, []byte(sc.Name)),
		jsonName: appendJSONString(nil, []byte(sc.Name)),
	}
}

// Record implements netlinksrc.Sink: it prints a batch of events and
// flushes them at once, one write for the batch.
func (s *monitorSource) Record(events []decoder.Event, _, decodeErrors int) {
	s.attached.Store(true)
	m := s.m
	m.mu.Lock()
	defer m.mu.Unlock()
	s.events += uint64(len(events))
	s.decodeErrors += uint64(decodeErrors)
	if m.stopped {
		return
	}
	// One time for the batch: its datagrams were read at once.
	now := time.Now()
	for i := range events {
		ev := &events[i]
		if ev.HasSeq {
			s.checkSeq(now, ev)
		}
		if (m.eventRE != nil && !m.eventRE.Match(ev.Name)) || (m.objectRE != nil && !m.objectRE.Match(ev.Object)) {
			continue
		}
		m.writeLocked(m.appendEvent(m.line[:0], now, s, ev))
		m.printed++
		if m.count > 0 && m.printed >= m.count {
			m.flushLocked()
			m.stopLocked()
			return
		}
	}
	m.flushLocked()
}

// Malformed implements netlinksrc.MalformedSink: it prints why the datagram
// did not decode, and its first bytes. Record follows at once and flushes.
func (s *monitorSource) Malformed(datagram []byte, n, bad int) {
	var problems []decoder.Problem
	switch {
	case datagram == nil:
		problems = []decoder.Problem{{Reason: "larger than the receive buffer's slot: dropped unread"}}
	default:
		// Off the lock: diagnosing costs what decoding does.
		problems = decoder.Diagnose(s.dec, datagram)
		if len(problems) == 0 {
			problems = []decoder.Problem{{Reason: "malformed for the " + s.cfg.Decoder + " decoder, which Diagnose does not explain"}}
		}
	}
	m := s.m
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stopped {
		return
	}
	b := m.notice(m.line[:0], time.Now(), s, "decode_error")
	b = m.field(b, "bytes", uint64(n))
	b = m.field(b, "malformed", uint64(bad))
	dump := datagram[:min(len(datagram), monitorHexDumpBytes)]
	if m.json {
		b = append(b, `,"problems":[`...)
		for i, p := range problems {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"offset":`...)
			b = strconv.AppendInt(b, int64(p.Offset), 10)
			b = append(b, `,"reason":`...)
			b = appendJSONString(b, []byte(p.Reason))
			b = append(b, '}')
		}
		b = append(b, ']')
		if datagram != nil {
			b = append(b, `,"hex":"`...)
			b = hex.AppendEncode(b, dump)
			b = append(b, '"')
		}
		b = append(b, "}\n"...)
	} else {
		b = append(b, '\n')
		for _, p := range problems {
			b = append(b, "  "...)
			b = append(b, p.String()...)
			b = append(b, '\n')
		}
		for l := range strings.Lines(hex.Dump(dump)) {
			b = append(append(b, "  "...), l...)
		}
		if len(dump) < len(datagram) {
			b = fmt.Appendf(b, "  (the first %d of %d bytes)\n", len(dump), len(datagram))
		}
	}
	m.writeLocked(b)
}

// seqState follows a source's kevent sequence numbers to print their
// gaps: numbers that never arrived within one sender instance.
type seqState struct {
	started  bool
	instance uint64
	highest  uint64
}

// checkSeq prints what ev's sequence number says about loss before ev is
// printed. A new instance (the module was reloaded) restarts numbering: it
// is a reset, not a gap.
func (s *monitorSource) checkSeq(now time.Time, ev *decoder.Event) {
	st, m := &s.seq, s.m
	switch {
	case !st.started:
		st.started, st.instance, st.highest = true, ev.Instance, ev.Seq
	case ev.Instance != st.instance:
		b := m.notice(m.line[:0], now, s, "reset")
		b = m.field(b, "instance", ev.Instance)
		b = m.field(b, "seq", ev.Seq)
		b = m.field(b, "previous_instance", st.instance)
		b = m.field(b, "previous_seq", st.highest)
		m.writeLocked(m.endNotice(b))
		st.instance, st.highest = ev.Instance, ev.Seq
	case ev.Seq > st.highest+1:
		b := m.notice(m.line[:0], now, s, "gap")
		b = m.field(b, "instance", ev.Instance)
		b = m.field(b, "missing", ev.Seq-st.highest-1)
		b = m.field(b, "last_seq", st.highest)
		b = m.field(b, "seq", ev.Seq)
		m.writeLocked(m.endNotice(b))
		st.highest = ev.Seq
	case ev.Seq <= st.highest:
		// Late into a gap already printed, or a copy.
		b := m.notice(m.line[:0], now, s, "out_of_order")
		b = m.field(b, "instance", ev.Instance)
		b = m.field(b, "seq", ev.Seq)
		b = m.field(b, "highest_seq", st.highest)
		m.writeLocked(m.endNotice(b))
	default:
		st.highest = ev.Seq
	}
}

// poll prints what changed in the source's stats since the last poll: it
// attached or went down, the kernel dropped datagrams, senders were
// rejected. final is the subscription's last stats, after it stopped.
func (s *monitorSource) poll(st netlinksrc.Stats, final bool) {
	if st.Up || st.Datagrams > 0 {
		s.attached.Store(true)
	}
	m := s.m
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	if !final {
		switch {
		case st.Up && !s.shownUp:
			b := s.appendWhere(m.notice(m.line[:0], now, s, "up"))
			b = m.field(b, "groups_joined", uint64(st.GroupsJoined))
			b = m.field(b, "receive_buffer_bytes", uint64(st.ReceiveBufferBytes))
			m.writeLocked(m.endNotice(b))
			s.shownUp, s.shownDown = true, false
		case !st.Up && !s.shownDown && (s.shownUp || now.Sub(m.start) >= monitorDownAfter):
			b := s.appendWhere(m.notice(m.line[:0], now, s, "down"))
			m.writeLocked(m.endNotice(b))
			s.shownUp, s.shownDown = false, true
		}
	}
	if st.Lost > s.last.Lost || st.Overruns > s.last.Overruns {
		b := m.notice(m.line[:0], now, s, "lost")
		b = m.field(b, "lost", st.Lost-s.last.Lost)
		b = m.field(b, "lost_total", st.Lost)
		b = m.field(b, "overruns_total", st.Overruns)
		m.writeLocked(m.endNotice(b))
	}
	if st.Rejected != s.last.Rejected {
		b := m.notice(m.line[:0], now, s, "rejected")
		var total uint64
		for i, n := range st.Rejected {
			if d := n - s.last.Rejected[i]; d > 0 {
				b = m.field(b, netlinksrc.RejectReasons[i], d)
			}
			total += n
		}
		b = m.field(b, "rejected_total", total)
		m.writeLocked(m.endNotice(b))
	}
	s.last = st
	m.flushLocked()
}

// appendWhere appends the fields that say what the source listens to: its
// protocol and groups, or its family and the names of its groups.
func (s *monitorSource) appendWhere(b []byte) []byte {
	if s.cfg.Family != "" {
		b = s.m.field(b, "family", s.cfg.Family)
		return s.m.field(b, "groups", s.cfg.GroupNames)
	}
	b = s.m.field(b, "protocol", uint64(s.cfg.Protocol))
	return s.m.field(b, "groups", s.cfg.Groups)
}

// summary is the source's line of the summary printed at exit.
func (s *monitorSource) summary() string {
	s.m.mu.Lock()
	events, decodeErrors := s.events, s.decodeErrors
	s.m.mu.Unlock()
	var rejected uint64
	for _, n := range s.final.Rejected {
		rejected += n
	}
	return fmt.Sprintf("summary source=%s events=%d lost=%d overruns=%d decode_errors=%d rejected=%d attached=%t",
		s.cfg.Name, events, s.final.Lost, s.final.Overruns, decodeErrors, rejected, s.attached.Load())
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

// appendEvent appends ev's line. Text:
//
//	TIME SOURCE EVENT [object=OBJECT] [value=VALUE] payload="PAYLOAD" [seq=SEQ instance=INSTANCE]
//
// JSON: {"time", "source", "event", "object", "value", "payload",
// "payload_base64", "seq", "instance"}, value, payload_base64, seq and
// instance only when the event has them.
func (m *monitor) appendEvent(b []byte, now time.Time, s *monitorSource, ev *decoder.Event) []byte {
	if m.json {
		b = append(b, `{"time":"`...)
		b = now.UTC().AppendFormat(b, time.RFC3339Nano)
		b = append(b, `","source":`...)
		b = append(b, s.jsonName...)
		b = append(b, `,"event":`...)
		b = appendJSONString(b, ev.Name)
		b = append(b, `,"object":`...)
		b = appendJSONString(b, ev.Object)
		if ev.HasValue {
			b = append(b, `,"value":`...)
			b = appendJSONNumber(b, ev.Value)
		}
		b = append(b, `,"payload":`...)
		b = appendJSONString(b, ev.Payload)
		if !utf8.Valid(ev.Payload) {
			// payload has U+FFFD for the bytes that are not UTF-8;
			// this has them all.
			b = append(b, `,"payload_base64":"`...)
			b = base64.StdEncoding.AppendEncode(b, ev.Payload)
			b = append(b, '"')
		}
		if ev.HasSeq {
			b = append(b, `,"seq":`...)
			b = strconv.AppendUint(b, ev.Seq, 10)
			b = append(b, `,"instance":`...)
			b = strconv.AppendUint(b, ev.Instance, 10)
		}
		return append(b, "}\n"...)
	}
	b = now.AppendFormat(b, textTimeLayout)
	b = append(b, ' ')
	b = append(b, s.textName...)
	b = append(b, ' ')
	b = appendTextWord(b, ev.Name)
	if len(ev.Object) > 0 {
		b = append(b, " object="...)
		b = appendTextWord(b, ev.Object)
	}
	if ev.HasValue {
		b = append(b, " value="...)
		b = appendNumber(b, ev.Value)
	}
	b = append(b, " payload="...)
	b = strconv.AppendQuote(b, string(ev.Payload))
	if ev.HasSeq {
		b = append(b, " seq="...)
		b = strconv.AppendUint(b, ev.Seq, 10)
		b = append(b, " instance="...)
		b = strconv.AppendUint(b, ev.Instance, 10)
	}
	return append(b, '\n')
}

// notice starts a line that is not an event: "TIME SOURCE !KIND", or a JSON
// object with a "notice" key where events have "event". Event names that
// start with "!" are quoted in text, so the two cannot be confused.
func (m *monitor) notice(b []byte, now time.Time, s *monitorSource, kind string) []byte {
	if m.json {
		b = append(b, `{"time":"`...)
		b = now.UTC().AppendFormat(b, time.RFC3339Nano)
		b = append(b, `","source":`...)
		b = append(b, s.jsonName...)
		b = append(b, `,"notice":"`...)
		b = append(b, kind...)
		return append(b, '"')
	}
	b = now.AppendFormat(b, textTimeLayout)
	b = append(b, ' ')
	b = append(b, s.textName...)
	b = append(b, " !"...)
	return append(b, kind...)
}

// field appends a notice's field: key=value in text, "key":value in JSON.
// v is a uint64, a string, or a list of groups (numbers or names); a list
// is comma-separated in text.
func (m *monitor) field(b []byte, key string, v any) []byte {
	if m.json {
		b = append(b, `,"`...)
		b = append(b, key...)
		b = append(b, `":`...)
	} else {
		b = append(b, ' ')
		b = append(b, key...)
		b = append(b, '=')
	}
	switch v := v.(type) {
	case uint64:
		b = strconv.AppendUint(b, v, 10)
	case string:
		b = m.appendString(b, v)
	case []string:
		if m.json {
			b = append(b, '[')
		}
		for i, g := range v {
			if i > 0 {
				b = append(b, ',')
			}
			b = m.appendString(b, g)
		}
		if m.json {
			b = append(b, ']')
		}
	case []uint32:
		if m.json {
			b = append(b, '[')
		}
		for i, g := range v {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendUint(b, uint64(g), 10)
		}
		if m.json {
			b = append(b, ']')
		}
	default:
		panic(fmt.Sprintf("monitor: field %s of type %T", key, v))
	}
	return b
}

// appendString appends a notice's text value, quoted as the format needs.
func (m *monitor) appendString(b []byte, s string) []byte {
	if m.json {
		return appendJSONString(b, []byte(s))
	}
	return appendTextWord(b, []byte(s))
}

// endNotice ends a notice's line.
func (m *monitor) endNotice(b []byte) []byte {
	if m.json {
		return append(b, "}\n"...)
	}
	return append(b, '\n')
}

// appendTextWord appends s bare when it is printable ASCII without spaces,
// quotes, backslashes or '=' and does not start with '!' (which marks
// notices), else quoted as strconv.Quote does: a text line splits at
// spaces unambiguously.
func appendTextWord(b, s []byte) []byte {
	bare := len(s) > 0 && s[0] != '!'
	for _, c := range s {
		if c <= ' ' || c >= 0x7f || c == '"' || c == '\\' || c == '=' {
			bare = false
			break
		}
	}
	if bare {
		return append(b, s...)
	}
	return strconv.AppendQuote(b, string(s))
}

// appendNumber appends v as Go's JSON encoder formats numbers: plain
// decimals, exponents only for the very small and very large.
func appendNumber(b []byte, v float64) []byte {
	if abs := math.Abs(v); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		return strconv.AppendFloat(b, v, 'e', -1, 64)
	}
	return strconv.AppendFloat(b, v, 'f', -1, 64)
}

// appendJSONNumber appends v as a JSON number, or as a string for the
// values JSON has no number for (no decoder makes them today).
func appendJSONNumber(b []byte, v float64) []byte {
	if math.IsInf(v, 0) || math.IsNaN(v) {
		return strconv.AppendQuote(b, strconv.FormatFloat(v, 'g', -1, 64))
	}
	return appendNumber(b, v)
}

// appendJSONString appends s as a JSON string. Bytes that are not UTF-8
// become U+FFFD, as encoding/json does; unlike it, '<', '>' and '&' stay
// as they are. Control characters and DEL are escaped.
func appendJSONString(b, s []byte) []byte {
	const hexDigits = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, `\n`...)
			case c == '\r':
				b = append(b, `\r`...)
			case c == '\t':
				b = append(b, `\t`...)
			case c < 0x20 || c == 0x7f:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			// Valid JSON, but line breaks to JavaScript.
			b = fmt.Appendf(b, `\u%04x`, r)
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
