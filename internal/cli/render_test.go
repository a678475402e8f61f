package cli

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lczerolens/lczerolens/internal/npy"
	"github.com/lczerolens/lczerolens/internal/testutil"
)

// svgCounts parses an SVG document and counts the elements of each class.
func svgCounts(t *testing.T, doc []byte) map[string]int {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(doc))
	counts := map[string]int{}
	root := true
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			if root && se.Name.Local != "svg" {
				t.Fatalf("root element %s, want svg", se.Name.Local)
			}
			root = false
			for _, a := range se.Attr {
				if a.Name.Local == "class" {
					counts[a.Value]++
				}
			}
		}
	}
	return counts
}

// heatmapFENs are the batch input of the heatmap lens tests: white and black to move, en passant.
const heatmapFENs = `r1bqkb1r/pppp1ppp/2n2n2/4p2Q/2B1P3/8/PPPP1PPP/RNB1K1NR b KQkq - 3 3
8/2k5/8/3Pp3/8/8/5K2/8 w - e6 0 40
rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR w KQkq - 0 1
`

// TestHeatmapLensesCLI is issue 8's acceptance 1 for lrp and occlusion: each runs through analyse (JSON,
// NPY, --svg) and batch (npy and json) on maia-1100 and tinygyal-8; occlusion's variants appear in JSON
// only; render draws a batch row.
func TestHeatmapLensesCLI(t *testing.T) {
	env := map[string]string{"LCZEROLENS_ORT_LIB": testutil.ORTLib(t)}
	dir := t.TempDir()
	fens := filepath.Join(dir, "positions.fen")
	if err := os.WriteFile(fens, []byte(heatmapFENs), 0o644); err != nil {
		t.Fatal(err)
	}
	fen := strings.Split(heatmapFENs, "\n")[0]
	for _, net := range []string{"maia-1100", "tinygyal-8"} {
		model := testutil.Shared(t, "models/"+net+".onnx")
		for _, l := range []struct {
			lens   string
			args   []string
			tensor []string // tensor keys
		}{
			{"lrp", []string{"--rule", "zplus"}, []string{"relevance", "heatmap"}},
			{"occlusion", []string{"--target", "policy:best"}, []string{"heatmap", "target"}},
		} {
			t.Run(net+"/"+l.lens, func(t *testing.T) {
				base := append([]string{"--model", model, "--lens", l.lens}, l.args...)
				svg := filepath.Join(t.TempDir(), "a.svg")
				code, stdout, stderr := runCLI(t, env, append([]string{"analyse", "--fen", fen, "--svg", svg}, base...)...)
				if code != 0 {
					t.Fatalf("analyse: exit %d: %s", code, stderr)
				}
				var e envelope
				if err := json.Unmarshal([]byte(stdout), &e); err != nil {
					t.Fatalf("analyse output not JSON: %v", err)
				}
				for _, k := range l.tensor {
					if _, ok := e.Results[k]; !ok {
						t.Errorf("analyse: no result %q", k)
					}
				}
				if l.lens == "occlusion" {
					var vars []struct {
						Square, FEN string
						Target      *float64
					}
					if v := e.Results["variants"]; v.DType != "json" || json.Unmarshal(v.Data, &vars) != nil || len(vars) != 30 {
						t.Errorf("analyse: variants %s, want 30 edits", v.Data)
					}
				}
				doc, err := os.ReadFile(svg)
				if err != nil {
					t.Fatal(err)
				}
				if c := svgCounts(t, doc); c["square"] != 64 || c["colorbar-bar"] != 1 || c["piece"] != 32 || c["arrow"] != 1 {
					t.Errorf("--svg picture: %v", c)
				}

				for _, format := range []string{"npy", "json"} {
					out := filepath.Join(t.TempDir(), format)
					code, _, stderr = runCLI(t, env, append([]string{"batch", fens, "-o", out, "--quiet", "--format", format}, base...)...)
					if code != 0 {
						t.Fatalf("batch %s: exit %d: %s", format, code, stderr)
					}
					m := readManifest(t, out)
					if m.Count != 3 || !m.Complete {
						t.Fatalf("batch %s: manifest %+v", format, m)
					}
					if format == "npy" {
						for _, k := range l.tensor {
							f, err := os.Open(filepath.Join(out, k+".npy"))
							if err != nil {
								t.Fatal(err)
							}
							shape, _, err := npy.Read(f)
							f.Close()
							if err != nil || shape[0] != 3 {
								t.Errorf("%s.npy: shape %v, %v", k, shape, err)
							}
						}
						if _, err := os.Stat(filepath.Join(out, "variants.npy")); err == nil {
							t.Error("batch npy wrote variants.npy")
						}
						testutil.NumpyManifest(t, out, false)
						// render draws row 0 (black to move) with its pieces from positions.jsonl.
						pic := filepath.Join(t.TempDir(), "b.svg")
						code, _, stderr = runCLI(t, env, "render", "--from", out, "--key", "heatmap", "--row", "0", "--orientation", "side-to-move", "--arrows", "f6h5", "-o", pic)
						if code != 0 {
							t.Fatalf("render: exit %d: %s", code, stderr)
						}
						doc, err := os.ReadFile(pic)
						if err != nil {
							t.Fatal(err)
						}
						if c := svgCounts(t, doc); c["square"] != 64 || c["piece"] != 32 || c["arrow"] != 1 || c["colorbar-bar"] != 1 {
							t.Errorf("render picture: %v", c)
						}
						continue
					}
					rows := readLines(t, filepath.Join(out, "results.jsonl"))
					if len(rows) != 3 {
						t.Fatalf("results.jsonl: %d rows", len(rows))
					}
					var rec struct {
						Results map[string]json.RawMessage `json:"results"`
					}
					if err := json.Unmarshal([]byte(rows[1]), &rec); err != nil {
						t.Fatal(err)
					}
					_, hasVariants := rec.Results["variants"]
					if hasVariants != (l.lens == "occlusion") {
						t.Errorf("results.jsonl row 1 keys: %v", keys(rec.Results))
					}
				}
			})
		}
	}
}

