package deploy

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/kevent-exporter/kevent_exporter/deploy/internal/generate"
	"github.com/kevent-exporter/kevent_exporter/internal/e2e"
)

// TestGeneratedFilesUpToDate: the files that repeat config/default.yml and
// the rules files are what `go generate` makes from them.
func TestGeneratedFilesUpToDate(t *testing.T) {
	files, err := generate.Files(".")
	if err != nil {
		t.Fatal(err)
	}
	for rel, want := range files {
		got, err := os.ReadFile(rel)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s is not what `go generate` makes from its source (%v): run `cd deploy && go generate`", rel, err)
		}
	}
}

// TestStrictDecodingRejectsUnknownFields shows that the decoding the other
// tests rely on catches a misspelt or miscased field and an unknown kind.
func TestStrictDecodingRejectsUnknownFields(t *testing.T) {
	base, err := os.ReadFile("kubernetes/base/daemonset.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := decodeStream(base); err != nil {
		t.Fatalf("daemonset.yaml: %v", err)
	}
	sm, err := os.ReadFile("kubernetes/components/servicemonitor/servicemonitor.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ name, doc string }{
		{"unknown field", strings.Replace(string(base), "hostNetwork: true", "hostNetwork: true\n      hostNetwrk: true", 1)},
		{"field in the wrong case", strings.Replace(string(base), "hostNetwork: true", "HostNetwork: true", 1)},
		{"duplicate field", strings.Replace(string(base), "hostNetwork: true", "hostNetwork: true\n      hostNetwork: false", 1)},
		{"unknown ServiceMonitor field", strings.Replace(string(sm), "jobLabel:", "jobLabels:", 1)},
		{"unknown kind", "apiVersion: v1\nkind: Servce\nmetadata: {name: x}\n"},
	} {
		if c.doc == string(base) || c.doc == string(sm) {
			t.Fatalf("%s: the replacement did not apply", c.name)
		}
		if _, err := decodeStream([]byte(c.doc)); err == nil {
			t.Errorf("%s: decoded without error", c.name)
		} else {
			t.Logf("%s: %v", c.name, firstLine(err.Error()))
		}
	}
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

// TestKustomize renders the base, every overlay and every component with
// the kustomize API, decodes each object strictly into its API type, and
// checks what each overlay is for.
func TestKustomize(t *testing.T) {
	base := kustomizeDir(t, ".")
	if got, want := ids(base), []string{
		"ConfigMap monitoring/kevent-exporter-config", "DaemonSet monitoring/kevent-exporter", "Service monitoring/kevent-exporter",
	}; !sameSet(got, want) {
		t.Errorf("base objects %v, want %v", got, want)
	}
	ds := daemonSet(t, base)
	pod := ds.Spec.Template.Spec
	c := pod.Containers[0]
	if !pod.HostNetwork || pod.HostPID || *pod.SecurityContext.RunAsNonRoot != true || *pod.SecurityContext.RunAsUser != 65534 ||
		len(c.SecurityContext.Capabilities.Add) != 0 || *c.SecurityContext.AllowPrivilegeEscalation ||
		!*c.SecurityContext.ReadOnlyRootFilesystem {
		t.Errorf("base: not unprivileged in the host network: %+v %+v", pod.SecurityContext, c.SecurityContext)
	}

	for _, name := range overlays(t) {
		objs := kustomizeDir(t, filepath.Join("overlays", name))
		pod := daemonSet(t, objs).Spec.Template.Spec
		sc := pod.Containers[0].SecurityContext
		rootWith := func(caps ...corev1.Capability) bool {
			return *pod.SecurityContext.RunAsUser == 0 && !*pod.SecurityContext.RunAsNonRoot &&
				reflect.DeepEqual(sc.Capabilities.Add, caps) &&
				reflect.DeepEqual(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) &&
				!*sc.AllowPrivilegeEscalation && *sc.ReadOnlyRootFilesystem
		}
		netAdmin := rootWith("NET_ADMIN")
		operator := len(objs) == len(base)+2
		switch name {
		case "prometheus-operator":
			find(t, objs, "ServiceMonitor", "kevent-exporter")
			find(t, objs, "PrometheusRule", "kevent-exporter")
			if !operator || netAdmin || pod.HostPID {
				t.Errorf("%s: want the base plus a ServiceMonitor and a PrometheusRule, unprivileged: %v", name, ids(objs))
			}
		case "net-admin":
			if operator || !netAdmin || pod.HostPID {
				t.Errorf("%s: want root with only CAP_NET_ADMIN, no host PID namespace: %+v %+v", name, pod.SecurityContext, sc)
			}
		case "drop-monitor":
			if operator || !rootWith("SYS_ADMIN", "NET_ADMIN") || pod.HostPID {
				t.Errorf("%s: want root with only CAP_NET_ADMIN and CAP_SYS_ADMIN, no host PID namespace: %+v %+v", name, pod.SecurityContext, sc)
			}
		case "audit":
			if operator || !rootWith("AUDIT_READ") || pod.HostPID || !pod.HostNetwork {
				t.Errorf("%s: want root with only CAP_AUDIT_READ in the host network namespace: %+v %+v", name, pod.SecurityContext, sc)
			}
		case "proc-connector":
			if operator || !netAdmin || !pod.HostPID {
				t.Errorf("%s: want the host PID namespace and CAP_NET_ADMIN: %+v %+v", name, pod.SecurityContext, sc)
			}
		default:
			t.Errorf("overlay %s: not known to this test; say what it must render", name)
		}
	}

	all := allComponents(t)
	sm := find(t, all, "ServiceMonitor", "kevent-exporter").Typed.(*monitoringv1.ServiceMonitor)
	svc := find(t, all, "Service", "kevent-exporter").Typed.(*corev1.Service)
	checkServiceMonitor(t, sm, svc)
	for _, name := range []string{"kevent-exporter", "kevent-exporter-examples"} {
		find(t, all, "PrometheusRule", name)
	}
}

// checkServiceMonitor: the ServiceMonitor selects the Service, scrapes its
// metrics port, names the job kevent-exporter and keeps the node's name.
func checkServiceMonitor(t *testing.T, sm *monitoringv1.ServiceMonitor, svc *corev1.Service) {
	t.Helper()
	for k, v := range sm.Spec.Selector.MatchLabels {
		if svc.Labels[k] != v {
			t.Errorf("ServiceMonitor selects %s=%s, which the Service's labels %v lack", k, v, svc.Labels)
		}
	}
	if sm.Spec.JobLabel != "app.kubernetes.io/name" || svc.Labels[sm.Spec.JobLabel] != "kevent-exporter" {
		t.Errorf("job label %q: the Service's %q, want kevent-exporter (the alerts select job=\"kevent-exporter\")",
			sm.Spec.JobLabel, svc.Labels[sm.Spec.JobLabel])
	}
	if len(sm.Spec.Endpoints) != 1 || sm.Spec.Endpoints[0].Port != svc.Spec.Ports[0].Name || svc.Spec.ClusterIP != "None" {
		t.Errorf("ServiceMonitor endpoints %+v, Service ports %+v", sm.Spec.Endpoints, svc.Spec.Ports)
	}
	keepsNode := false
	for _, r := range sm.Spec.Endpoints[0].RelabelConfigs {
		if len(r.SourceLabels) == 1 && r.SourceLabels[0] == "__meta_kubernetes_pod_node_name" && r.TargetLabel == "node" &&
			(r.Action == "" || strings.EqualFold(r.Action, "replace")) {
			keepsNode = true
		}
	}
	if !keepsNode {
		t.Errorf("ServiceMonitor does not keep the node name as label node: %+v", sm.Spec.Endpoints[0].RelabelConfigs)
	}
}

func daemonSet(t *testing.T, objs []object) *appsv1.DaemonSet {
	t.Helper()
	return find(t, objs, "DaemonSet", "kevent-exporter").Typed.(*appsv1.DaemonSet)
}

func sameSet(a, b []string) bool {
	a, b = append([]string(nil), a...), append([]string(nil), b...)
	sort.Strings(a)
	sort.Strings(b)
	return reflect.DeepEqual(a, b)
}

// allSwitches turns on every switch of the chart.
var allSwitches = []string{
	"serviceMonitor.enabled=true", "prometheusRule.enabled=true", "prometheusRule.examples=true",
	"privileges.netAdmin=true", "privileges.hostPID=true", "privileges.auditRead=true", "privileges.dropMonitor=true",
}

func setArgs(sets ...string) []string {
	var args []string
	for _, s := range sets {
		args = append(args, "--set", s)
	}
	return args
}

// TestHelmLint runs helm lint --strict on the defaults, on every switch
// on, and on the chart-testing values in ci/.
func TestHelmLint(t *testing.T) {
	goTool(t, "helm", "lint", "--strict", chart)
	goTool(t, append([]string{"helm", "lint", "--strict", chart}, setArgs(allSwitches...)...)...)
	ci, err := filepath.Glob(filepath.Join(chart, "ci", "*-values.yaml"))
	if err != nil || len(ci) == 0 {
		t.Fatalf("no ci/*-values.yaml: %v", err)
	}
	for _, f := range ci {
		goTool(t, "helm", "lint", "--strict", chart, "-f", f)
		objs := helmTemplate(t, "-f", f)
		t.Logf("%s: %v", f, ids(objs))
	}
}

// TestHelmMatchesKustomize renders the chart with helm template and
// compares it with the kustomize objects for the same choices: every field
// kustomize renders, Helm renders with the same value; Helm adds only its
// release labels and selectors and the config checksum.
func TestHelmMatchesKustomize(t *testing.T) {
	for _, c := range []struct {
		name      string
		sets      []string
		kustomize func(t *testing.T) []object
	}{
		{"defaults / base", nil, func(t *testing.T) []object { return kustomizeDir(t, ".") }},
		{"serviceMonitor and prometheusRule / overlays/prometheus-operator",
			[]string{"serviceMonitor.enabled=true", "prometheusRule.enabled=true"},
			func(t *testing.T) []object { return kustomizeDir(t, "overlays/prometheus-operator") }},
		{"privileges.netAdmin / overlays/net-admin", []string{"privileges.netAdmin=true"},
			func(t *testing.T) []object { return kustomizeDir(t, "overlays/net-admin") }},
		{"privileges.auditRead / overlays/audit", []string{"privileges.auditRead=true"},
			func(t *testing.T) []object { return kustomizeDir(t, "overlays/audit") }},
		{"privileges.netAdmin and hostPID / overlays/proc-connector", []string{"privileges.netAdmin=true", "privileges.hostPID=true"},
			func(t *testing.T) []object { return kustomizeDir(t, "overlays/proc-connector") }},
		{"privileges.dropMonitor / overlays/drop-monitor", []string{"privileges.dropMonitor=true"},
			func(t *testing.T) []object { return kustomizeDir(t, "overlays/drop-monitor") }},
		{"every switch / every component", allSwitches, allComponents},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := helmTemplate(t, setArgs(c.sets...)...)
			k := c.kustomize(t)
			if !sameSet(ids(h), ids(k)) {
				t.Fatalf("helm renders %v, kustomize %v", ids(h), ids(k))
			}
			for _, ko := range k {
				ho := find(t, h, ko.Kind, ko.Name)
				for _, d := range compareTrees(flatten(ko.Tree), flatten(ho.Tree)) {
					t.Errorf("%s: %s", ko.id(), d)
				}
			}
			if t.Failed() {
				return
			}
			sm := find(t, h, "DaemonSet", "kevent-exporter")
			if _, ok := sm.Typed.(*appsv1.DaemonSet).Spec.Template.Annotations["checksum/config"]; !ok {
				t.Error("helm: no checksum/config annotation on the pod template")
			}
		})
	}
}

