// Package logging builds the exporter's loggers: a go-kit logger for its own
// code and a log/slog logger for libraries such as the exporter toolkit. Both
// write the same lines, in logfmt or JSON: the same keys in the same order
// (level, ts, caller, msg, then the rest, as go-kit's level.Info(logger).Log
// puts them), the same timestamp format and the same level words.
//
// The slog logger goes through github.com/tjhop/slog-gokit, which on its own
// writes "time" instead of "ts", an unformatted time.Time, and slog.Values
// that go-kit's JSON logger turns into strings. A small go-kit logger under
// slog-gokit rewrites its lines into the go-kit form.
package logging

import (
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	slogkit "github.com/tjhop/slog-gokit"
)

// New returns the exporter's go-kit logger, which adds ts and caller to every
// line, and a *slog.Logger for libraries that writes the same lines to the
// same writer. Both only let lines of severity lvl (debug, info, warn or
// error) and above through; format is logfmt or json.
//
// The caller of a go-kit line is the code that called Log, as with
// level.Info(logger).Log(...) or a logger made by log.With; the caller of a
// slog line is the code that called the slog.Logger method.
func New(w io.Writer, lvl, format string) (log.Logger, *slog.Logger, error) {
	allowed, err := level.Parse(lvl)
	if err != nil {
		return nil, nil, fmt.Errorf("invalid log level %q", lvl)
	}
	var out log.Logger
	w = log.NewSyncWriter(w)
	switch format {
	case "logfmt":
		out = log.NewLogfmtLogger(w)
	case "json":
		out = log.NewJSONLogger(w)
	default:
		return nil, nil, fmt.Errorf("invalid log format %q", format)
	}
	out = level.NewFilter(out, level.Allow(allowed))

	logger := log.With(out, "ts", log.DefaultTimestampUTC, "caller", log.DefaultCaller)
	handler := newHandler(fromSlog{out}, "", slogLevel(allowed))
	return logger, slog.New(handler), nil
}

// slogLevel returns the slog level that matches a go-kit level, so that slog
// skips building records that the go-kit filter would drop.
func slogLevel(v level.Value) slog.Level {
	switch v {
	case level.DebugValue():
		return slog.LevelDebug
	case level.WarnValue():
		return slog.LevelWarn
	case level.ErrorValue():
		return slog.LevelError
	}
	return slog.LevelInfo
}

// handler is slog-gokit's handler except for WithAttrs: go-kit's log.With
// puts its pairs before msg, slog-gokit after it. So that slog.Logger.With
// lines match log.With lines, the pairs go into a go-kit log.With under a
// new slog-gokit handler.
type handler struct {
	slog.Handler            // slog-gokit, writing to logger
	logger       log.Logger // carries the pairs of WithAttrs
	group        string     // dotted prefix of WithGroup, for WithAttrs
	level        slog.Level
}

func newHandler(logger log.Logger, group string, lvl slog.Level) *handler {
	next := slogkit.NewGoKitHandler(logger, lvl)
	if group != "" {
		next = next.WithGroup(group)
	}
	return &handler{Handler: next, logger: logger, group: group, level: lvl}
}

// WithAttrs implements slog.Handler.
func (h *handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	var pairs []any
	for _, a := range attrs {
		pairs = appendAttr(pairs, h.group, a)
	}
	if len(pairs) == 0 {
		return h
	}
	return newHandler(log.With(h.logger, pairs...), h.group, h.level)
}

// WithGroup implements slog.Handler.
func (h *handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return &handler{
		Handler: h.Handler.WithGroup(name),
		logger:  h.logger,
		group:   join(h.group, name),
		level:   h.level,
	}
}

// appendAttr flattens a into key-value pairs the way slog-gokit flattens a
// record's attributes: groups become dotted key prefixes.
func appendAttr(pairs []any, group string, a slog.Attr) []any {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return pairs
	}
	if a.Value.Kind() != slog.KindGroup {
		return append(pairs, join(group, a.Key), a.Value)
	}
	if a.Key != "" {
		group = join(group, a.Key)
	}
	for _, ga := range a.Value.Group() {
		pairs = appendAttr(pairs, group, ga)
	}
	return pairs
}

func join(group, key string) string {
	if group == "" {
		return key
	}
	return group + "." + key
}

// fromSlog is the go-kit logger under slog-gokit. slog-gokit starts each line
// with level, caller (from the record's PC, formatted like go-kit's
// log.Caller), time (a time.Time) and msg, in that order; pairs of our
// WithAttrs come before all of them. fromSlog writes level, ts, caller, the
// WithAttrs pairs, msg and the rest, as level.Info(log.With(...)).Log would,
// with ts formatted by go-kit's own log.TimestampFormat.
type fromSlog struct{ next log.Logger }

// Log implements log.Logger.
func (l fromSlog) Log(keyvals ...any) error {
	// Find slog-gokit's pairs: from its level to the first msg.
	start, end := -1, -1
	for i := 0; i+1 < len(keyvals); i += 2 {
		if _, ok := keyvals[i+1].(level.Value); ok && keyvals[i] == level.Key() && start < 0 {
			start = i
		}
		if keyvals[i] == slog.MessageKey && start >= 0 {
			end = i
			break
		}
	}
	if end < 0 {
		// Not a line from slog-gokit; only fix its values.
		return l.next.Log(plainValues(append([]any(nil), keyvals...))...)
	}

	var lvl, caller any
	var other []any // whatever a later slog-gokit may add
	t := time.Now() // slog-gokit leaves out a zero record time
	for i := start; i < end; i += 2 {
		switch keyvals[i] {
		case level.Key():
			lvl = keyvals[i+1]
		case "caller":
			caller = keyvals[i+1]
		case slog.TimeKey:
			if rt, ok := keyvals[i+1].(time.Time); ok {
				t = rt
				continue
			}
			other = append(other, keyvals[i:i+2]...)
		default:
			other = append(other, keyvals[i:i+2]...)
		}
	}
	out := make([]any, 0, len(keyvals)+2)
	out = append(out, level.Key(), lvl)
	out = append(out, "ts", log.TimestampFormat(func() time.Time { return t.UTC() }, time.RFC3339Nano)())
	if caller != nil {
		out = append(out, "caller", caller)
	}
	out = append(out, other...)
	out = append(out, keyvals[:start]...)
	out = append(out, keyvals[end:]...)
	return l.next.Log(plainValues(out)...)
}

// plainValues replaces, in place, slog.Values by the Go values they hold,
// which is what go-kit code passes: go-kit's JSON logger would write a
// slog.Value as a string (it is a fmt.Stringer), and logfmt would format a
// time with time.Time.String instead of RFC 3339.
func plainValues(keyvals []any) []any {
	for i := 1; i < len(keyvals); i += 2 {
		if v, ok := keyvals[i].(slog.Value); ok {
			keyvals[i] = v.Resolve().Any()
		}
	}
	return keyvals
}