func keys(m map[string]json.RawMessage) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestRenderCommand covers render's inputs: a bare NPY file (one map, or rows of them), results.jsonl, and
// the usage errors.
func TestRenderCommand(t *testing.T) {
	dir := t.TempDir()
	heat := make([]float32, 3*64)
	for i := range heat {
		heat[i] = float32(i%64) - 20
	}
	rows := filepath.Join(dir, "rows.npy")
	one := filepath.Join(dir, "one.npy")
	for _, f := range []struct {
		path  string
		shape []int
		data  []float32
	}{{rows, []int{3, 8, 8}, heat}, {one, []int{8, 8}, heat[:64]}} {
		w, err := os.Create(f.path)
		if err != nil {
			t.Fatal(err)
		}
		if err := npy.Write(w, f.shape, f.data); err != nil {
			t.Fatal(err)
		}
		w.Close()
	}
	jdir := filepath.Join(dir, "json")
	if err := os.MkdirAll(jdir, 0o755); err != nil {
		t.Fatal(err)
	}
	line := `{"position":{"fen":"x"},"results":{"heatmap":{"dtype":"float32","shape":[8,8],"data":[` + strings.Repeat(`[1,"NaN",3,4,5,6,7,8],`, 7) + `[1,2,3,4,5,6,7,8]]}}}` + "\n"
	if err := os.WriteFile(filepath.Join(jdir, "results.jsonl"), []byte(line), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(jdir, "positions.jsonl"), []byte(`{"fen":"8/8/8/4k3/8/8/4P3/4K3 w - - 0 1"}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		args   []string
		code   int
		pieces int
		errSub string
	}{
		{"npy rows", []string{"--npy", rows, "--row", "2"}, 0, 0, ""},
		{"npy one map with fen", []string{"--npy", one, "--fen", "8/8/8/4k3/8/8/4P3/4K3 b - - 0 1", "--orientation", "side-to-move", "--colormap", "sequential"}, 0, 3, ""},
		{"json dir", []string{"--from", jdir, "--key", "heatmap"}, 0, 3, ""},
		{"row out of range", []string{"--npy", rows, "--row", "3"}, ExitUsage, 0, "3 rows"},
		{"both sources", []string{"--npy", rows, "--from", jdir, "--key", "heatmap"}, ExitUsage, 0, "either"},
		{"from without key", []string{"--from", jdir}, ExitUsage, 0, "--key"},
		{"missing key", []string{"--from", jdir, "--key", "saliency"}, ExitUsage, 0, "heatmap"},
		{"bad orientation", []string{"--npy", one, "--orientation", "up"}, ExitUsage, 0, "orientation"},
		{"bad arrow", []string{"--npy", one, "--arrows", "e2"}, ExitUsage, 0, "arrow"},
		{"bad colormap", []string{"--npy", one, "--colormap", "jet"}, ExitUsage, 0, "colormap"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, nil, append([]string{"render"}, tt.args...)...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d: %s", code, tt.code, stderr)
			}
			if tt.code != 0 {
				if !strings.Contains(stderr, tt.errSub) {
					t.Errorf("stderr %q lacks %q", stderr, tt.errSub)
				}
				return
			}
			c := svgCounts(t, []byte(stdout))
			if c["square"] != 64 || c["colorbar-bar"] != 1 || c["piece"] != tt.pieces {
				t.Errorf("picture: %v", c)
			}
		})
	}
}

// TestAnalyseSVGNeedsHeatmap: --svg with no [8,8] result among the lens's results is a usage error that
// names the keys there are.
func TestAnalyseSVGNeedsHeatmap(t *testing.T) {
	env := map[string]string{"LCZEROLENS_ORT_LIB": testutil.ORTLib(t)}
	svg := filepath.Join(t.TempDir(), "x.svg")
	code, _, stderr := runCLI(t, env, "analyse", "--lens", "gradient", "--startpos", "--svg", svg)
	if code != ExitUsage || !strings.Contains(stderr, "input_grad") || !strings.Contains(stderr, "[8,8]") {
		t.Errorf("exit %d: %s", code, stderr)
	}
	if _, err := os.Stat(svg); err == nil {
		t.Error("a picture was written")
	}
}
