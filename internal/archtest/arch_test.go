package archtest

import (
	"bufio"
	"encoding/json"
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
)

const (
	module = "github.com/memtorrent/memtorrent"
	client = "github.com/anacrolix/torrent" // drawn as "torrent"
)

// root returns the module's root directory.
func root(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		t.Fatalf("go list -m: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// page returns docs/architecture.md.
func page(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root(t), "docs", "architecture.md"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// section returns the text of the page from the heading that starts with
// heading to the next heading of the same level.
func section(t *testing.T, doc, heading string) string {
	t.Helper()
	i := strings.Index(doc, "\n"+heading)
	if i < 0 {
		t.Fatalf("docs/architecture.md has no heading %q", heading)
	}
	rest := doc[i+1+len(heading):]
	if j := strings.Index(rest, "\n## "); j >= 0 {
		rest = rest[:j]
	}
	return rest
}

// TestImportGraph checks the "imports" block of docs/architecture.md
// against go list: every package of the module is drawn with exactly the
// packages of the module, and the client package, that it imports.
func TestImportGraph(t *testing.T) {
	doc := page(t)
	i := strings.Index(doc, "```imports\n")
	if i < 0 {
		t.Fatal("docs/architecture.md has no ```imports block")
	}
	block := doc[i+len("```imports\n"):]
	block = block[:strings.Index(block, "```")]
	drawn := map[string][]string{}
	for line := range strings.Lines(block) {
		from, to, ok := strings.Cut(line, "->")
		if !ok {
			t.Errorf("imports block: line %q has no ->", line)
			continue
		}
		from = strings.TrimSpace(from)
		if _, dup := drawn[from]; dup {
			t.Errorf("imports block: %s drawn twice", from)
		}
		targets := strings.Fields(to)
		slices.Sort(targets)
		drawn[from] = targets
	}

	cmd := exec.Command("go", "list", "-json", "./...")
	cmd.Dir = root(t)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -json ./...: %v", err)
	}
	actual := map[string][]string{}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var p struct {
			ImportPath string
			Imports    []string
		}
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		name := strings.TrimPrefix(p.ImportPath, module+"/")
		targets := []string{}
		for _, imp := range p.Imports {
			switch {
			case imp == client:
				targets = append(targets, "torrent")
			case strings.HasPrefix(imp, module+"/"):
				targets = append(targets, strings.TrimPrefix(imp, module+"/"))
			}
		}
		slices.Sort(targets)
		actual[name] = targets
	}
	for name, targets := range actual {
		got, ok := drawn[name]
		switch {
		case !ok:
			t.Errorf("package %s (imports %v) is not drawn", name, targets)
		case !slices.Equal(got, targets):
			t.Errorf("%s: drawn importing %v; go list says %v", name, got, targets)
		}
	}
	for name := range drawn {
		if _, ok := actual[name]; !ok {
			t.Errorf("drawn package %s does not exist", name)
		}
	}
}

// canaryRef matches a test named in a canary cell: `pkg/path.TestName`.
var canaryRef = regexp.MustCompile("`([a-z/]+)\\.(Test[A-Za-z0-9_]+)`")

// TestQuirkCanaries checks each row of the quirk table: its canary cell
// says "none" or names tests, each of which exists in its package.
func TestQuirkCanaries(t *testing.T) {
	sec := section(t, page(t), "## Where each quirk of the host is handled")
	rows := 0
	for line := range strings.Lines(sec) {
		cells := strings.Split(strings.Trim(strings.TrimSpace(line), "|"), "|")
		if len(cells) != 3 || strings.HasPrefix(strings.TrimSpace(cells[0]), "---") || strings.TrimSpace(cells[0]) == "quirk of v1.59.1" {
			continue
		}
		rows++
		quirk, canary := strings.TrimSpace(cells[0]), strings.TrimSpace(cells[2])
		refs := canaryRef.FindAllStringSubmatch(canary, -1)
		if strings.HasPrefix(canary, "none") {
			if len(refs) > 0 && !strings.Contains(canary, ":") {
				t.Errorf("quirk %q: canary %q says none yet names tests", quirk, canary)
			}
			continue
		}
		if len(refs) == 0 {
			t.Errorf("quirk %q: canary %q names no test and does not say none", quirk, canary)
		}
		for _, ref := range refs {
			if !testExists(t, ref[1], ref[2]) {
				t.Errorf("quirk %q: canary %s.%s: no such test", quirk, ref[1], ref[2])
			}
		}
	}
	if rows < 10 {
		t.Errorf("found %d quirk rows; want the table (at least 10)", rows)
	}
}

// testExists reports whether a _test.go file of the module's package pkg
// declares func name.
func testExists(t *testing.T, pkg, name string) bool {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(root(t), pkg, "*_test.go"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), "\nfunc "+name+"(") {
			return true
		}
	}
	return false
}

// lockRef matches a lock in the first cell of the lock table:
// `pkg/path.Type.field`.
var lockRef = regexp.MustCompile("^`([a-z/]+)\\.([A-Za-z]+)\\.([A-Za-z]+)`$")

// TestLocksHeldAcross checks that each lock the lock table lists as held
// across a client call or a wait is a field of that type in that package.
func TestLocksHeldAcross(t *testing.T) {
	sec := section(t, page(t), "## Lock order")
	n := 0
	sc := bufio.NewScanner(strings.NewReader(sec))
	for sc.Scan() {
		cells := strings.Split(strings.Trim(strings.TrimSpace(sc.Text()), "|"), "|")
		if len(cells) != 3 {
			continue
		}
		m := lockRef.FindStringSubmatch(strings.TrimSpace(cells[0]))
		if m == nil {
			continue
		}
		n++
		if !hasField(t, m[1], m[2], m[3]) {
			t.Errorf("lock %s.%s.%s: no field %s in type %s of %s", m[1], m[2], m[3], m[3], m[2], m[1])
		}
	}
	if n == 0 {
		t.Error("the lock table lists no lock")
	}
}

// hasField reports whether the non-test files of the module's package pkg
// declare struct type typ with a field named field.
func hasField(t *testing.T, pkg, typ, field string) bool {
	t.Helper()
	fset := token.NewFileSet()
	files, _ := filepath.Glob(filepath.Join(root(t), pkg, "*.go"))
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		ast.Inspect(f, func(n ast.Node) bool {
			ts, ok := n.(*ast.TypeSpec)
			if !ok || ts.Name.Name != typ {
				return true
			}
			if st, ok := ts.Type.(*ast.StructType); ok {
				for _, fl := range st.Fields.List {
					for _, id := range fl.Names {
						found = found || id.Name == field
					}
				}
			}
			return false
		})
		if found {
			return true
		}
	}
	return false
}
