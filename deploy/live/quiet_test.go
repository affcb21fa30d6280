package live

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"go.yaml.in/yaml/v3"
	"golang.org/x/sys/unix"

	"github.com/kevent-exporter/kevent_exporter/deploy/internal/monitoring"
	"github.com/kevent-exporter/kevent_exporter/internal/e2e"
	"github.com/kevent-exporter/kevent_exporter/internal/testenv"
)

const (
	defaultConfigFile = "../../config/default.yml"
	configMapFile     = "../kubernetes/base/configmap.yaml"
	// quietInstance is the instance label the scraped series get.
	quietInstance = "node1:9736"
)

// TestShippedRulesOnRealMetrics runs the exporter as shipped, on this
// host: in the package's network namespace, a node without the reference
// module, the seed module, or the thermal, ACPI and quota families (which
// only the initial namespace has); in the host's, a node's own. Its metrics, scraped once everything
// settled, are held for 20 minutes as promtool's input series under the
// shipped rules files: no alert fires, with the default configuration or
// the DaemonSet's, as root or as the DaemonSet's unprivileged user. With a
// module source marked required, or a source the exporter is not
// permitted to join, that source's alert fires, and only it.
func TestShippedRulesOnRealMetrics(t *testing.T) {
	testenv.RequireRoot(t, "the exporter runs in a private network namespace, and as another user")
	promtoolBin, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool not in PATH: install Debian's prometheus package (deploy/check.sh does)")
	}
	if fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW, 29); err == nil {
		unix.Close(fd)
		t.Fatal("netlink protocol 29 is registered on this host; this test needs a node without the seed module")
	}
	if fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW, unix.NETLINK_XFRM); err != nil {
		t.Fatalf("this test needs NETLINK_XFRM registered, for a source only CAP_NET_ADMIN may join: %v", err)
	} else {
		unix.Close(fd)
	}
	defaultFile, err := filepath.Abs(defaultConfigFile)
	if err != nil {
		t.Fatal(err)
	}
	defaultYAML, err := os.ReadFile(defaultFile)
	if err != nil {
		t.Fatal(err)
	}
	daemonSet := configMapConfig(t)
	// As the DaemonSet runs it: uid and gid 65534, no capabilities.
	nobody := &syscall.Credential{Uid: 65534, Gid: 65534}
	required := editSources(t, daemonSet, func(s *yaml.Node) {
		setKey(t, sourceNamed(t, s, "kevent"), "required", "true")
	})
	denied := editSources(t, daemonSet, func(s *yaml.Node) {
		s.Content = append(s.Content, yamlValue(t, "{name: xfrm, protocol: xfrm, groups: [1], decoder: raw}"))
	})

	for _, c := range []struct {
		name   string
		opts   e2e.Options
		config []byte
		// alerts are the alerts that must fire, as "alertname source".
		alerts []string
	}{
		{name: "default config file as root", opts: e2e.Options{Args: []string{"--config.file=" + defaultFile}}, config: defaultYAML},
		{name: "embedded default config unprivileged", opts: e2e.Options{Credential: nobody}, config: defaultYAML},
		{name: "DaemonSet config", opts: e2e.Options{Config: string(daemonSet), Credential: nobody}, config: daemonSet},
		// hostNetwork, as the DaemonSet: the initial namespace's families
		// (thermal, ACPI, quota) are there. Only states are checked,
		// which traffic on the host cannot change.
		{
			name: "DaemonSet config in the host's network namespace",
			opts: e2e.Options{
				Config:  string(daemonSet),
				Wrapper: []string{"nsenter", "--net=" + testenv.HostNetns(), "--setuid=65534", "--setgid=65534", "--"},
				Netns:   testenv.HostNetns(),
			},
			config: daemonSet,
		},
		{
			name:   "DaemonSet config with the kevent module required",
			opts:   e2e.Options{Config: string(required), Credential: nobody},
			config: required,
			alerts: []string{"KeventSourceRequiredMissing kevent"},
		},
		{
			name:   "DaemonSet config with a source that needs CAP_NET_ADMIN",
			opts:   e2e.Options{Config: string(denied), Credential: nobody},
			config: denied,
			alerts: []string{"KeventSourceDenied xfrm"},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.opts.Binary = exporterBinary
			e := e2e.Start(t, c.opts)
			sources := sourceNames(t, c.config)
			mfs := settled(t, e, sources)
			var states []string
			for _, src := range sources {
				for _, st := range []string{"up", "waiting", "denied", "failed"} {
					if v, _ := e2e.Value(mfs, "kevent_source_state", "source", src, "state", st); v == 1 {
						states = append(states, src+"="+st)
					}
				}
			}
			t.Logf("source states: %s", strings.Join(states, " "))
			dir := t.TempDir()
			file := filepath.Join(dir, "test.yml")
			if err := os.WriteFile(file, promtoolTest(t, mfs, c.alerts), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(promtoolBin, "test", "rules", file).CombinedOutput()
			if err != nil {
				b, _ := os.ReadFile(file)
				t.Fatalf("promtool test rules: %v\n%s\ntest file:\n%s\nexporter log:\n%s", err, out, b, e.Logs)
			}
		})
	}
}