// helmOnly are the fields Helm may render and kustomize not: the release
// labels (its selectors hold app.kubernetes.io/instance, so that two
// releases do not select each other's pods) and the configuration's
// checksum, which rolls the pods when it changes.
var helmOnly = regexp.MustCompile(`(^|\.)(labels|matchLabels|selector)\.(app\.kubernetes\.io/(instance|version|managed-by)|helm\.sh/chart)$` +
	`|^spec\.template\.metadata\.annotations\.checksum/config$`)

// compareTrees lists the differences between kustomize's flattened object k
// and Helm's h.
func compareTrees(k, h map[string]any) []string {
	var diffs []string
	for path, kv := range k {
		hv, ok := h[path]
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("%s = %v in kustomize, missing in helm", path, kv))
		case !reflect.DeepEqual(kv, hv):
			diffs = append(diffs, fmt.Sprintf("%s = %#v in kustomize, %#v in helm", path, kv, hv))
		}
	}
	for path, hv := range h {
		if _, ok := k[path]; !ok && !helmOnly.MatchString(path) {
			diffs = append(diffs, fmt.Sprintf("%s = %v only in helm", path, hv))
		}
	}
	sort.Strings(diffs)
	return diffs
}

// flatten maps each leaf of a decoded YAML tree to its path: a.b[0].c.
// Empty maps and lists are leaves.
func flatten(tree any) map[string]any {
	out := make(map[string]any)
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		switch v := v.(type) {
		case map[string]any:
			if len(v) == 0 {
				out[prefix] = v
			}
			for k, e := range v {
				p := k
				if prefix != "" {
					p = prefix + "." + k
				}
				walk(p, e)
			}
		case []any:
			if len(v) == 0 {
				out[prefix] = v
			}
			for i, e := range v {
				walk(fmt.Sprintf("%s[%d]", prefix, i), e)
			}
		default:
			out[prefix] = v
		}
	}
	walk("", tree)
	return out
}

