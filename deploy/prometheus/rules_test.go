// Package prometheus holds the tests of the alerting rules: promtool's
// checks and unit tests (tests/), and what every alert must carry. ../live
// evaluates them against a real Prometheus scraping a real exporter.
package prometheus

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/kevent-exporter/kevent_exporter/deploy/internal/monitoring"
)

var ruleFiles = []string{"kevent_exporter.rules.yml", "kevent_exporter.examples.rules.yml"}

func promtool(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool not in PATH: install Debian's prometheus package (deploy/check.sh does)")
	}
	return bin
}

func TestPromtoolCheckRules(t *testing.T) {
	out, err := exec.Command(promtool(t), append([]string{"check", "rules"}, ruleFiles...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}

func TestPromtoolTestRules(t *testing.T) {
	tests, err := filepath.Glob("tests/*.yml")
	if err != nil || len(tests) == 0 {
		t.Fatalf("no tests/*.yml: %v", err)
	}
	for _, f := range tests {
		out, err := exec.Command(promtool(t), "test", "rules", f).CombinedOutput()
		if err != nil {
			t.Errorf("promtool test rules %s: %v\n%s", f, err, out)
		}
	}
}

// unitTests is the part of a promtool test file this test reads.
type unitTests struct {
	RuleFiles []string `yaml:"rule_files"`
	Tests     []struct {
		Name          string `yaml:"name"`
		AlertRuleTest []struct {
			Alertname string `yaml:"alertname"`
			ExpAlerts []any  `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
	} `yaml:"tests"`
}

// TestEveryAlertTested: each alert has a promtool case where it fires and
// one where it must not.
func TestEveryAlertTested(t *testing.T) {
	fires, silent := map[string]bool{}, map[string]bool{}
	files, _ := filepath.Glob("tests/*.yml")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var u unitTests
		if err := yaml.Unmarshal(b, &u); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, tc := range u.Tests {
			for _, a := range tc.AlertRuleTest {
				if len(a.ExpAlerts) > 0 {
					fires[a.Alertname] = true
				} else {
					silent[a.Alertname] = true
				}
			}
		}
	}
	for _, rule := range rules(t) {
		if !fires[rule.Alert] || !silent[rule.Alert] {
			t.Errorf("%s: promtool tests where it fires: %v, where it must not: %v", rule.Alert, fires[rule.Alert], silent[rule.Alert])
		}
	}
}

func rules(t *testing.T) []monitoring.Rule {
	t.Helper()
	var all []monitoring.Rule
	for _, f := range ruleFiles {
		rs, err := monitoring.LoadRules(f)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, rs...)
	}
	if len(all) == 0 {
		t.Fatal("no rules")
	}
	return all
}

// TestAlertAnnotations: every alert has a severity, a summary, a
// description naming the labels that tell where to look, and a runbook
// section that exists.
func TestAlertAnnotations(t *testing.T) {
	runbook, err := os.ReadFile("../../docs/runbook.md")
	if err != nil {
		t.Fatal(err)
	}
	anchors := markdownAnchors(string(runbook))
	examples, err := monitoring.LoadRules("kevent_exporter.examples.rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	isExample := map[string]bool{}
	for _, r := range examples {
		isExample[r.Alert] = true
	}
	const runbookURL = "https://github.com/kevent-exporter/kevent_exporter/blob/main/docs/runbook.md#"
	seen := map[string]bool{}
	for _, r := range rules(t) {
		if seen[r.Alert] {
			t.Errorf("%s: twice", r.Alert)
		}
		seen[r.Alert] = true
		switch r.Labels["severity"] {
		case "info", "warning", "critical":
		default:
			t.Errorf("%s: severity %q", r.Alert, r.Labels["severity"])
		}
		a := r.Annotations
		if a["summary"] == "" || strings.Contains(a["summary"], "{{") {
			t.Errorf("%s: summary %q: want a fixed sentence", r.Alert, a["summary"])
		}
		e, err := monitoring.Parse(r.Expr)
		if err != nil {
			t.Errorf("%s: %v", r.Alert, err)
			continue
		}
		names, err := monitoring.MetricNames(e)
		if err != nil {
			t.Errorf("%s: %v", r.Alert, err)
		}
		want := []string{"$labels.instance"}
		for _, n := range names {
			if !strings.HasPrefix(n, "kevent_") && n != "up" {
				t.Errorf("%s: selects %s, not one of the exporter's metrics", r.Alert, n)
			}
			if strings.HasPrefix(n, "kevent_") && n != "kevent_exporter_build_info" && !strings.HasPrefix(n, "kevent_config_") {
				want = append(want, "$labels.source")
			}
		}
		if strings.Contains(r.Expr, "kevent_datagrams_rejected_total") {
			want = append(want, "$labels.reason")
		}
		if isExample[r.Alert] {
			want = append(want, "$labels.object")
			if !strings.Contains(a["summary"], "(example alert)") {
				t.Errorf("%s: an example's summary must say so", r.Alert)
			}
		}
		for _, w := range want {
			if !strings.Contains(a["description"], "{{ "+w+" }}") {
				t.Errorf("%s: description does not name {{ %s }}: %q", r.Alert, w, a["description"])
			}
		}
		anchor := strings.ToLower(r.Alert)
		if isExample[r.Alert] {
			anchor += "-example"
		}
		if a["runbook_url"] != runbookURL+anchor || !anchors[anchor] {
			t.Errorf("%s: runbook_url %q: want %s%s, a section of docs/runbook.md", r.Alert, a["runbook_url"], runbookURL, anchor)
		}
	}
}

// markdownAnchors returns the anchors GitHub gives the headings of a
// Markdown document: lower case, punctuation dropped, spaces as hyphens.
func markdownAnchors(doc string) map[string]bool {
	anchors := map[string]bool{}
	drop := regexp.MustCompile(`[^a-z0-9 _-]`)
	for _, line := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(line, "#") {
			continue
		}
		h := strings.ToLower(strings.TrimSpace(strings.TrimLeft(line, "#")))
		anchors[strings.ReplaceAll(drop.ReplaceAllString(h, ""), " ", "-")] = true
	}
	return anchors
}

// TestPrometheusRuleIsTheRulesFile: the kustomize component's
// PrometheusRule holds this directory's rules (the Helm chart's, the
// deploy module's TestHelmSwitches checks).
func TestPrometheusRuleIsTheRulesFile(t *testing.T) {
	for file, pr := range map[string]string{
		"kevent_exporter.rules.yml":          "../kubernetes/components/prometheusrule/prometheusrule.yaml",
		"kevent_exporter.examples.rules.yml": "../kubernetes/components/prometheusrule-examples/prometheusrule.yaml",
	} {
		var want, got struct {
			Spec any `yaml:"spec"`
		}
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if err := yaml.Unmarshal(b, &want.Spec); err != nil {
			t.Fatal(err)
		}
		b, err = os.ReadFile(pr)
		if err != nil {
			t.Fatal(err)
		}
		if err := yaml.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		if !equalYAML(got.Spec, want.Spec) {
			t.Errorf("%s's spec is not %s: run `cd deploy && go generate`", pr, file)
		}
	}
}

func equalYAML(a, b any) bool {
	x, err1 := yaml.Marshal(a)
	y, err2 := yaml.Marshal(b)
	return err1 == nil && err2 == nil && string(x) == string(y)
}
