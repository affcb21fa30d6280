package decoder_test

import (
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/kevent-exporter/kevent_exporter/decoder"
)

// TestRegistry checks each entry of the registry against itself and the
// exported names: New makes its decoder, Names and Lookup agree, and what
// it reads is consistent.
func TestRegistry(t *testing.T) {
	infos := decoder.Infos()
	if got := len(infos); got != len(decoder.Names) {
		t.Fatalf("%d registry entries, %d names", got, len(decoder.Names))
	}
	for i, d := range infos {
		if decoder.Names[i] != d.Name {
			t.Errorf("Names[%d] = %q, registry entry %d is %q", i, decoder.Names[i], i, d.Name)
		}
		if l, ok := decoder.Lookup(d.Name); !ok || l.Name != d.Name {
			t.Errorf("Lookup(%q) = %q, %t", d.Name, l.Name, ok)
		}
		for _, genl := range []bool{false, true} {
			if dec, err := decoder.New(d.Name, decoder.Options{Genl: genl}); err != nil || dec == nil {
				t.Errorf("New(%q, Genl: %t) = %v, %v", d.Name, genl, dec, err)
			}
		}
		switch {
		case d.Protocol == decoder.NoProtocol && !d.Families:
			t.Errorf("%s reads neither a protocol nor families", d.Name)
		case d.Protocol >= 0 && d.Families:
			t.Errorf("%s reads protocol %d only, and families", d.Name, d.Protocol)
		case d.Family != "" && !d.Families:
			t.Errorf("%s is written for family %s but reads no families", d.Name, d.Family)
		}
		for _, g := range d.Groups {
			// A protocol's groups are numbered, a family's named.
			if (d.Protocol >= 0) != (g.Number > 0) || g.Name == "" {
				t.Errorf("%s: group %+v", d.Name, g)
			}
		}
		if reqs := decoder.Requests(d.Name); (d.Requests != nil) != (len(reqs) > 0) {
			t.Errorf("Requests(%q) = %x", d.Name, reqs)
		}
		// Every decoder says why a message is malformed.
		if p := decoder.Diagnose(d.New(decoder.Options{}), []byte{1}); len(p) != 1 {
			t.Errorf("%s: Diagnose of a 1-byte datagram = %v, want one problem", d.Name, p)
		}
	}
	if _, ok := decoder.Lookup("nosuch"); ok {
		t.Error("Lookup(nosuch) found a decoder")
	}
	if _, err := decoder.New("nosuch", decoder.Options{}); err == nil {
		t.Error("New(nosuch) made a decoder")
	}
}

// TestRegistryFiles checks that each decoder is a file of its own, name.go,
// with a test file, name_test.go, that has a test and a fuzz target: what
// README's "Writing a decoder" asks of a new one. CI fuzzes the targets go
// test -list finds.
func TestRegistryFiles(t *testing.T) {
	for _, name := range decoder.Names {
		if _, err := os.Stat(name + ".go"); err != nil {
			t.Errorf("decoder %s: %v", name, err)
		}
		f, err := parser.ParseFile(token.NewFileSet(), name+"_test.go", nil, 0)
		if err != nil {
			t.Errorf("decoder %s: %v", name, err)
			continue
		}
		var tests, fuzz []string
		for _, decl := range f.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok || fn.Recv != nil {
				continue
			}
			switch n := fn.Name.Name; {
			case strings.HasPrefix(n, "Test"):
				tests = append(tests, n)
			case strings.HasPrefix(n, "Fuzz"):
				fuzz = append(fuzz, n)
			}
		}
		if len(tests) == 0 || len(fuzz) == 0 {
			t.Errorf("%s_test.go has tests %v and fuzz targets %v, want one of each at least", name, tests, fuzz)
		}
	}
}

// readmeTableRows returns the rows of the first Markdown table after
// heading in README.md, as cells.
func readmeTableRows(t *testing.T, readme, heading string) [][]string {
	t.Helper()
	i := strings.Index(readme, "\n"+heading+"\n")
	if i < 0 {
		t.Fatalf("README.md has no heading %q", heading)
	}
	var rows [][]string
	for _, line := range strings.Split(readme[i:], "\n")[1:] {
		switch {
		case strings.HasPrefix(line, "|"):
			rows = append(rows, strings.Split(strings.Trim(line, "|"), " | "))
		case len(rows) > 0:
			// The table's header and separator rows go.
			return rows[2:]
		}
	}
	t.Fatalf("README.md has no table after %q", heading)
	return nil
}

