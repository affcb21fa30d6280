package logging

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/prometheus/exporter-toolkit/web"

	"github.com/kevent-exporter/kevent_exporter/internal/e2e"
	"github.com/kevent-exporter/kevent_exporter/internal/syncbuf"
)

var formats = []string{"logfmt", "json"}

// field is one key-value pair of a log line; value is as written (quoted
// in logfmt if it needed quotes, JSON-encoded in JSON).
type field struct{ key, value string }

// parseLine splits a log line into its pairs, in the order they were
// written.
func parseLine(t *testing.T, format, line string) []field {
	t.Helper()
	var fields []field
	if format == "json" {
		dec := json.NewDecoder(strings.NewReader(line))
		if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
			t.Fatalf("not a JSON object: %q", line)
		}
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				t.Fatalf("%q: %v", line, err)
			}
			var v json.RawMessage
			if err := dec.Decode(&v); err != nil {
				t.Fatalf("%q: %v", line, err)
			}
			fields = append(fields, field{tok.(string), string(v)})
		}
		return fields
	}
	rest := line
	for rest != "" {
		eq := strings.IndexByte(rest, '=')
		if eq <= 0 {
			t.Fatalf("bad logfmt %q at %q", line, rest)
		}
		key := rest[:eq]
		rest = rest[eq+1:]
		var value string
		if strings.HasPrefix(rest, `"`) {
			q, err := strconv.QuotedPrefix(rest)
			if err != nil {
				t.Fatalf("bad logfmt %q at %q: %v", line, rest, err)
			}
			value = q
		} else if sp := strings.IndexByte(rest, ' '); sp >= 0 {
			value = rest[:sp]
		} else {
			value = rest
		}
		rest = strings.TrimPrefix(rest[len(value):], " ")
		fields = append(fields, field{key, value})
	}
	return fields
}

