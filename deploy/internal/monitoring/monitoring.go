// Package monitoring reads the Grafana dashboard and the Prometheus rules
// of deploy/ for their tests: the PromQL they hold, with Grafana's
// variables replaced by values a test can query, and the metrics each
// expression names.
package monitoring

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"go.yaml.in/yaml/v3"
)

// Dashboard is the part of a Grafana dashboard's JSON model the tests read.
type Dashboard struct {
	UID           string  `json:"uid"`
	Title         string  `json:"title"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []Panel `json:"panels"`
	Templating    struct {
		List []Variable `json:"list"`
	} `json:"templating"`
}

// Panel is a dashboard panel.
type Panel struct {
	ID         int         `json:"id"`
	Type       string      `json:"type"`
	Title      string      `json:"title"`
	Datasource *Datasource `json:"datasource"`
	GridPos    GridPos     `json:"gridPos"`
	Targets    []Target    `json:"targets"`
	Panels     []any       `json:"panels"`
}

// GridPos is a panel's place on the dashboard's 24-column grid.
type GridPos struct{ X, Y, W, H int }

// Datasource names a data source, here always the datasource variable.
type Datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// Target is a panel's query.
type Target struct {
	RefID      string      `json:"refId"`
	Expr       string      `json:"expr"`
	Instant    bool        `json:"instant"`
	Range      bool        `json:"range"`
	Datasource *Datasource `json:"datasource"`
}

// Variable is a templating variable.
type Variable struct {
	Name       string      `json:"name"`
	Type       string      `json:"type"`
	Query      string      `json:"query"`
	Datasource *Datasource `json:"datasource"`
	AllValue   string      `json:"allValue"`
}

// LoadDashboard reads a dashboard's JSON model.
func LoadDashboard(path string) (*Dashboard, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var d Dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	return &d, nil
}

// Query is a panel's PromQL query.
type Query struct {
	Panel, RefID string
	// Expr is the query as the dashboard has it, with Grafana's variables.
	Expr    string
	Instant bool
}

func (q Query) String() string { return fmt.Sprintf("panel %q query %s", q.Panel, q.RefID) }

// Queries returns the PromQL queries of the dashboard's panels.
func (d *Dashboard) Queries() []Query {
	var qs []Query
	for _, p := range d.Panels {
		for _, t := range p.Targets {
			qs = append(qs, Query{Panel: p.Title, RefID: t.RefID, Expr: t.Expr, Instant: t.Instant})
		}
	}
	return qs
}

// labelValues is Grafana's label_values(selector, label) variable query.
var labelValues = regexp.MustCompile(`^label_values\((.*),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)$`)

// VariableQuery splits a label_values(selector, label) query.
func VariableQuery(q string) (selector, label string, err error) {
	m := labelValues.FindStringSubmatch(strings.TrimSpace(q))
	if m == nil {
		return "", "", fmt.Errorf("%q is not label_values(selector, label)", q)
	}
	return strings.TrimSpace(m[1]), m[2], nil
}

// Substitutions are the values the tests give Grafana's variables: "All"
// for the dashboard's own (their allValue), and durations for the built-in
// ones. Longer names come first, so that $__range goes before a $__r...
var Substitutions = []struct{ Name, Value string }{
	{"$__rate_interval", "1m"},
	{"$__interval", "15s"},
	{"$__range", "1h"},
	{"$instance", ".+"},
	{"$source", ".+"},
	{"$job", ".+"},
}

// grafanaVariable finds what Substitute left: a $name or ${name}.
var grafanaVariable = regexp.MustCompile(`\$\{?[a-zA-Z_]\w*`)

// Substitute replaces Grafana's variables in a query by Substitutions and
// fails if one is left.
func Substitute(q string) (string, error) {
	for _, s := range Substitutions {
		q = strings.ReplaceAll(q, s.Name, s.Value)
	}
	if v := grafanaVariable.FindString(q); v != "" {
		return "", fmt.Errorf("unknown variable %s in %q", v, q)
	}
	return q, nil
}

// Parse parses a PromQL expression with the parser of Prometheus itself.
func Parse(expr string) (parser.Expr, error) {
	return parser.NewParser(parser.Options{}).ParseExpr(expr)
}

// Selectors returns the vector selectors of an expression (range vector
// selectors included), in the order they appear.
func Selectors(e parser.Expr) []*parser.VectorSelector {
	var vss []*parser.VectorSelector
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			vss = append(vss, vs)
		}
		return nil
	})
	return vss
}

// MetricNames returns the sorted metric names an expression selects. A
// selector without one (by __name__ regexp) is an error: the tests want
// every name spelt out.
func MetricNames(e parser.Expr) ([]string, error) {
	seen := map[string]bool{}
	for _, vs := range Selectors(e) {
		name := vs.Name
		for _, m := range vs.LabelMatchers {
			if m.Name == labels.MetricName {
				if m.Type != labels.MatchEqual {
					return nil, fmt.Errorf("%s: select metrics by their full name", vs)
				}
				name = m.Value
			}
		}
		if name == "" {
			return nil, fmt.Errorf("%s: no metric name", vs)
		}
		seen[name] = true
	}
	var names []string
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	return names, nil
}

// RuleFile is a Prometheus rules file.
type RuleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []Rule `yaml:"rules"`
	} `yaml:"groups"`
}

// Rule is an alerting rule.
type Rule struct {
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

// LoadRules reads the alerting rules of a rules file, strictly.
func LoadRules(path string) ([]Rule, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var f RuleFile
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	var rules []Rule
	for _, g := range f.Groups {
		rules = append(rules, g.Rules...)
	}
	return rules, nil
}