// configMapConfig returns the DaemonSet's configuration: the config.yml of
// the kustomize base's ConfigMap.
func configMapConfig(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(configMapFile)
	if err != nil {
		t.Fatal(err)
	}
	var cm struct {
		Data map[string]string `yaml:"data"`
	}
	if err := yaml.Unmarshal(b, &cm); err != nil {
		t.Fatal(err)
	}
	config, ok := cm.Data["config.yml"]
	if !ok {
		t.Fatalf("%s has no config.yml", configMapFile)
	}
	return []byte(config)
}

// sourcesNode returns the sources list of a configuration document.
func sourcesNode(t *testing.T, doc *yaml.Node) *yaml.Node {
	t.Helper()
	root := doc.Content[0]
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == "sources" {
			return root.Content[i+1]
		}
	}
	t.Fatal("configuration has no sources")
	return nil
}

// editSources returns config with its sources list changed by edit.
func editSources(t *testing.T, config []byte, edit func(sources *yaml.Node)) []byte {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal(config, &doc); err != nil {
		t.Fatal(err)
	}
	edit(sourcesNode(t, &doc))
	b, err := yaml.Marshal(&doc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sourceNames returns the names of a configuration's sources.
func sourceNames(t *testing.T, config []byte) []string {
	t.Helper()
	var c struct {
		Sources []struct {
			Name string `yaml:"name"`
		} `yaml:"sources"`
	}
	if err := yaml.Unmarshal(config, &c); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range c.Sources {
		names = append(names, s.Name)
	}
	return names
}

// sourceNamed returns the source called name of a sources list.
func sourceNamed(t *testing.T, sources *yaml.Node, name string) *yaml.Node {
	t.Helper()
	for _, s := range sources.Content {
		for i := 0; i+1 < len(s.Content); i += 2 {
			if s.Content[i].Value == "name" && s.Content[i+1].Value == name {
				return s
			}
		}
	}
	t.Fatalf("no source %s", name)
	return nil
}

// setKey sets key to a scalar value in mapping m.
func setKey(t *testing.T, m *yaml.Node, key, value string) {
	t.Helper()
	m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: key}, yamlValue(t, value))
}

// yamlValue parses a YAML value into a node.
func yamlValue(t *testing.T, s string) *yaml.Node {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(s), &doc); err != nil {
		t.Fatal(err)
	}
	return doc.Content[0]
}

// settled scrapes e once every source is up or has logged why it is not:
// until then a source that will be denied or fail still shows its
// initial state, waiting.
func settled(t *testing.T, e *e2e.Exporter, sources []string) map[string]*dto.MetricFamily {
	t.Helper()
	var mfs map[string]*dto.MetricFamily
	e2e.Eventually(t, "every source is up or has logged why not", func() bool {
		var err error
		mfs, err = e.TryScrape()
		if err != nil {
			return false
		}
		logs := e.Logs.String()
		for _, s := range sources {
			if v, _ := e2e.Value(mfs, "kevent_source_state", "source", s, "state", "up"); v == 1 {
				continue
			}
			if !loggedTrouble(logs, s) {
				return false
			}
		}
		return true
	})
	return mfs
}

// loggedTrouble reports whether logs has a warning or error about source.
func loggedTrouble(logs, source string) bool {
	for _, l := range strings.Split(logs, "\n") {
		if (strings.HasPrefix(l, "level=warn ") || strings.HasPrefix(l, "level=error ")) && strings.Contains(l, " source="+source+" ") {
			return true
		}
	}
	return false
}

// unitTest is a promtool test file.
type unitTest struct {
	RuleFiles          []string   `yaml:"rule_files"`
	EvaluationInterval string     `yaml:"evaluation_interval"`
	Tests              []testCase `yaml:"tests"`
}

type testCase struct {
	Name          string          `yaml:"name"`
	Interval      string          `yaml:"interval"`
	InputSeries   []inputSeries   `yaml:"input_series"`
	AlertRuleTest []alertRuleTest `yaml:"alert_rule_test"`
}

type inputSeries struct {
	Series string `yaml:"series"`
	Values string `yaml:"values"`
}

