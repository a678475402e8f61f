package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lczerolens/lczerolens/internal/model"
	"github.com/lczerolens/lczerolens/internal/onnxgraph"
	"github.com/lczerolens/lczerolens/internal/testutil"
)

func TestNewCmdConvertFlags(t *testing.T) {
	io, _, _, _ := TestIO()
	f := NewFactory(io, "test")
	tests := []struct {
		name string
		args []string
		want ConvertOptions
		err  bool
	}{
		{"defaults", []string{"net.pb.gz"}, ConvertOptions{Input: "net.pb.gz"}, false},
		{"all", []string{"net.pb", "-o", "x.onnx", "--policy-head", "optimistic", "--value-head", "q"},
			ConvertOptions{Input: "net.pb", Output: "x.onnx", PolicyHead: "optimistic", ValueHead: "q"}, false},
		{"no input", nil, ConvertOptions{}, true},
		{"two inputs", []string{"a.pb", "b.pb"}, ConvertOptions{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got *ConvertOptions
			cmd := NewCmdConvert(f, func(o *ConvertOptions) error { got = o; return nil })
			cmd.SetArgs(tt.args)
			cmd.SetOut(io.Out)
			cmd.SetErr(io.ErrOut)
			err := cmd.Execute()
			if (err != nil) != tt.err {
				t.Fatalf("error %v, want error %v", err, tt.err)
			}
			if tt.err {
				return
			}
			got.IO = nil
			if *got != tt.want {
				t.Errorf("options %+v, want %+v", *got, tt.want)
			}
		})
	}
}

func TestConvert(t *testing.T) {
	tiny := testutil.Shared(t, "models/tinygyal-8.pb")
	lc0Export := testutil.Shared(t, "models/tinygyal-8.onnx")
	dir := t.TempDir()
	copied := filepath.Join(dir, "tinygyal-8.pb")
	raw, err := os.ReadFile(tiny)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(copied, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	want, _, err := onnxgraph.Read(lc0Export)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name   string
		args   []string
		output string // file the graph lands in; "" = stdout
	}{
		{"default output", []string{"convert", copied}, filepath.Join(dir, "tinygyal-8.onnx")},
		{"named output", []string{"convert", tiny, "-o", filepath.Join(dir, "x.onnx")}, filepath.Join(dir, "x.onnx")},
		{"stdout", []string{"convert", tiny, "-o", "-"}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, nil, tt.args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			status, graph := stdout, []byte(nil)
			if tt.output == "" {
				status, graph = stderr, []byte(stdout)
			} else if graph, err = os.ReadFile(tt.output); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(status, "residual body 2 x 16 SE, convolution policy, classical value, input format 1") {
				t.Errorf("status %q", status)
			}
			m, err := onnxgraph.Unmarshal(graph)
			if err != nil {
				t.Fatal(err)
			}
			if len(m.GetGraph().GetNode()) != len(want.GetGraph().GetNode()) || len(m.GetGraph().GetInitializer()) != len(want.GetGraph().GetInitializer()) {
				t.Errorf("%d nodes and %d initializers, lc0's export has %d and %d", len(m.GetGraph().GetNode()),
					len(m.GetGraph().GetInitializer()), len(want.GetGraph().GetNode()), len(want.GetGraph().GetInitializer()))
			}
			if _, err := model.LoadBytes("converted", graph); err != nil {
				t.Error(err)
			}
		})
	}
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"missing", []string{"convert", filepath.Join(dir, "nope.pb")}, "no such file"},
		{"not weights", []string{"convert", lc0Export}, "not an lc0 weights file"},
		{"unknown head", []string{"convert", tiny, "--value-head", "q"}, `value head "q" does not exist`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runCLI(t, nil, tt.args...)
			if code != ExitUsage || !strings.Contains(stderr, tt.want) || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
				t.Errorf("exit %d, stderr %q: want exit %d and one line saying %q", code, stderr, ExitUsage, tt.want)
			}
		})
	}
}

func TestModelInfoWeights(t *testing.T) {
	maia := testutil.Shared(t, "models/maia-1100.pb.gz")
	code, stdout, stderr := runCLI(t, nil, "model", "info", "--model", maia)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, w := range []string{"body      residual, 6 blocks x 64 filters, SE", "heads     policy, wdl", "lc0 weights",
		"Minimal Lc0 version:  v0.21.0", "Network:              NETWORK_SE_WITH_HEADFORMAT", "Training steps:       400000",
		"Filters:              64", "Value head:           wdl"} {
		if !strings.Contains(stdout, w) {
			t.Errorf("output lacks %q:\n%s", w, stdout)
		}
	}
	code, stdout, stderr = runCLI(t, nil, "model", "info", "--model", maia, "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var doc struct {
		Lc0 struct {
			Blocks      int    `json:"blocks"`
			InputFormat int    `json:"input_format"`
			Network     string `json:"network"`
			Training    struct {
				Steps int `json:"steps"`
			} `json:"training"`
		} `json:"lc0_weights"`
	}
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Lc0.Blocks != 6 || doc.Lc0.InputFormat != 1 || doc.Lc0.Network != "NETWORK_SE_WITH_HEADFORMAT" || doc.Lc0.Training.Steps != 400000 {
		t.Errorf("lc0_weights %+v", doc.Lc0)
	}
	code, stdout, _ = runCLI(t, nil, "model", "info", "--model", testutil.Shared(t, "models/maia-1100.onnx"))
	if code != 0 || strings.Contains(stdout, "lc0 weights") {
		t.Errorf("exit %d, onnx file shows lc0 weights section:\n%s", code, stdout)
	}
}
