package e2e_test

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
)

// TestLogFormat runs the binary in each log format and checks that every
// line it writes, the web server library's included, has the same leading
// keys: level, ts (RFC 3339 UTC), caller (file.go:line) and msg.
func TestLogFormat(t *testing.T) {
	t.Parallel()
	// A source that cannot join one of its groups adds a warning line.
	const config = "sources:\n  - {name: l, protocol: route, groups: [1, 900], decoder: raw}\n  - {name: w, protocol: 29, groups: [1], decoder: raw}\n"
	logfmtLine := regexp.MustCompile(`^level=(debug|info|warn|error) ts=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z caller=[a-z_]+\.go:\d+ (\S+=\S.*)$`)
	for _, format := range []string{"logfmt", "json"} {
		t.Run(format, func(t *testing.T) {
			e := startExporter(t, config, "--log.format="+format, "--log.level=debug")
			e.WaitLog(t, "Listening on")
			e.WaitLog(t, "Netlink protocol not registered")
			if err, ok := e.Stop(); !ok || err != nil {
				t.Fatalf("stop: %v %v", err, ok)
			}
			lines := strings.Split(strings.TrimSpace(e.Logs.String()), "\n")
			if len(lines) < 8 {
				t.Fatalf("only %d log lines:\n%s", len(lines), e.Logs)
			}
			for _, l := range lines {
				if format == "logfmt" {
					m := logfmtLine.FindStringSubmatch(l)
					if m == nil || strings.Contains(l, " time=") {
						t.Errorf("line not in the common logfmt form (level ts caller ...):\n%s", l)
					} else if strings.Contains(l, "caller=ratelimit.go") {
						t.Errorf("a rate-limited line names the rate limiter, not its caller:\n%s", l)
					} else if !strings.Contains(l, " msg=") {
						t.Errorf("line without msg:\n%s", l)
					}
					continue
				}
				var m map[string]any
				if err := json.Unmarshal([]byte(l), &m); err != nil {
					t.Errorf("not JSON: %v\n%s", err, l)
					continue
				}
				for _, k := range []string{"level", "ts", "caller", "msg"} {
					if _, ok := m[k]; !ok {
						t.Errorf("JSON line lacks %q:\n%s", k, l)
					}
				}
				if _, ok := m["time"]; ok {
					t.Errorf("JSON line with a time key beside ts:\n%s", l)
				}
			}
			for _, want := range []string{"Listening on", "Cannot join some multicast groups", "Source stopped"} {
				if !strings.Contains(e.Logs.String(), want) {
					t.Errorf("log lacks %q", want)
				}
			}
		})
	}
}
