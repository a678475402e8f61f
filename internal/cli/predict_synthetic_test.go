package cli

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type synthRecord struct {
	Name        string   `json:"name"`
	Error       string   `json:"error"`
	FENStart    string   `json:"fen_start"`
	Moves       []string `json:"moves_from_fen"`
	HistoryFill string   `json:"history_fill"`
	InputFormat int      `json:"input_format"`
	W, D, L     float64
	M           float64 `json:"m"`
	Legal       []struct {
		UCI    string  `json:"uci"`
		PExact float64 `json:"p_exact"`
	} `json:"legal_moves"`
}

func readSynth(t testing.TB, path string) []synthRecord {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var out []synthRecord
	sc := bufio.NewScanner(zr)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var r synthRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		if r.Error == "" {
			out = append(out, r)
		}
	}
	return out
}

// TestPredictSyntheticNets is issue 7's acceptance 2: predict on every synthetic lc0 export, with the net's
// input format given on the command line (ONNX files do not record it), matches lc0's move probabilities and
// W/D/L within 1e-5 and moves-left within 1e-4; the lc0 weight file gives the same without the flag.
func TestPredictSyntheticNets(t *testing.T) {
	dir := sharedPath(t, "models/synthetic")
	refDir := sharedPath(t, "reference/lc0/synthetic")
	env := map[string]string{"LCZEROLENS_ORT_LIB": ortLib(t)}
	nets, _ := filepath.Glob(filepath.Join(dir, "*.onnx"))
	if len(nets) == 0 {
		t.Fatal("no synthetic nets")
	}
	fills := map[string]string{"fen_only": "fen-only", "always": "always", "no": "no"}
	for _, onnx := range nets {
		name := strings.TrimSuffix(filepath.Base(onnx), ".onnx")
		t.Run(name, func(t *testing.T) {
			refs := readSynth(t, filepath.Join(refDir, name+".refdump.jsonl.gz"))
			if alt := filepath.Join(refDir, name+".refdump.histfill-no.jsonl.gz"); fileExists(alt) {
				refs = append(refs, readSynth(t, alt)...)
			}
			for i, r := range refs {
				model := onnx
				args := []string{"predict", "--json", "--top", "0", "--fen", r.FENStart, "--moves", strings.Join(r.Moves, " "), "--history-fill", fills[r.HistoryFill]}
				if i%2 == 0 {
					args = append(args, "--input-format", fmt.Sprint(r.InputFormat))
				} else {
					model = strings.TrimSuffix(onnx, ".onnx") + ".pb.gz" // the weight file knows its format
				}
				code, stdout, stderr := runCLI(t, env, append(args, "--model", model)...)
				if code != 0 {
					t.Fatalf("%s: exit %d: %s", r.Name, code, stderr)
				}
				var got predictJSON
				if err := json.Unmarshal([]byte(stdout), &got); err != nil {
					t.Fatal(err)
				}
				p := map[string]float64{}
				for _, m := range got.Moves {
					p[m.UCI] = float64(m.P)
				}
				if len(p) != len(r.Legal) {
					t.Fatalf("%s: %d moves, lc0 %d", r.Name, len(p), len(r.Legal))
				}
				for _, m := range r.Legal {
					if math.Abs(p[m.UCI]-m.PExact) > 1e-5 {
						t.Fatalf("%s (%s): p(%s) = %g, lc0 %g", r.Name, filepath.Base(model), m.UCI, p[m.UCI], m.PExact)
					}
				}
				want := []float64{r.W, r.D, r.L}
				for k := range want {
					if math.Abs(float64(got.WDL[k])-want[k]) > 1e-5 {
						t.Fatalf("%s: wdl %v, lc0 %v", r.Name, got.WDL, want)
					}
				}
				if got.MLH == nil || math.Abs(float64(*got.MLH)-r.M) > 1e-4 {
					t.Fatalf("%s: mlh %v, lc0 %g", r.Name, got.MLH, r.M)
				}
			}
		})
	}
	// A flag that contradicts the weight file is refused.
	pb := filepath.Join(dir, "se_apol_mlh.pb.gz")
	if code, _, stderr := runCLI(t, env, "predict", "--model", pb, "--startpos", "--input-format", "classical"); code != ExitUsage || !strings.Contains(stderr, "contradicts") {
		t.Errorf("contradicting --input-format: exit %d %q", code, stderr)
	}
}
