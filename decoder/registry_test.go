package decoder_test

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
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
