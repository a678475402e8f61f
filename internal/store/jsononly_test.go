package store

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestJSONOnlyResults: a JSON-only result is written among the results in the json format, with dtype
// "json" and its value verbatim, and the
// npy format writes no file for it; in both, the tensor results around it keep their keys and order.
func TestJSONOnlyResults(t *testing.T) {
	res := func(p int) []Result {
		return []Result{
			{Key: "heatmap", Shape: []int{2}, Data: []float32{float32(p), 1}},
			{Key: "variants", JSON: json.RawMessage(`[{"square":"e4","target":null}]`)},
			{Key: "target", Shape: []int{}, Data: []float32{0.5}},
		}
	}
	for _, format := range []Format{FormatNPY, FormatJSON} {
		t.Run(string(format), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "out")
			w, err := Open(dir, testOptions(format))
			if err != nil {
				t.Fatal(err)
			}
			for p := range 3 {
				if err := w.Add(PositionMeta{Source: "t", Game: -1, FEN: "f"}, res(p)); err != nil {
					t.Fatal(err)
				}
			}
			// A later position without the JSON-only result is still consistent: the keys are the tensors.
			if err := w.Add(PositionMeta{Source: "t", Game: -1, FEN: "f"}, []Result{res(3)[0], res(3)[2]}); err != nil {
				t.Fatal(err)
			}
			w.SetRecords(4)
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			files, err := filepath.Glob(filepath.Join(dir, "*.npy"))
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, f := range files {
				names = append(names, filepath.Base(f))
			}
			m, err := ReadManifest(dir)
			if err != nil {
				t.Fatal(err)
			}
			var keys []string
			for _, k := range m.Keys {
				keys = append(keys, k.Key)
			}
			if !slices.Equal(keys, []string{"heatmap", "target"}) {
				t.Errorf("manifest keys %v, want [heatmap target]", keys)
			}
			if format == FormatNPY {
				if !slices.Equal(names, []string{"heatmap.npy", "target.npy"}) {
					t.Errorf("npy files %v, want heatmap.npy and target.npy", names)
				}
				if _, err := os.Stat(filepath.Join(dir, "results.jsonl")); err == nil {
					t.Error("npy format wrote results.jsonl")
				}
				return
			}
			if len(names) != 0 {
				t.Errorf("json format wrote %v", names)
			}
			lines := readLines(t, filepath.Join(dir, "results.jsonl"))
			var first struct {
				Results map[string]json.RawMessage `json:"results"`
			}
			if err := json.Unmarshal(lines[0], &first); err != nil {
				t.Fatal(err)
			}
			if got := string(first.Results["variants"]); got != `{"dtype":"json","data":[{"square":"e4","target":null}]}` {
				t.Errorf("variants = %s", got)
			}
			if got := string(first.Results["target"]); got != `{"dtype":"float32","shape":[],"data":0.5}` {
				t.Errorf("target = %s", got)
			}
		})
	}
}