type alertRuleTest struct {
	EvalTime  string     `yaml:"eval_time"`
	Alertname string     `yaml:"alertname"`
	ExpAlerts []expAlert `yaml:"exp_alerts"`
}

type expAlert struct {
	ExpLabels      map[string]string `yaml:"exp_labels"`
	ExpAnnotations map[string]string `yaml:"exp_annotations"`
}

// quietMinutes is how long the scraped values are held: longer than any
// rule's "for".
const quietMinutes = 20

// promtoolTest makes a promtool test of the shipped rules files whose
// input is the scraped metrics, held for quietMinutes, with the target up:
// at the end, the alerts named in want ("alertname source") fire, and no
// other.
func promtoolTest(t *testing.T, mfs map[string]*dto.MetricFamily, want []string) []byte {
	t.Helper()
	var series []inputSeries
	hold := func(name string, labels map[string]string, v float64) {
		labels["job"], labels["instance"] = "kevent-exporter", quietInstance
		keys := make([]string, 0, len(labels))
		for k := range labels {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		pairs := make([]string, len(keys))
		for i, k := range keys {
			pairs[i] = k + "=" + strconv.Quote(labels[k])
		}
		series = append(series, inputSeries{
			Series: name + "{" + strings.Join(pairs, ", ") + "}",
			Values: fmt.Sprintf("%sx%d", strconv.FormatFloat(v, 'f', -1, 64), quietMinutes),
		})
	}
	hold("up", map[string]string{}, 1)
	names := make([]string, 0, len(mfs))
	for n := range mfs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		for _, m := range mfs[n].GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			switch mfs[n].GetType() {
			case dto.MetricType_COUNTER:
				hold(n, labels, m.GetCounter().GetValue())
			case dto.MetricType_GAUGE:
				hold(n, labels, m.GetGauge().GetValue())
			case dto.MetricType_UNTYPED:
				hold(n, labels, m.GetUntyped().GetValue())
			default:
				// Summaries and histograms: the Go runtime's, which no
				// rule reads.
			}
		}
	}

	rulesFiles := []string{rulesFile, examplesFile}
	ut := unitTest{EvaluationInterval: "1m"}
	var tests []alertRuleTest
	fired := map[string]bool{}
	for _, f := range rulesFiles {
		abs, err := filepath.Abs(f)
		if err != nil {
			t.Fatal(err)
		}
		ut.RuleFiles = append(ut.RuleFiles, abs)
		rules, err := monitoring.LoadRules(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rules {
			art := alertRuleTest{EvalTime: fmt.Sprintf("%dm", quietMinutes), Alertname: r.Alert, ExpAlerts: []expAlert{}}
			for _, w := range want {
				alert, source, _ := strings.Cut(w, " ")
				if alert != r.Alert {
					continue
				}
				fired[w] = true
				art.ExpAlerts = append(art.ExpAlerts, expectedAlert(t, mfs, r, source))
			}
			tests = append(tests, art)
		}
	}
	for _, w := range want {
		if !fired[w] {
			t.Fatalf("%s: no such alert in the rules files", w)
		}
	}
	ut.Tests = []testCase{{Name: "the shipped rules on a real exporter's metrics", Interval: "1m", InputSeries: series, AlertRuleTest: tests}}
	b, err := yaml.Marshal(ut)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// templateLabel is how the alerts' annotations name a label.
var templateLabel = regexp.MustCompile(`\{\{ \$labels\.([a-z_]+) \}\}`)

// expectedAlert is alert rule r firing for source: with the source's
// current state (whose series the source alerts select) and the rule's
// annotations rendered with those labels.
func expectedAlert(t *testing.T, mfs map[string]*dto.MetricFamily, r monitoring.Rule, source string) expAlert {
	t.Helper()
	var state string
	for _, st := range []string{"up", "waiting", "denied", "failed"} {
		if v, _ := e2e.Value(mfs, "kevent_source_state", "source", source, "state", st); v == 1 {
			state = st
		}
	}
	if state == "" {
		t.Fatalf("source %s has no state", source)
	}
	labels := map[string]string{"job": "kevent-exporter", "instance": quietInstance, "source": source, "state": state}
	for k, v := range r.Labels {
		labels[k] = v
	}
	annotations := map[string]string{}
	for k, v := range r.Annotations {
		v = templateLabel.ReplaceAllStringFunc(v, func(m string) string {
			return labels[templateLabel.FindStringSubmatch(m)[1]]
		})
		if strings.Contains(v, "{{") {
			t.Fatalf("%s: annotation %s: cannot render %q", r.Alert, k, v)
		}
		annotations[k] = v
	}
	return expAlert{ExpLabels: labels, ExpAnnotations: annotations}
}
