package store

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// TestManifestRoundTrip: the manifest.json a Writer writes is what encoding the Manifest read back from
// it gives, byte for byte: one type for writing and reading.
func TestManifestRoundTrip(t *testing.T) {
	for _, format := range []Format{FormatNPY, FormatJSON} {
		dir := filepath.Join(t.TempDir(), "out")
		opts := testOptions(format)
		opts.Extra["input"] = map[string]any{"name": "a <b> & c.pgn", "plies": "all", "size": 12}
		opts.Extra["lens_meta"] = map[string]any{"activation": map[string]any{"modules": []string{"x", "y"}}}
		w, err := Open(dir, opts)
		if err != nil {
			t.Fatal(err)
		}
		if err := feed(w, 0, 12, 5); err != nil {
			t.Fatal(err)
		}
		if err := w.SetExtra("shard", map[string]int{"index": 0, "count": 1}); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		raw, err := os.ReadFile(filepath.Join(dir, ManifestFile))
		if err != nil {
			t.Fatal(err)
		}
		m, err := ReadManifest(dir)
		if err != nil {
			t.Fatal(err)
		}
		again, err := m.encode()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(raw, again) {
			t.Errorf("%s: manifest.json\n%s\nre-encoded\n%s", format, raw, again)
		}
	}
}

func TestDifferences(t *testing.T) {
	base := func() *Manifest {
		return &Manifest{
			ToolVersion: "v1", Model: ModelInfo{Path: "a.onnx", SHA256: "abc"}, Storage: FormatNPY,
			Lens: LensInfo{Name: "activation", Options: map[string]any{"pattern": "x", "batch": 8}},
			// Counts, keys and completeness are not settings: they differ in every pair below.
			Count: 3, Records: 2, Complete: true, Keys: []ManifestKey{{Key: "k", File: "k.npy"}},
			Extra: map[string]json.RawMessage{
				"input": json.RawMessage(`{"name":"g.pgn","plies":"all","size":10}`),
				"shard": json.RawMessage(`{"index":1,"count":3}`),
			},
		}
	}
	tests := []struct {
		name   string
		edit   func(*Manifest)
		ignore []string
		want   []Difference
	}{
		{"same settings, other counts and model path", func(m *Manifest) {
			m.Count, m.Records, m.Complete, m.Keys, m.Model.Path = 9, 9, false, nil, "b.onnx"
			m.Lens.Options["batch"] = 8.0 // as JSON reads it back
		}, nil, nil},
		{"format", func(m *Manifest) { m.Storage = FormatJSON }, nil,
			[]Difference{{"storage", "--format", "npy", "json"}}},
		{"model and tool, in order", func(m *Manifest) { m.ToolVersion, m.Model.SHA256 = "v2", "def" }, nil,
			[]Difference{{"model.sha256", "the model sha256", "abc", "def"}, {"tool_version", "the tool version", "v1", "v2"}}},
		{"option changed and added", func(m *Manifest) { m.Lens.Options["pattern"], m.Lens.Options["target"] = "y", "wdl" }, nil,
			[]Difference{{"lens.options.pattern", `lens option "pattern"`, `"x"`, `"y"`}, {"lens.options.target", `lens option "target"`, "unset", `"wdl"`}}},
		{"other lens: options not compared", func(m *Manifest) { m.Lens = LensInfo{Name: "saliency", Options: map[string]any{"target": "best"}} }, nil,
			[]Difference{{"lens.name", "the lens", `"activation"`, `"saliency"`}}},
		{"extra members", func(m *Manifest) {
			m.Extra["input"] = json.RawMessage(`{"name":"h.pgn","plies":"last"}`)
			m.Extra["lens_meta"] = json.RawMessage(`{"a":[1,2]}`)
		}, nil, []Difference{
			{"input.name", "the input", `"g.pgn"`, `"h.pgn"`}, {"input.plies", "--plies", "all", "last"},
			{"input.size", "the input size", "10", "unset"}, {"lens_meta.a", `manifest field "lens_meta.a"`, "unset", "[1,2]"},
		}},
		{"ignored settings", func(m *Manifest) {
			m.Extra["input"] = json.RawMessage(`{"name":"g.pgn","plies":"all"}`)
			m.Extra["shard"] = json.RawMessage(`{"index":2,"count":3,"records":{"first":2}}`)
			m.ToolVersion = "v2"
		}, []string{"input.size", "shard.index", "shard.records", "tool_version"}, nil},
		{"shard removed", func(m *Manifest) { delete(m.Extra, "shard") }, []string{"shard.records"}, []Difference{
			{"shard.count", "the shard count", "3", "unset"}, {"shard.index", "the shard index", "1", "unset"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := base(), base()
			tt.edit(b)
			got := a.Differences(b, tt.ignore...)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Differences\n got %v\nwant %v", got, tt.want)
			}
			// Symmetric: the other way round, the same settings with the values swapped.
			back := b.Differences(a, tt.ignore...)
			for i := range back {
				back[i].A, back[i].B = back[i].B, back[i].A
			}
			if len(back) != len(got) || len(got) > 0 && !reflect.DeepEqual(back, got) {
				t.Errorf("Differences the other way round: %v", back)
			}
		})
	}
}
