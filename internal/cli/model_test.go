package cli

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/lczerolens/lczerolens/internal/testutil"
)

func TestNewCmdModelFlags(t *testing.T) {
	io, _, _, _ := TestIO()
	f := NewFactory(io, "test")
	var info *ModelInfoOptions
	cmd := NewCmdModelInfo(f, func(o *ModelInfoOptions) error { info = o; return nil })
	cmd.SetArgs([]string{"--json"})
	if err := cmd.Execute(); err != nil || !info.JSON {
		t.Fatalf("info: %v %+v", err, info)
	}
	var mods *ModelModulesOptions
	cmd = NewCmdModelModules(f, func(o *ModelModulesOptions) error { mods = o; return nil })
	cmd.SetArgs([]string{"--pattern", `^block\d+/`})
	if err := cmd.Execute(); err != nil || mods.Pattern != `^block\d+/` || mods.JSON {
		t.Fatalf("modules: %v %+v", err, mods)
	}
	cmd = NewCmdModelModules(f, func(*ModelModulesOptions) error { return nil })
	cmd.SetArgs([]string{"extra"})
	cmd.SetOut(io.Out)
	cmd.SetErr(io.ErrOut)
	if err := cmd.Execute(); err == nil {
		t.Error("positional argument accepted")
	}
}

func TestModelInfo(t *testing.T) {
	maia := testutil.Shared(t, "models/maia-1100.onnx")
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"maia text", []string{"model", "info", "--model", maia}, []string{
			"input     /input/planes [batch,112,8,8]", "output    /output/policy [batch,1858]", "heads     policy, wdl",
			"body      residual, 6 blocks x 64 filters, SE", "opset 17", "Conv 16"}},
		{"demo text", []string{"model", "info"}, []string{"heads     policy, wdl", "body      residual, 1 blocks x 4 filters", "demo"}},
		{"tinygyal value head", []string{"model", "info", "--model", testutil.Shared(t, "models/tinygyal-8.onnx")}, []string{"heads     policy, value", "2 blocks x 16 filters"}},
		{"attention body", []string{"model", "info", "--model", testutil.Shared(t, "models/synthetic/ab_pemap_classical.onnx")}, []string{"attention, 2 encoders x 64 embedding", "heads     policy, wdl, mlh"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, nil, tt.args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(stdout, w) {
					t.Errorf("output lacks %q:\n%s", w, stdout)
				}
			}
		})
	}
	code, stdout, _ := runCLI(t, nil, "model", "info", "--model", maia, "--json")
	var doc modelInfoJSON
	if code != 0 || json.Unmarshal([]byte(stdout), &doc) != nil {
		t.Fatalf("json: exit %d %q", code, stdout)
	}
	if doc.Blocks != 6 || doc.Filters != 64 || strings.Join(doc.Heads, ",") != "policy,wdl" || doc.Ops["Conv"] != 16 || len(doc.SHA256) != 64 {
		t.Errorf("json %+v", doc)
	}
}

func TestModelModules(t *testing.T) {
	maia := testutil.Shared(t, "models/maia-1100.onnx")
	tests := []struct {
		name  string
		args  []string
		code  int
		lines int // output lines, header included; -1: don't check
		want  []string
	}{
		{"one module", []string{"--model", maia, "--pattern", `^block2/conv2/relu$`}, 0, 2, []string{"block2/conv2/relu", "Relu", "[1,64,8,8]"}},
		{"se split", []string{"--model", maia, "--pattern", `^block0/conv2/se/split/out\d$`}, 0, 3, []string{"block0/conv2/se/split/out1", "Split", "[1,64,1,1]"}},
		{"heads", []string{"--model", maia, "--pattern", `^output/`}, 0, 3, []string{"output/policy", "Gather", "[1,1858]", "output/wdl", "Softmax", "[1,3]"}},
		{"all of the demo", nil, 0, 21, []string{"inputconv", "Conv", "[1,4,8,8]", "value/reshape", "[1,128]"}},
		{"int64 tensors say so", []string{"--model", testutil.Shared(t, "models/synthetic/ab_pemap_classical.onnx"), "--pattern", `^attn_body/shape$`}, 0, 2, []string{"Shape", "[3] int64"}},
		{"invalid pattern", []string{"--model", maia, "--pattern", "(["}, ExitUsage, -1, []string{"regular expression"}},
		{"no match", []string{"--model", maia, "--pattern", "^nosuch$"}, ExitUsage, -1, []string{"lczerolens model modules --model"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, nil, append([]string{"model", "modules"}, tt.args...)...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d: %s", code, tt.code, stderr)
			}
			got := stdout + stderr
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("output lacks %q:\n%s", w, got)
				}
			}
			if n := strings.Count(stdout, "\n"); tt.lines >= 0 && n != tt.lines {
				t.Errorf("%d lines, want %d:\n%s", n, tt.lines, stdout)
			}
		})
	}
	code, stdout, _ := runCLI(t, nil, "model", "modules", "--model", maia, "--pattern", `^inputconv`, "--json")
	var m moduleJSON
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if code != 0 || len(lines) != 2 || json.Unmarshal([]byte(lines[0]), &m) != nil || m.Name != "inputconv" || m.Op != "Conv" || m.DType != "float32" {
		t.Errorf("json modules: exit %d %q", code, stdout)
	}
}