// TestREADMEDecoders checks README's decoder tables against the registry:
// every decoder is described, under its name, and a built-in source says
// the family and groups it reads; the event_names key names the decoders
// that take it.
func TestREADMEDecoders(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	// The decoder in a row's first cell: `raw`, or "links (`rtnetlink`)".
	nameRE := regexp.MustCompile("`([a-z]+)`")
	described := make(map[string]bool)
	for _, table := range []string{"### Decoders", "## Built-in sources"} {
		for _, row := range readmeTableRows(t, readme, table) {
			m := nameRE.FindStringSubmatch(row[0])
			if m == nil {
				t.Errorf("%s: row %q names no decoder", table, row[0])
				continue
			}
			d, ok := decoder.Lookup(m[1])
			if !ok {
				t.Errorf("%s: decoder %q is not in the registry", table, m[1])
				continue
			}
			described[d.Name] = true
			if table != "## Built-in sources" {
				continue
			}
			netlink := row[1]
			var want []string
			if d.Family != "" {
				want = append(want, fmt.Sprintf("family `%s`", d.Family))
			}
			for _, g := range d.Groups {
				if d.Protocol >= 0 && len(d.Groups) == 1 {
					want = append(want, fmt.Sprintf("group %d", g.Number))
				} else {
					want = append(want, "`"+g.Name+"`")
				}
			}
			for _, w := range want {
				if !strings.Contains(netlink, w) {
					t.Errorf("%s: the netlink of %s, %q, does not say %s", table, d.Name, netlink, w)
				}
			}
		}
	}
	for _, name := range decoder.Names {
		if !described[name] {
			t.Errorf("decoder %s is in neither the Decoders nor the Built-in sources table", name)
		}
	}

	var takers []string
	for _, d := range decoder.Infos() {
		if d.EventNames {
			takers = append(takers, d.Name)
		}
	}
	i := slices.IndexFunc(readmeTableRows(t, readme, "## Configuration"), func(row []string) bool { return row[0] == " `event_names`" })
	if i < 0 {
		t.Fatal("README.md's configuration table has no event_names row")
	}
	row := readmeTableRows(t, readme, "## Configuration")[i]
	if want := "The " + strings.Join(takers, " and ") + " decoders"; !strings.HasPrefix(row[1], want) {
		t.Errorf("README.md's event_names row says %q, want it to start %q", row[1], want)
	}
}

// TestREADMEWritingADecoder applies the diff of README's "Writing a
// decoder" to copies of the files it touches and runs the example
// decoder's tests, and the registry's, in a go test of the package that
// sees the copies (-overlay): the example stays true to the code.
func TestREADMEWritingADecoder(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and tests the package again")
	}
	for _, tool := range []string{"git", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("KEVENT_TEST_STRICT") == "1" {
				t.Fatal(err)
			}
			t.Skip(err)
		}
	}
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	section := readme[strings.Index(readme, "\n## Writing a decoder\n")+1:]
	start := strings.Index(section, "```diff\n")
	if start < 0 {
		t.Fatal(`README.md's "Writing a decoder" has no diff`)
	}
	diff := section[start+len("```diff\n"):]
	diff = diff[:strings.Index(diff, "\n```")+1]

	// The copies the diff applies to: the files it changes.
	dir := t.TempDir()
	changed := regexp.MustCompile(`(?m)^\+\+\+ b/(\S+)$`).FindAllStringSubmatch(diff, -1)
	overlay := map[string]string{}
	for _, m := range changed {
		rel := strings.TrimPrefix(m[1], "decoder/")
		if err := os.MkdirAll(filepath.Join(dir, "decoder"), 0o755); err != nil {
			t.Fatal(err)
		}
		if src, err := os.ReadFile(rel); err == nil {
			if err := os.WriteFile(filepath.Join(dir, m[1]), src, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		abs, err := filepath.Abs(rel)
		if err != nil {
			t.Fatal(err)
		}
		overlay[abs] = filepath.Join(dir, m[1])
	}
	apply := exec.Command("git", "apply", "-")
	apply.Dir, apply.Stdin = dir, strings.NewReader(diff)
	if out, err := apply.CombinedOutput(); err != nil {
		t.Fatalf("git apply of README.md's diff: %v\n%s", err, out)
	}
	ov, err := json.Marshal(map[string]any{"Replace": overlay})
	if err != nil {
		t.Fatal(err)
	}
	ovPath := filepath.Join(dir, "overlay.json")
	if err := os.WriteFile(ovPath, ov, 0o644); err != nil {
		t.Fatal(err)
	}
	// The new decoder's tests, and those that take in every registered
	// decoder and read no files (an overlay is the go command's view, not
	// the tests').
	test := exec.Command("go", "test", "-overlay", ovPath, "-count=1", "-run", "^(TestNlctrl|TestRegistry|TestDiagnose|TestDecodeAllocatesNothing)$", ".")
	if out, err := test.CombinedOutput(); err != nil {
		t.Fatalf("go test with README.md's diff applied: %v\n%s", err, out)
	}
}
