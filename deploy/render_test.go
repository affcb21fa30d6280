package deploy

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/kevent-exporter/kevent_exporter/internal/e2e"
)

// object is a rendered manifest: its YAML and its typed, strictly decoded
// form.
type object struct {
	Kind, Namespace, Name string
	YAML                  []byte
	Typed                 runtime.Object
	// Tree is the manifest as YAML decodes it into Go values.
	Tree map[string]any
}

func (o object) id() string { return o.Kind + " " + o.Namespace + "/" + o.Name }

// decoder decodes manifests strictly into the API types of the kinds the
// deployment uses: an unknown or duplicate field, a field in the wrong
// case, or a kind without a type here is an error.
var decoder = func() runtime.Decoder {
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, appsv1.AddToScheme, monitoringv1.AddToScheme} {
		if err := add(scheme); err != nil {
			panic(err)
		}
	}
	return kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, scheme, scheme,
		kjson.SerializerOptions{Yaml: true, Strict: true})
}()

// decodeStream splits a multi-document YAML stream and decodes each
// document strictly.
func decodeStream(stream []byte) ([]object, error) {
	var objs []object
	for i, doc := range splitYAML(stream) {
		typed, gvk, err := decoder.Decode(doc, nil, nil)
		if err != nil {
			return nil, fmt.Errorf("document %d: %v\n%s", i, err, doc)
		}
		var tree map[string]any
		if err := yaml.Unmarshal(doc, &tree); err != nil {
			return nil, fmt.Errorf("document %d: %v", i, err)
		}
		meta, _ := tree["metadata"].(map[string]any)
		ns, _ := meta["namespace"].(string)
		name, _ := meta["name"].(string)
		objs = append(objs, object{Kind: gvk.Kind, Namespace: ns, Name: name, YAML: doc, Typed: typed, Tree: tree})
	}
	return objs, nil
}

// splitYAML returns the documents of a YAML stream that hold more than
// comments.
func splitYAML(stream []byte) [][]byte {
	var docs [][]byte
	var doc []byte
	content := false
	flush := func() {
		if content {
			docs = append(docs, doc)
		}
		doc, content = nil, false
	}
	for _, line := range strings.SplitAfter(string(stream), "\n") {
		if line == "---" || strings.HasPrefix(line, "---\n") || strings.HasPrefix(line, "--- ") {
			flush()
			continue
		}
		if t := strings.TrimSpace(line); t != "" && !strings.HasPrefix(t, "#") {
			content = true
		}
		doc = append(doc, line...)
	}
	flush()
	return docs
}

// kustomizeDir renders a kustomization under kubernetes/ with the
// kustomize API (the kustomize that kubectl and the CLI embed).
func kustomizeDir(t *testing.T, dir string) []object {
	t.Helper()
	return kustomizeFS(t, filesys.MakeFsOnDisk(), filepath.Join("kubernetes", dir))
}

func kustomizeFS(t *testing.T, fsys filesys.FileSystem, dir string) []object {
	t.Helper()
	res, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(fsys, dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	out, err := res.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	objs, err := decodeStream(out)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	return objs
}

// allComponents renders the base with every component: a kustomization
// that only the test makes (no one should apply the example alerts and
// every privilege at once).
func allComponents(t *testing.T) []object {
	t.Helper()
	fsys := filesys.MakeFsInMemory()
	err := filepath.WalkDir("kubernetes", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return fsys.WriteFile("/"+path, b)
	})
	if err != nil {
		t.Fatal(err)
	}
	var k strings.Builder
	k.WriteString("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [../kubernetes/base]\ncomponents:\n")
	for _, c := range components(t) {
		fmt.Fprintf(&k, "  - ../kubernetes/components/%s\n", c)
	}
	if err := fsys.WriteFile("/all/kustomization.yaml", []byte(k.String())); err != nil {
		t.Fatal(err)
	}
	return kustomizeFS(t, fsys, "/all")
}

func components(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir("kubernetes/components")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func overlays(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir("kubernetes/overlays")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// goTool runs a tool of the deploy module's go.mod (helm), from deploy/.
func goTool(t *testing.T, args ...string) []byte {
	t.Helper()
	cmd := exec.Command("go", append([]string{"tool"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go tool %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.Bytes())
	}
	return out
}

const chart = "helm/kevent-exporter"

// helmTemplate renders the chart as release kevent-exporter in namespace
// monitoring, which gives the names and namespace of deploy/kubernetes.
func helmTemplate(t *testing.T, args ...string) []object {
	t.Helper()
	out := goTool(t, append([]string{"helm", "template", "kevent-exporter", chart, "--namespace", "monitoring"}, args...)...)
	objs, err := decodeStream(out)
	if err != nil {
		t.Fatalf("helm template %s: %v", strings.Join(args, " "), err)
	}
	return objs
}

func find(t *testing.T, objs []object, kind, name string) object {
	t.Helper()
	for _, o := range objs {
		if o.Kind == kind && o.Name == name {
			return o
		}
	}
	t.Fatalf("no %s %s among %v", kind, name, ids(objs))
	return object{}
}

func ids(objs []object) []string {
	var s []string
	for _, o := range objs {
		s = append(s, o.id())
	}
	return s
}

// exporter builds the exporter from the parent directory, once per test
// binary.
func exporter(t *testing.T) string {
	t.Helper()
	exporterOnce.Do(func() {
		exporterBin, exporterCleanup, exporterErr = e2e.Build("..")
	})
	if exporterErr != nil {
		t.Fatal(exporterErr)
	}
	return exporterBin
}

var (
	exporterOnce    sync.Once
	exporterBin     string
	exporterCleanup = func() {}
	exporterErr     error
)

func TestMain(m *testing.M) {
	code := m.Run()
	exporterCleanup()
	os.Exit(code)
}
