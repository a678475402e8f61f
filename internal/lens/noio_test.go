package lens

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestNoFileIO holds the package to its doc: lenses analyse what they are given and read no files (the
// command layer loads networks and probe files once and passes them in). It parses the package's non-test
// sources and fails on an import that reaches the file system or on a call of a loader from another package.
func TestNoFileIO(t *testing.T) {
	forbiddenImports := map[string]bool{
		"os": true, "os/exec": true, "io/ioutil": true, "io/fs": true, "path/filepath": true, "syscall": true, "net": true,
	}
	forbiddenCalls := map[string]map[string]bool{ // import path -> functions that read files
		"github.com/lczerolens/lczerolens/internal/model": {"Load": true},
		"github.com/lczerolens/lczerolens/internal/probe": {"Load": true},
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		checked++
		local := map[string]string{} // the name a file uses for an import -> its path
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if forbiddenImports[path] {
				t.Errorf("%s imports %q: lenses do no file I/O (load in the command layer and pass the value in)", fset.Position(imp.Pos()), path)
			}
			use := path[strings.LastIndex(path, "/")+1:]
			if imp.Name != nil {
				use = imp.Name.Name
			}
			local[use] = path
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if pkg, ok := sel.X.(*ast.Ident); ok && forbiddenCalls[local[pkg.Name]][sel.Sel.Name] {
				t.Errorf("%s calls %s.%s, which reads a file: lenses do no file I/O", fset.Position(call.Pos()), pkg.Name, sel.Sel.Name)
			}
			return true
		})
	}
	if checked < 5 {
		t.Fatalf("checked only %d source files: is the test running in the package directory?", checked)
	}
}