// TestHelmSwitches: every switch is off by default, and each does what
// values.yaml says.
func TestHelmSwitches(t *testing.T) {
	def := helmTemplate(t)
	pod := daemonSet(t, def).Spec.Template.Spec
	if pod.HostPID || *pod.SecurityContext.RunAsUser != 65534 || len(pod.Containers[0].SecurityContext.Capabilities.Add) != 0 {
		t.Errorf("defaults: privileged pod %+v", pod.SecurityContext)
	}
	for _, o := range def {
		if o.Kind == "ServiceMonitor" || o.Kind == "PrometheusRule" {
			t.Errorf("defaults render %s", o.id())
		}
	}

	all := helmTemplate(t, setArgs(allSwitches...)...)
	checkServiceMonitor(t, find(t, all, "ServiceMonitor", "kevent-exporter").Typed.(*monitoringv1.ServiceMonitor),
		find(t, all, "Service", "kevent-exporter").Typed.(*corev1.Service))

	// The rules in the PrometheusRules are the rules files, group for group.
	for name, file := range map[string]string{
		"kevent-exporter":          "prometheus/kevent_exporter.rules.yml",
		"kevent-exporter-examples": "prometheus/kevent_exporter.examples.rules.yml",
	} {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var want monitoringv1.PrometheusRuleSpec
		if err := yaml.UnmarshalStrict(b, &want); err != nil {
			t.Fatalf("%s as a PrometheusRule spec: %v", file, err)
		}
		got := find(t, all, "PrometheusRule", name).Typed.(*monitoringv1.PrometheusRule).Spec
		if !reflect.DeepEqual(got, want) || len(want.Groups) == 0 {
			t.Errorf("PrometheusRule %s is not %s", name, file)
		}
	}

	// A new configuration changes the pods' checksum annotation, so that
	// the DaemonSet rolls them; other values do not.
	checksum := func(sets ...string) string {
		return daemonSet(t, helmTemplate(t, setArgs(sets...)...)).Spec.Template.Annotations["checksum/config"]
	}
	d, c, o := checksum(), checksum("config=sources: []\n"), checksum("port=9999")
	if d == "" || d == c || d != o {
		t.Errorf("checksum/config: default %q, new config %q (must differ), new port %q (must not)", d, c, o)
	}

	// The default configuration is the exporter's, as the ConfigMap of
	// deploy/kubernetes has it.
	want, err := os.ReadFile("../config/default.yml")
	if err != nil {
		t.Fatal(err)
	}
	got := find(t, def, "ConfigMap", "kevent-exporter-config").Typed.(*corev1.ConfigMap).Data["config.yml"]
	if got != string(want) {
		t.Errorf("helm's default config.yml is not config/default.yml:\n%s", got)
	}
	custom := "sources:\n  - name: u\n    protocol: kobject_uevent\n    groups: [1]\n    decoder: uevent\n"
	got = find(t, helmTemplate(t, "--set-string", "config="+custom), "ConfigMap", "kevent-exporter-config").
		Typed.(*corev1.ConfigMap).Data["config.yml"]
	if got != custom {
		t.Errorf("config value %q rendered as %q", custom, got)
	}
}