// unquote returns a value as a plain string.
func unquote(t *testing.T, format, v string) string {
	t.Helper()
	if !strings.HasPrefix(v, `"`) {
		return v
	}
	if format == "json" {
		var s string
		if err := json.Unmarshal([]byte(v), &s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	s, err := strconv.Unquote(v)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// lines returns the lines written to buf since the last call and resets it.
func lines(buf *bytes.Buffer) []string {
	s := strings.TrimSuffix(buf.String(), "\n")
	buf.Reset()
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// here returns "logging_test.go:N" for the line after the call.
func here() string {
	_, _, line, _ := runtime.Caller(1)
	return fmt.Sprintf("logging_test.go:%d", line+1)
}

var callerRE = regexp.MustCompile(`^[a-z_]+\.go:[0-9]+$`)

// checkSame checks that the go-kit and the slog line have the same keys in
// the same order and the same values except for ts and caller, that ts is
// go-kit's UTC RFC 3339 timestamp and that the callers are the given ones.
func checkSame(t *testing.T, format, gokitLine, slogLine, gokitCaller, slogCaller string) {
	t.Helper()
	g, s := parseLine(t, format, gokitLine), parseLine(t, format, slogLine)
	keys := func(fs []field) []string {
		var ks []string
		for _, f := range fs {
			ks = append(ks, f.key)
		}
		return ks
	}
	gk, sk := strings.Join(keys(g), " "), strings.Join(keys(s), " ")
	if gk != sk {
		t.Fatalf("keys differ:\ngo-kit: %s\nslog:   %s\n%s\n%s", gk, sk, gokitLine, slogLine)
	}
	for i := range g {
		switch g[i].key {
		case "ts":
			for _, v := range []string{g[i].value, s[i].value} {
				v = unquote(t, format, v)
				ts, err := time.Parse(time.RFC3339Nano, v)
				if err != nil || !strings.HasSuffix(v, "Z") || ts.Format(time.RFC3339Nano) != v {
					t.Errorf("ts %q is not a UTC RFC 3339 time as go-kit writes it (%v)", v, err)
				}
			}
		case "caller":
			for _, c := range []struct{ got, want string }{{g[i].value, gokitCaller}, {s[i].value, slogCaller}} {
				got := unquote(t, format, c.got)
				if !callerRE.MatchString(got) || got != c.want {
					t.Errorf("caller %q, want %q", got, c.want)
				}
			}
		default:
			if g[i].value != s[i].value {
				t.Errorf("%s: go-kit wrote %s, slog wrote %s", g[i].key, g[i].value, s[i].value)
			}
		}
	}
}

func TestSameLines(t *testing.T) {
	at := time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.FixedZone("x", 3600))
	for _, format := range formats {
		t.Run(format, func(t *testing.T) {
			var buf bytes.Buffer
			logger, slogger, err := New(&buf, "info", format)
			if err != nil {
				t.Fatal(err)
			}

			gc := here()
			level.Info(logger).Log("msg", "Listening on", "address", "127.0.0.1:9736", "n", 3, "ok", true, "d", 1500*time.Millisecond, "at", at, "err", errors.New("a \"quoted\" error"))
			sc := here()
			slogger.Info("Listening on", "address", "127.0.0.1:9736", "n", 3, "ok", true, "d", 1500*time.Millisecond, "at", at, "err", errors.New("a \"quoted\" error"))
			ls := lines(&buf)
			if len(ls) != 2 {
				t.Fatalf("want 2 lines, got %q", ls)
			}
			t.Logf("go-kit: %s", ls[0])
			t.Logf("slog:   %s", ls[1])
			if format == "logfmt" && !strings.HasPrefix(ls[0], "level=info ts=") {
				t.Errorf("go-kit line does not start with level and ts: %s", ls[0])
			}
			checkSame(t, format, ls[0], ls[1], gc, sc)

			// Attributes of With come before msg, as in go-kit; groups
			// become dotted prefixes.
			gc = here()
			level.Warn(log.With(logger, "component", "web", "tls.enabled", false)).Log("msg", "careful", "tls.g.x", 1, "tls.g.y", "two words")
			sc = here()
			slogger.With("component", "web").WithGroup("tls").With("enabled", false).WithGroup("g").Warn("careful", "x", 1, "y", "two words")
			ls = lines(&buf)
			if len(ls) != 2 {
				t.Fatalf("want 2 lines, got %q", ls)
			}
			t.Logf("go-kit: %s", ls[0])
			t.Logf("slog:   %s", ls[1])
			checkSame(t, format, ls[0], ls[1], gc, sc)

			// An inline group and a slog.Group attribute.
			gc = here()
			level.Error(logger).Log("msg", "failed", "a", 1, "req.method", "GET")
			sc = here()
			slogger.Error("failed", slog.Group("", "a", 1), slog.Group("req", "method", "GET"), slog.Group("empty"))
			ls = lines(&buf)
			if len(ls) != 2 {
				t.Fatalf("want 2 lines, got %q", ls)
			}
			checkSame(t, format, ls[0], ls[1], gc, sc)
		})
	}
}

func TestLevelFilter(t *testing.T) {
	for _, format := range formats {
		for _, tc := range []struct {
			level string
			want  []string // levels of the lines that get through
		}{
			{"debug", []string{"debug", "info", "warn", "error"}},
			{"info", []string{"info", "warn", "error"}},
			{"warn", []string{"warn", "error"}},
			{"error", []string{"error"}},
		} {
			t.Run(format+"/"+tc.level, func(t *testing.T) {
				var buf bytes.Buffer
				logger, slogger, err := New(&buf, tc.level, format)
				if err != nil {
					t.Fatal(err)
				}
				level.Debug(logger).Log("msg", "m")
				level.Info(logger).Log("msg", "m")
				level.Warn(logger).Log("msg", "m")
				level.Error(logger).Log("msg", "m")
				slogger.Debug("m")
				slogger.Info("m")
				slogger.Warn("m")
				slogger.Error("m")
				var got []string
				for _, l := range lines(&buf) {
					for _, f := range parseLine(t, format, l) {
						if f.key == "level" {
							got = append(got, unquote(t, format, f.value))
						}
					}
				}
				want := strings.Join(append(tc.want, tc.want...), " ")
				if strings.Join(got, " ") != want {
					t.Errorf("levels %q, want %q", got, want)
				}
			})
		}
	}
}

func TestBadArguments(t *testing.T) {
	if _, _, err := New(io.Discard, "verbose", "logfmt"); err == nil {
		t.Error("want an error for level verbose")
	}
	if _, _, err := New(io.Discard, "info", "text"); err == nil {
		t.Error("want an error for format text")
	}
}

// TestToolkit checks the lines that the exporter toolkit writes through the
// slog logger against a go-kit line with the same message and attributes.
func TestToolkit(t *testing.T) {
	for _, format := range formats {
		t.Run(format, func(t *testing.T) {
			var buf syncbuf.Buffer
			logger, slogger, err := New(&buf, "info", format)
			if err != nil {
				t.Fatal(err)
			}
			addrs, systemd, config := []string{"127.0.0.1:0"}, false, ""
			flags := &web.FlagConfig{WebListenAddresses: &addrs, WebSystemdSocket: &systemd, WebConfigFile: &config}
			srv := &http.Server{ReadHeaderTimeout: 10 * time.Second}
			served := make(chan error, 1)
			go func() { served <- web.ListenAndServe(srv, flags, slogger) }()

			e2e.Eventually(t, "the toolkit logs that it serves", func() bool { return strings.Contains(buf.String(), "TLS is disabled.") },
				e2e.Lazy(func() string { return "log:\n" + buf.String() }))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := srv.Shutdown(ctx); err != nil {
				t.Fatal(err)
			}
			if err := <-served; !errors.Is(err, http.ErrServerClosed) {
				t.Fatalf("ListenAndServe: %v", err)
			}

			toolkit := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
			if len(toolkit) != 2 {
				t.Fatalf("want the 2 lines Listening on and TLS is disabled, got %q", toolkit)
			}
			var addr, toolkitCaller string
			for _, f := range parseLine(t, format, toolkit[0]) {
				switch f.key {
				case "address":
					addr = unquote(t, format, f.value)
				case "caller":
					toolkitCaller = unquote(t, format, f.value)
				}
			}
			if !strings.HasPrefix(addr, "127.0.0.1:") || !callerRE.MatchString(toolkitCaller) {
				t.Fatalf("address %q caller %q in %s", addr, toolkitCaller, toolkit[0])
			}

			var own bytes.Buffer
			ownLogger, _, _ := New(&own, "info", format)
			level.Info(ownLogger).Log("msg", "Listening on", "address", addr)
			level.Info(ownLogger).Log("msg", "TLS is disabled.", "http2", false, "address", addr)
			ownLines := lines(&own)
			for i := range toolkit {
				t.Logf("toolkit: %s", toolkit[i])
				t.Logf("go-kit:  %s", ownLines[i])
				checkSame(t, format, ownLines[i], toolkit[i], unquote(t, format, field0(t, format, ownLines[i], "caller")), unquote(t, format, field0(t, format, toolkit[i], "caller")))
			}
			// The go-kit logger of the same New writes the same way, to
			// the same writer.
			level.Info(logger).Log("msg", "done")
			if !strings.Contains(buf.String(), "done") {
				t.Error("go-kit line missing")
			}
		})
	}
}

// field0 returns the raw value of key in line.
func field0(t *testing.T, format, line, key string) string {
	t.Helper()
	for _, f := range parseLine(t, format, line) {
		if f.key == key {
			return f.value
		}
	}
	t.Fatalf("no %s in %s", key, line)
	return ""
}
