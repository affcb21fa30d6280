package live

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
	"time"

	"github.com/kevent-exporter/kevent_exporter/internal/e2e"
	"github.com/kevent-exporter/kevent_exporter/internal/syncbuf"
)

// prometheus is a Prometheus server the test started, and its HTTP API.
type prometheus struct {
	URL  string
	Logs *syncbuf.Buffer
}

// startPrometheus runs Debian's prometheus on config (a prometheus.yml)
// until the end of the test and waits until it is ready.
func startPrometheus(t *testing.T, config string) *prometheus {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatal("prometheus not in PATH: install Debian's prometheus package (deploy/check.sh does)")
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	p := &prometheus{URL: fmt.Sprintf("http://127.0.0.1:%d", e2e.FreePort(t)), Logs: &syncbuf.Buffer{}}
	cmd := exec.Command(bin,
		"--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+strings.TrimPrefix(p.URL, "http://"),
	)
	cmd.Stdout, cmd.Stderr = p.Logs, p.Logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("prometheus log:\n%s", p.Logs)
		}
	})
	e2e.Eventually(t, "prometheus is ready", func() bool {
		resp, err := http.Get(p.URL + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return p
}

// get calls an API endpoint and decodes its data into out.
func (p *prometheus) get(path string, params url.Values, out any) error {
	resp, err := http.Get(p.URL + path + "?" + params.Encode())
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	var r struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return fmt.Errorf("%s: %v: %s", path, err, b)
	}
	if r.Status != "success" {
		return fmt.Errorf("%s %s: %s", path, params.Encode(), r.Error)
	}
	return json.Unmarshal(r.Data, out)
}

// sample is one series of a query's result, with its last value.
type sample struct {
	Metric map[string]string
	Value  string
}

// query evaluates an instant query; a scalar result is one sample.
func (p *prometheus) query(expr string) ([]sample, error) {
	var data struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	if err := p.get("/api/v1/query", url.Values{"query": {expr}}, &data); err != nil {
		return nil, err
	}
	switch data.ResultType {
	case "vector":
		var vec []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		}
		if err := json.Unmarshal(data.Result, &vec); err != nil {
			return nil, err
		}
		var out []sample
		for _, v := range vec {
			out = append(out, sample{Metric: v.Metric, Value: fmt.Sprint(v.Value[1])})
		}
		return out, nil
	case "scalar":
		var v [2]any
		if err := json.Unmarshal(data.Result, &v); err != nil {
			return nil, err
		}
		return []sample{{Value: fmt.Sprint(v[1])}}, nil
	default:
		return nil, fmt.Errorf("%s: result type %s", expr, data.ResultType)
	}
}

// queryRange evaluates a range query over the last minute and returns its
// series, each with its last value.
func (p *prometheus) queryRange(expr string) ([]sample, error) {
	now := time.Now()
	var data struct {
		Result []struct {
			Metric map[string]string `json:"metric"`
			Values [][2]any          `json:"values"`
		} `json:"result"`
	}
	params := url.Values{
		"query": {expr},
		"start": {fmt.Sprint(now.Add(-time.Minute).Unix())},
		"end":   {fmt.Sprint(now.Unix())},
		"step":  {"1"},
	}
	if err := p.get("/api/v1/query_range", params, &data); err != nil {
		return nil, err
	}
	var out []sample
	for _, s := range data.Result {
		if len(s.Values) > 0 {
			out = append(out, sample{Metric: s.Metric, Value: fmt.Sprint(s.Values[len(s.Values)-1][1])})
		}
	}
	return out, nil
}

// labelValues returns the values of label among the series matching
// selector, as Grafana's label_values(selector, label) does.
func (p *prometheus) labelValues(selector, label string) ([]string, error) {
	var series []map[string]string
	if err := p.get("/api/v1/series", url.Values{"match[]": {selector}}, &series); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var values []string
	for _, s := range series {
		if v, ok := s[label]; ok && !seen[v] {
			seen[v] = true
			values = append(values, v)
		}
	}
	return values, nil
}

// alert is an active alert.
type alert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	State       string            `json:"state"`
}

func (p *prometheus) alerts() ([]alert, error) {
	var data struct {
		Alerts []alert `json:"alerts"`
	}
	err := p.get("/api/v1/alerts", nil, &data)
	return data.Alerts, err
}

// ruleState is an alerting rule as Prometheus evaluates it.
type ruleState struct {
	Name      string `json:"name"`
	Health    string `json:"health"`
	LastError string `json:"lastError"`
	Type      string `json:"type"`
}

func (p *prometheus) rules() ([]ruleState, error) {
	var data struct {
		Groups []struct {
			Rules []ruleState `json:"rules"`
		} `json:"groups"`
	}
	err := p.get("/api/v1/rules", nil, &data)
	var rules []ruleState
	for _, g := range data.Groups {
		rules = append(rules, g.Rules...)
	}
	return rules, err
}
