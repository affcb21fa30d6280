package main

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/kevent-exporter/kevent_exporter/internal/e2e"
)

// runExporter runs the exporter with args to its end, which must come
// within e2e.Timeout, and returns its exit status, its output and how
// long it took.
func runExporter(t *testing.T, args ...string) (int, string, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), e2e.Timeout)
	defer cancel()
	start := time.Now()
	out, err := exec.CommandContext(ctx, exporterBinary, args...).CombinedOutput()
	took := time.Since(start)
	if ctx.Err() != nil {
		t.Fatalf("%v still running after %v; output:\n%s", args, e2e.Timeout, out)
	}
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatal(err)
		}
		code = ee.ExitCode()
	}
	return code, string(out), took
}

// TestConfigThatCannotRunRefused: a configuration that passed
// --config.check although the exporter and the monitor crashed on it (an
// empty family made a source with no groups) is refused by the check, by a
// reload, which keeps the running configuration, and by the monitor.
func TestConfigThatCannotRunRefused(t *testing.T) {
	t.Parallel()
	bad := "config/testdata/invalid-family-empty.yml"
	const want = `line 5: family: \"\" is not 1-15 printable ASCII characters (GENL_NAMSIZ)`
	if code, out, _ := runExporter(t, "--config.check", "--config.file="+bad); code != 1 || !strings.Contains(out, want) {
		t.Errorf("--config.check: exit status %d, output:\n%s\nwant 1 and %s", code, out, want)
	}
	if code, out, _ := runExporter(t, "monitor", "--config.file="+bad, "--timeout=1s"); code == 0 || strings.Contains(out, "panic") || !strings.Contains(out, strings.ReplaceAll(want, `\"`, `"`)) {
		t.Errorf("monitor: exit status %d, output:\n%s\nwant a failure with %s", code, out, want)
	}

	e := startExporter(t, "sources:\n  - {name: s, protocol: usersock, groups: [28], decoder: raw}\n")
	e.WaitFor(t, 1, "kevent_source_up", "source", "s")
	b, err := os.ReadFile(bad)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(e.ConfigFile, b, 0o644); err != nil {
		t.Fatal(err)
	}
	code, body := e2e.Post(t, e.URL+"/-/reload")
	if code != http.StatusInternalServerError || !strings.Contains(body, strings.ReplaceAll(want, `\"`, `"`)) {
		t.Fatalf("POST /-/reload: %d %q, want 500 with %s", code, body, want)
	}
	e.WaitFor(t, 0, "kevent_config_last_reload_successful")
	e.WaitFor(t, 1, "kevent_source_up", "source", "s")
}
