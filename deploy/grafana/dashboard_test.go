// Package grafana holds the tests of the Grafana dashboard
// kevent-exporter.json. Its queries are run against a real Prometheus
// scraping a real exporter in ../live.
package grafana

import (
	"strings"
	"testing"

	"github.com/kevent-exporter/kevent_exporter/deploy/internal/monitoring"
)

const dashboardFile = "kevent-exporter.json"

func TestDashboardVariables(t *testing.T) {
	d, err := monitoring.LoadDashboard(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	if d.UID != "kevent-exporter" || d.Title == "" || d.SchemaVersion < 36 {
		t.Errorf("uid %q, title %q, schemaVersion %d", d.UID, d.Title, d.SchemaVersion)
	}
	vars := map[string]monitoring.Variable{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v
	}
	if ds := vars["datasource"]; ds.Type != "datasource" || ds.Query != "prometheus" {
		t.Errorf("no Prometheus datasource variable: %+v", ds)
	}
	for _, name := range []string{"job", "instance", "source"} {
		v, ok := vars[name]
		if !ok {
			t.Errorf("no %s variable", name)
			continue
		}
		if v.Type != "query" || v.Datasource == nil || v.Datasource.UID != "${datasource}" || v.AllValue != ".+" {
			t.Errorf("variable %s: %+v", name, v)
		}
		sel, label, err := monitoring.VariableQuery(v.Query)
		if err != nil || label != name {
			t.Errorf("variable %s: query %q (%v)", name, v.Query, err)
			continue
		}
		checkQuery(t, "variable "+name, sel)
	}
	if len(vars) != 4 {
		t.Errorf("variables %v: a new one needs a value in monitoring.Substitutions", vars)
	}
}

func TestDashboardPanels(t *testing.T) {
	d, err := monitoring.LoadDashboard(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[int]bool{}
	var placed []monitoring.Panel
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel %q: id %d used twice", p.Title, p.ID)
		}
		ids[p.ID] = true
		g := p.GridPos
		if g.X < 0 || g.W <= 0 || g.X+g.W > 24 || g.H <= 0 {
			t.Errorf("panel %q: off the 24-column grid: %+v", p.Title, g)
		}
		for _, q := range placed {
			o := q.GridPos
			if g.X < o.X+o.W && o.X < g.X+g.W && g.Y < o.Y+o.H && o.Y < g.Y+g.H {
				t.Errorf("panels %q and %q overlap: %+v %+v", p.Title, q.Title, g, o)
			}
		}
		placed = append(placed, p)
		if p.Type == "row" {
			if len(p.Targets) != 0 || len(p.Panels) != 0 {
				t.Errorf("row %q holds queries or panels", p.Title)
			}
			continue
		}
		if p.Datasource == nil || *p.Datasource != (monitoring.Datasource{Type: "prometheus", UID: "${datasource}"}) {
			t.Errorf("panel %q: datasource %+v, want the datasource variable", p.Title, p.Datasource)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q: no query", p.Title)
		}
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			if tg.RefID == "" || refs[tg.RefID] {
				t.Errorf("panel %q: refId %q empty or used twice", p.Title, tg.RefID)
			}
			refs[tg.RefID] = true
			if tg.Datasource == nil || tg.Datasource.UID != "${datasource}" {
				t.Errorf("panel %q query %s: datasource %+v", p.Title, tg.RefID, tg.Datasource)
			}
			if tg.Instant == tg.Range {
				t.Errorf("panel %q query %s: instant %v, range %v: want one", p.Title, tg.RefID, tg.Instant, tg.Range)
			}
		}
	}
	for _, q := range d.Queries() {
		names := checkQuery(t, q.String(), q.Expr)
		// Every query follows the job and instance variables, and those
		// of metrics with a source label the source variable.
		if !strings.Contains(q.Expr, `job=~"$job"`) || !strings.Contains(q.Expr, `instance=~"$instance"`) {
			t.Errorf("%s: %q ignores $job or $instance", q, q.Expr)
		}
		for _, n := range names {
			perSource := strings.HasPrefix(n, "kevent_") && n != "kevent_exporter_build_info" && !strings.HasPrefix(n, "kevent_config_")
			if perSource && !strings.Contains(q.Expr, `source=~"$source"`) {
				t.Errorf("%s: %q ignores $source", q, q.Expr)
			}
		}
	}
}

// checkQuery parses a query, its variables substituted, with Prometheus's
// PromQL parser and returns the metrics it names. ../live checks that the
// exporter exposes them and that the query returns data.
func checkQuery(t *testing.T, what, q string) []string {
	t.Helper()
	expr, err := monitoring.Substitute(q)
	if err != nil {
		t.Errorf("%s: %v", what, err)
		return nil
	}
	e, err := monitoring.Parse(expr)
	if err != nil {
		t.Errorf("%s: %q does not parse: %v", what, expr, err)
		return nil
	}
	names, err := monitoring.MetricNames(e)
	if err != nil || len(names) == 0 {
		t.Errorf("%s: %q: metrics %v, %v", what, expr, names, err)
	}
	return names
}
