package coredns

import (
	"fmt"
	"go/ast"
	"go/format"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// upstreamDirectives reads Directives from the module's
// core/dnsserver/zdirectives.go, or skips when the module is not in the
// module cache (the test must not download it).
func upstreamDirectives(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMODCACHE").Output()
	if err != nil {
		t.Skipf("go env GOMODCACHE: %v", err)
	}
	path := filepath.Join(strings.TrimSpace(string(out)), module+"@"+Version, "core", "dnsserver", "zdirectives.go")
	if _, err := os.Stat(path); err != nil {
		t.Skipf("%s@%s is not in the module cache (go mod download it): %v", module, Version, err)
	}
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	ast.Inspect(f, func(n ast.Node) bool {
		vs, ok := n.(*ast.ValueSpec)
		if !ok || len(vs.Names) != 1 || vs.Names[0].Name != "Directives" || len(vs.Values) != 1 {
			return true
		}
		lit, ok := vs.Values[0].(*ast.CompositeLit)
		if !ok {
			t.Fatalf("%s: Directives is not a literal", path)
		}
		for _, e := range lit.Elts {
			bl, ok := e.(*ast.BasicLit)
			if !ok || bl.Kind != token.STRING {
				t.Fatalf("%s: Directives holds a non-string %T", path, e)
			}
			s, err := strconv.Unquote(bl.Value)
			if err != nil {
				t.Fatal(err)
			}
			dirs = append(dirs, s)
		}
		return false
	})
	if len(dirs) == 0 {
		t.Fatalf("%s: no Directives found", path)
	}
	return dirs
}

// checkOrder reports whether ours is a subsequence of upstream: every
// directive known and in upstream's relative order.
func checkOrder(ours, upstream []string) error {
	at := map[string]int{}
	for i, d := range upstream {
		at[d] = i
	}
	prev := -1
	for i, d := range ours {
		j, ok := at[d]
		if !ok {
			return fmt.Errorf("directive %q is not one of CoreDNS's", d)
		}
		if j <= prev {
			return fmt.Errorf("directive %q must come before %q", d, ours[i-1])
		}
		prev = j
	}
	return nil
}

func TestDirectiveOrderMatchesUpstream(t *testing.T) {
	up := upstreamDirectives(t)
	if err := checkOrder(directives(), up); err != nil {
		t.Errorf("%v; CoreDNS %s orders them %v", err, Version, up)
	}
	// The check itself must be able to fail.
	for _, bad := range [][]string{
		{"cache", "reload"},         // reversed
		{"errors", "errors"},        // repeated
		{"kubernetes", "forwardzz"}, // unknown
	} {
		if checkOrder(bad, up) == nil {
			t.Errorf("checkOrder accepts %v", bad)
		}
	}
}

func TestPluginsAreNamedAfterTheirPackages(t *testing.T) {
	seen := map[string]bool{}
	for _, p := range plugins() {
		if seen[p.directive] {
			t.Errorf("directive %q twice", p.directive)
		}
		seen[p.directive] = true
		base := filepath.Base(p.pkg)
		if p.directive != base && !(p.directive == "prometheus" && base == "metrics") {
			t.Errorf("directive %q comes from %s", p.directive, p.pkg)
		}
	}
	// The lab must never send DNS traffic out of its namespaces.
	for _, d := range []string{"forward", "grpc", "etcd", "route53", "azure", "clouddns"} {
		if seen[d] {
			t.Errorf("plugin %q is linked", d)
		}
	}
}

func TestCorefileUsesOnlyLinkedPlugins(t *testing.T) {
	linked := map[string]bool{}
	for _, d := range directives() {
		linked[d] = true
	}
	depth := 0
	used := map[string]bool{}
	for _, l := range strings.Split(corefile("cluster.local"), "\n") {
		f := strings.Fields(l)
		if len(f) > 0 && depth == 1 && f[0] != "}" {
			used[f[0]] = true
			if !linked[f[0]] {
				t.Errorf("the Corefile uses %q, which the binary does not link", f[0])
			}
		}
		depth += strings.Count(l, "{") - strings.Count(l, "}")
	}
	if depth != 0 {
		t.Errorf("unbalanced braces in the Corefile")
	}
	for _, d := range []string{"errors", "health", "ready", "kubernetes", "prometheus", "cache", "reload", "loadbalance"} {
		if !used[d] {
			t.Errorf("the Corefile does not use %q", d)
		}
	}
}

func TestMainGo(t *testing.T) {
	src := mainGo()
	formatted, err := format.Source([]byte(src))
	if err != nil {
		t.Fatalf("main.go does not parse: %v\n%s", err, src)
	}
	if string(formatted) != src {
		t.Errorf("main.go is not gofmt-clean:\n%s", src)
	}
	f, err := parser.ParseFile(token.NewFileSet(), "main.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	imports := map[string]bool{}
	for _, im := range f.Imports {
		p, _ := strconv.Unquote(im.Path.Value)
		imports[p] = true
	}
	if imports[module+"/core/plugin"] {
		t.Errorf("main.go links every plugin through core/plugin")
	}
	for _, p := range plugins() {
		if !imports[p.pkg] {
			t.Errorf("main.go does not import %s", p.pkg)
		}
	}
	if len(imports) != len(plugins())+2 {
		t.Errorf("main.go imports %d packages; want the %d plugins, dnsserver and coremain", len(imports), len(plugins()))
	}
	want := "dnsserver.Directives = []string{\n\t\t\"" + strings.Join(directives(), "\",\n\t\t\"") + "\",\n\t}"
	if !strings.Contains(src, want) {
		t.Errorf("main.go does not set Directives to %v:\n%s", directives(), src)
	}
}

func TestEnsureBinaryUsesStamp(t *testing.T) {
	cache := t.TempDir()
	binDir := filepath.Join(cache, "coredns", Version, "bin")
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(binDir, "coredns")
	if err := os.WriteFile(bin, []byte("fake"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(binDir, ".complete"), []byte(stampText()), 0o644); err != nil {
		t.Fatal(err)
	}
	// With a matching stamp no go command runs: an empty PATH proves it.
	t.Setenv("PATH", "")
	got, err := EnsureBinary(cache, &strings.Builder{})
	if err != nil || got != bin {
		t.Fatalf("EnsureBinary = %q, %v; want %q from the cache", got, err, bin)
	}
	// A stamp for another plugin list does not count.
	if err := os.WriteFile(filepath.Join(binDir, ".complete"), []byte(Version+" reload,forward\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := EnsureBinary(cache, &strings.Builder{}); err == nil {
		t.Fatal("EnsureBinary trusted a stamp for another plugin list")
	}
	if _, err := os.Stat(filepath.Join(binDir, ".complete")); !os.IsNotExist(err) {
		t.Errorf("the stale stamp survived a failed build: %v", err)
	}
	for _, f := range []string{"go.mod", "main.go"} {
		if _, err := os.Stat(filepath.Join(cache, "coredns", Version, "src", f)); err != nil {
			t.Errorf("scratch module: %v", err)
		}
	}
}
