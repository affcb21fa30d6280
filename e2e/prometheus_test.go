package e2e_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kevent-exporter/kevent_exporter/internal/e2e"
	"github.com/kevent-exporter/kevent_exporter/internal/nlsend"
	"github.com/kevent-exporter/kevent_exporter/internal/syncbuf"
	"github.com/kevent-exporter/kevent_exporter/internal/testenv"
)

// TestPrometheusScrapes runs a real Prometheus server against the exporter
// and queries what it stored. .ci/run installs Prometheus (Debian's
// prometheus package).
func TestPrometheusScrapes(t *testing.T) {
	t.Parallel()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatal("prometheus not in PATH: install it (apt-get install prometheus) or run .ci/run")
	}
	g := testenv.UsersockGroup(t)
	e := startExporter(t, fmt.Sprintf("sources:\n  - {name: p, protocol: usersock, groups: [%d], decoder: raw, event_names: {16: tick}}\n", g))
	e.WaitFor(t, 1, "kevent_source_up", "source", "p")

	dir := t.TempDir()
	cfg := fmt.Sprintf(`
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: kevent
    static_configs:
      - targets: [%q]
`, strings.TrimPrefix(e.URL, "http://"))
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	promURL := fmt.Sprintf("http://127.0.0.1:%d", e2e.FreePort(t))
	prom := exec.Command(bin,
		"--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+strings.TrimPrefix(promURL, "http://"),
	)
	logs := &syncbuf.Buffer{}
	prom.Stdout, prom.Stderr = logs, logs
	if err := prom.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		prom.Process.Kill()
		prom.Wait()
	})

	snd := sender(t, g)
	const n = 250
	for i := 1; i <= n; i++ {
		if err := snd.Send(nlsend.AppendMessage(nil, 16, uint32(i), []byte(fmt.Sprint(i)))); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range []struct{ query, want string }{
		{`up{job="kevent"}`, "1"},
		{`kevent_events_total{source="p",event="tick"}`, fmt.Sprint(n)},
		{`kevent_event_last_value{source="p",event="tick"}`, fmt.Sprint(n)},
		{`kevent_event_last_payload_info{source="p",event="tick"}`, "1"},
		{`kevent_datagrams_lost_total{source="p"}`, "0"},
	} {
		waitQuery(t, promURL, q.query, q.want, logs)
	}
}

// waitQuery polls Prometheus's query API until query has the value want.
func waitQuery(t *testing.T, promURL, query, want string, logs *syncbuf.Buffer) {
	t.Helper()
	var got string
	e2e.Eventually(t, fmt.Sprintf("Prometheus answers %s = %s", query, want), func() bool {
		resp, err := http.Get(promURL + "/api/v1/query?query=" + url.QueryEscape(query))
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var r struct {
				Data struct {
					Result []struct {
						Value [2]any `json:"value"`
					} `json:"result"`
				} `json:"data"`
			}
			if json.Unmarshal(b, &r) == nil && len(r.Data.Result) == 1 {
				got = fmt.Sprint(r.Data.Result[0].Value[1])
			}
		}
		return got == want
	}, e2e.Lazy(func() string { return fmt.Sprintf("last: %q\nprometheus log:\n%s", got, logs) }))
}

// TestPromtoolCheckMetrics lints a live scrape with promtool, Prometheus's
// own linter.
func TestPromtoolCheckMetrics(t *testing.T) {
	t.Parallel()
	bin, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool not in PATH: install it (apt-get install prometheus) or run .ci/run")
	}
	g := testenv.UsersockGroup(t)
	e := startExporter(t, fmt.Sprintf("sources:\n  - {name: lint, protocol: usersock, groups: [%d], decoder: raw}\n", g))
	e.WaitFor(t, 1, "kevent_source_up", "source", "lint")
	snd := sender(t, g)
	if err := snd.Send(nlsend.AppendMessage(nil, 16, 1, []byte("7"))); err != nil {
		t.Fatal(err)
	}
	e.WaitFor(t, 1, "kevent_events_total", "source", "lint", "event", "16")
	resp, err := http.Get(e.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	cmd := exec.Command(bin, "check", "metrics")
	cmd.Stdin = resp.Body
	out, err := cmd.CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}