// TestRenderedConfigsCheck runs the exporter's --config.check on the
// configuration of every rendered ConfigMap.
func TestRenderedConfigsCheck(t *testing.T) {
	bin := exporter(t)
	configs := map[string]string{}
	add := func(what string, objs []object) {
		for _, o := range objs {
			if cm, ok := o.Typed.(*corev1.ConfigMap); ok {
				configs[what+" "+o.id()] = cm.Data["config.yml"]
			}
		}
	}
	add("kustomize base", kustomizeDir(t, "."))
	add("helm defaults", helmTemplate(t))
	ci, _ := filepath.Glob(filepath.Join(chart, "ci", "*-values.yaml"))
	for _, f := range ci {
		add("helm "+f, helmTemplate(t, "-f", f))
	}
	for what, config := range configs {
		path := e2e.WriteConfig(t, config)
		out, err := exec.Command(bin, "--config.file="+path, "--config.check").CombinedOutput()
		if err != nil {
			t.Errorf("%s: kevent_exporter --config.check: %v\n%s", what, err, out)
		}
	}
	// And the check is real: a bad configuration fails it.
	out, err := exec.Command(bin, "--config.file="+e2e.WriteConfig(t, "sources:\n  - name: x\n"), "--config.check").CombinedOutput()
	if err == nil {
		t.Errorf("--config.check passed a configuration without protocol: %s", out)
	}
}
