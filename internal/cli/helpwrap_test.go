package cli

import (
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/lczerolens/lczerolens/internal/lens"
	"github.com/lczerolens/lczerolens/internal/testutil"
)

// commandPaths lists the argument paths of every command under root (root itself as nil), hidden ones
// too, so that commands added later are walked without naming them here.
func commandPaths(root *cobra.Command) [][]string {
	var out [][]string
	var walk func(c *cobra.Command, path []string)
	walk = func(c *cobra.Command, path []string) {
		out = append(out, path)
		for _, sub := range c.Commands() {
			walk(sub, append(append([]string(nil), path...), sub.Name()))
		}
	}
	walk(root, nil)
	return out
}

// checkWidth fails on every line of out wider than helpWidth columns.
func checkWidth(t *testing.T, what, out string) {
	t.Helper()
	if strings.TrimSpace(out) == "" {
		t.Errorf("%s: no output", what)
	}
	for i, l := range strings.Split(out, "\n") {
		if n := textWidth(l); n > helpWidth {
			t.Errorf("%s: line %d has %d columns (> %d): %q", what, i+1, n, helpWidth, l)
		}
	}
}

// TestHelpFitsTerminal runs --help (and "help PATH") of every command of NewCmdRoot and checks that each
// line fits 100 columns, and that no flag's usage holds a backtick, which pflag would print as the flag's
// value name (`--lens lczerolens lenses list`). The tables of "lenses" and "model info" are checked too.
func TestHelpFitsTerminal(t *testing.T) {
	streams, _, _, _ := TestIO()
	root := NewCmdRoot(NewFactory(streams, "test"))
	paths := commandPaths(root)
	if len(paths) < 12 {
		t.Fatalf("walked %d commands, want every command of the root", len(paths))
	}
	for _, path := range paths {
		name := strings.Join(append([]string{"lczerolens"}, path...), " ")
		c, _, err := root.Find(path)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		check := func(f *pflag.Flag) {
			if strings.Contains(f.Usage, "`") {
				varname, _ := pflag.UnquoteUsage(f)
				t.Errorf("%s --%s: usage has a backtick, shown as the value name %q: use quotes", name, f.Name, varname)
			}
		}
		c.LocalFlags().VisitAll(check)
		c.InheritedFlags().VisitAll(check)
		if c.Hidden {
			continue // cobra's completion requests: no help of their own
		}
		code, stdout, stderr := runCLI(t, nil, append(append([]string(nil), path...), "--help")...)
		if code != 0 {
			t.Fatalf("%s --help: exit %d: %s", name, code, stderr)
		}
		checkWidth(t, name+" --help", stdout)
		if len(path) > 0 && path[0] != "help" {
			code, stdout, stderr = runCLI(t, nil, append([]string{"help"}, path...)...)
			if code != 0 {
				t.Fatalf("help %s: exit %d: %s", name, code, stderr)
			}
			checkWidth(t, "help "+name, stdout)
		}
	}

	// Every lens option's help may become its flag's usage (the first lens with the option lends it).
	for _, l := range lens.Lenses {
		for _, o := range l.Options {
			if strings.Contains(o.Help, "`") {
				t.Errorf("lens %s option %s: help has a backtick, which pflag would show as the flag's value name: use quotes", l.Name, o.Name)
			}
		}
	}

	tables := [][]string{{"lenses", "list"}, {"lenses", "list", "--model", ""}, {"model", "info"}}
	for _, l := range lens.Lenses {
		tables = append(tables, []string{"lenses", "describe", l.Name})
	}
	for _, args := range tables {
		code, stdout, stderr := runCLI(t, map[string]string{"LCZEROLENS_ORT_LIB": testutil.ORTLib(t)}, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, stderr)
		}
		checkWidth(t, strings.Join(args, " "), stdout)
	}
}

// TestLensesListRealDefaults checks that lenses list shows what an unset option means: the pattern that
// activation selects, not an empty string.
func TestLensesListRealDefaults(t *testing.T) {
	code, stdout, _ := runCLI(t, nil, "lenses", "describe", "activation")
	if code != 0 {
		t.Fatal(code)
	}
	joined := strings.Join(strings.Fields(stdout), " ")
	if !strings.Contains(joined, "default "+lens.DefaultActivationPattern) || strings.Contains(stdout, `default ""`) {
		t.Errorf("describe activation does not show the real pattern default:\n%s", stdout)
	}
}

// TestFitLinesKeepsWords checks the wrapping on its own: every line fits, no word is lost or split, a shell
// example stays one command once its continuations are joined, and quoted words are never broken.
func TestFitLinesKeepsWords(t *testing.T) {
	long := "  lczerolens analyse --model maia-1100.onnx --lens activation --pattern '^block5/conv2/relu$' " +
		`--fen "8/8/8/4k3/8/8/4P3/4K3 w - - 0 1" --format npy -o out/ --force`
	row := "      --input-format string   lc0 input format: " + strings.Repeat("1|classical, 2|castling-plane, ", 6)
	prose := strings.Repeat("word ", 13) + "end\n" + strings.Repeat("next ", 11) + "last\nA sentence ending with a colon:\nx y"
	table := "path      /a/b.onnx\nnodes     112 (" + strings.Repeat("Add 26, ", 12) + "Softmax 1)\nparams    867,437"
	text := prose + "\n\n" + table + "\n\nSome text:\n" + row + "\n\nExamples:\n" + long + "\n\nFlags:\n" + row + "\n"
	got := fitLines(text, 60)
	// The prose paragraph is reflowed, not left ragged: every line but its last is filled.
	para := strings.Split(got[:strings.Index(got, "\n\n")], "\n")
	for _, l := range para[:len(para)-1] {
		if textWidth(l) < 50 {
			t.Errorf("ragged prose line of %d columns: %q", textWidth(l), l)
		}
	}
	for _, l := range strings.Split(got, "\n") {
		if textWidth(l) > 60 {
			t.Errorf("line of %d columns: %q", textWidth(l), l)
		}
	}
	strip := func(s string) string { return strings.Join(strings.Fields(strings.ReplaceAll(s, " \\\n", " ")), " ") }
	if strip(got) != strip(text) {
		t.Errorf("words changed:\n got %s\nwant %s", strip(got), strip(text))
	}
	ex := got[strings.Index(got, "Examples:\n")+len("Examples:\n"):]
	ex = ex[:strings.Index(ex, "\n\n")]
	if !strings.Contains(ex, " \\\n") {
		t.Fatalf("example not broken with a backslash:\n%s", ex)
	}
	for _, l := range strings.Split(ex, "\n") {
		if strings.Count(l, `"`)%2 != 0 || strings.Count(l, "'")%2 != 0 {
			t.Errorf("a quoted word is broken across lines: %q", l)
		}
	}
	// Rows of a two-column table are wrapped under their second column, never run together.
	tab := got[strings.Index(got, "path "):]
	tab = tab[:strings.Index(tab, "\n\n")]
	for i, l := range strings.Split(tab, "\n") {
		if !strings.HasPrefix(l, "path      ") && !strings.HasPrefix(l, "nodes     ") && !strings.HasPrefix(l, "params    ") && indentOf(l) != 10 {
			t.Errorf("table line %d %q: neither a row nor a continuation under the second column", i, l)
		}
	}
	// Continuation lines of a flag row start under its description.
	col := strings.Index(row, "lc0 input")
	for _, l := range strings.Split(got[strings.Index(got, "Flags:\n"):], "\n")[2:] {
		if l != "" && indentOf(l) != col {
			t.Errorf("continuation at column %d, want %d: %q", indentOf(l), col, l)
		}
	}
}
