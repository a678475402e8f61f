package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"testing"

	"github.com/lczerolens/lczerolens/internal/npy"
	"github.com/lczerolens/lczerolens/internal/testutil"
)

// The tests drive a Writer with a deterministic synthetic input: record r
// is a bad record when r%11 == 7, otherwise a game of r%3+1 positions. Every
// expected value below is computed from this recipe, independently of what
// the Writer wrote.

func recordPositions(r int) int {
	if r%11 == 7 {
		return 0
	}
	return r%3 + 1
}

func positionsBefore(r int) int {
	n := 0
	for i := range r {
		n += recordPositions(i)
	}
	return n
}

func errorsBefore(r int) int {
	n := 0
	for i := range r {
		if recordPositions(i) == 0 {
			n++
		}
	}
	return n
}

var testKeys = []struct {
	key   string
	shape []int
}{
	{"block0/conv1/relu", []int{2, 3, 4}},
	{"policy", []int{5}},
	{"value", []int{}},
}

// value returns element i of key k for position p; some are NaN or
// infinite so both formats' handling of them is exercised.
func value(p, k, i int) float32 {
	switch {
	case p%13 == 3 && k == 0 && i == 1:
		return float32(math.NaN())
	case p%13 == 3 && k == 1 && i == 2:
		return float32(math.Inf(1 - 2*(p%2)))
	}
	return float32(p)*0.25 - float32(i)/8 + float32(k)*1e-3
}

func nonfiniteBefore(positions int) int {
	n := 0
	for p := range positions {
		if p%13 == 3 {
			n += 2
		}
	}
	return n
}

func numValues(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

func results(p int) []Result {
	out := make([]Result, len(testKeys))
	for k, tk := range testKeys {
		data := make([]float32, numValues(tk.shape))
		for i := range data {
			data[i] = value(p, k, i)
		}
		out[k] = Result{Key: tk.key, Shape: tk.shape, Data: data}
	}
	return out
}

func meta(r, j int) PositionMeta {
	m := PositionMeta{Source: "games.pgn", Record: r, Game: r, Ply: j, FEN: fmt.Sprintf("fen %d/%d \"quoted\"\t\u00e9\x01", r, j)}
	if j < recordPositions(r)-1 {
		mv := fmt.Sprintf("m%d", j)
		m.Move = &mv
	}
	if r%5 == 0 {
		m.Source, m.Game = "fens.txt", -1
	}
	return m
}

func errRecord(r int) ErrorRecord {
	return ErrorRecord{Source: "games.pgn", Record: r, Game: r, Line: 10 * r, Reason: fmt.Sprintf("illegal move %q at ply %d\n", "Ke9", r)}
}

// feed adds records [from, to), calling SetRecords after each record and
// Commit after every commitEvery positions (so often mid-record).
func feed(w *Writer, from, to, commitEvery int) error {
	p := positionsBefore(from)
	for r := from; r < to; r++ {
		n := recordPositions(r)
		if n == 0 {
			if err := w.AddError(errRecord(r)); err != nil {
				return err
			}
		}
		for j := range n {
			if err := w.Add(meta(r, j), results(p)); err != nil {
				return err
			}
			p++
			if p%commitEvery == 0 {
				if err := w.Commit(); err != nil {
					return err
				}
			}
		}
		w.SetRecords(r + 1)
	}
	return nil
}

func testOptions(format Format) Options {
	return Options{
		Format:      format,
		ToolVersion: "test",
		Model:       ModelInfo{Path: "nets/t1.onnx", SHA256: "abc123"},
		Lens:        LensInfo{Name: "activation", Options: map[string]any{"pattern": "block\\d+/conv1", "batch": 8}},
		Extra:       map[string]any{"input": []string{"games.pgn"}, "shard": "0/1"},
	}
}

// readLines returns the lines of a JSON Lines file, failing on invalid
// JSON or a missing final newline.
func readLines(t *testing.T, path string) [][]byte {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) == 0 {
		return nil
	}
	if raw[len(raw)-1] != '\n' {
		t.Fatalf("%s does not end with a newline", path)
	}
	lines := bytes.Split(raw[:len(raw)-1], []byte{'\n'})
	for i, l := range lines {
		if !json.Valid(l) {
			t.Fatalf("%s line %d is not valid JSON: %s", path, i+1, l)
		}
	}
	return lines
}

type manifestJSON struct {
	Format        string         `json:"format"`
	FormatVersion int            `json:"format_version"`
	ToolVersion   string         `json:"tool_version"`
	Model         map[string]any `json:"model"`
	Lens          struct {
		Name    string         `json:"name"`
		Options map[string]any `json:"options"`
	} `json:"lens"`
	Count     int  `json:"count"`
	Errors    int  `json:"errors"`
	Records   int  `json:"records"`
	Nonfinite int  `json:"nonfinite"`
	Complete  bool `json:"complete"`
	Storage   string
	Keys      map[string]struct {
		File  string `json:"file"`
		Dtype string `json:"dtype"`
		Shape []int  `json:"shape"`
	} `json:"keys"`
	Shard string `json:"shard"`
}

// checkOutput verifies a directory holds exactly the first `records`
// records of the synthetic input, in either format.
func checkOutput(t *testing.T, dir string, format Format, records int, complete bool) {
	t.Helper()
	positions, nerr := positionsBefore(records), errorsBefore(records)
	var m manifestJSON
	raw, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("manifest: %v", err)
	}
	if m.Format != ManifestFormat || m.FormatVersion != 1 || m.Count != positions || m.Errors != nerr ||
		m.Records != records || m.Complete != complete || m.Storage != string(format) ||
		m.Nonfinite != nonfiniteBefore(positions) || m.Shard != "0/1" || m.Lens.Name != "activation" ||
		m.Model["sha256"] != "abc123" {
		t.Errorf("manifest %s does not describe %d records (%d positions, %d errors, complete %v)", raw, records, positions, nerr, complete)
	}
	if positions > 0 && len(m.Keys) != len(testKeys) {
		t.Errorf("manifest keys %v", m.Keys)
	}
	for _, tk := range testKeys {
		mk, ok := m.Keys[tk.key]
		if positions == 0 && !ok {
			continue
		}
		wantFile := KeyFileName(tk.key)
		if format == FormatJSON {
			wantFile = ResultsFile
		}
		if mk.File != wantFile || mk.Dtype != "float32" || !slices.Equal(mk.Shape, tk.shape) {
			t.Errorf("manifest key %q = %+v", tk.key, mk)
		}
	}

	lines := readLines(t, filepath.Join(dir, PositionsFile))
	if len(lines) != positions {
		t.Fatalf("positions.jsonl has %d lines, want %d", len(lines), positions)
	}
	p := 0
	for r := range records {
		for j := range recordPositions(r) {
			want := meta(r, j)
			var got struct {
				Source, FEN       string
				Record, Game, Ply int
				Move              *string
			}
			if err := json.Unmarshal(lines[p], &got); err != nil {
				t.Fatal(err)
			}
			if got.Source != want.Source || got.Record != want.Record || got.FEN != want.FEN || got.Game != want.Game || got.Ply != want.Ply ||
				(got.Move == nil) != (want.Move == nil) || got.Move != nil && *got.Move != *want.Move {
				t.Fatalf("position %d: %s", p, lines[p])
			}
			p++
		}
	}
	errLines := readLines(t, filepath.Join(dir, ErrorsFile))
	if len(errLines) != nerr {
		t.Fatalf("errors.jsonl has %d lines, want %d", len(errLines), nerr)
	}
	i := 0
	for r := range records {
		if recordPositions(r) == 0 {
			var got ErrorRecord
			if err := json.Unmarshal(errLines[i], &got); err != nil || got != errRecord(r) {
				t.Fatalf("error line %d: %s (%v)", i, errLines[i], err)
			}
			i++
		}
	}

	switch format {
	case FormatNPY:
		for k, tk := range testKeys {
			f, err := os.Open(filepath.Join(dir, KeyFileName(tk.key)))
			if positions == 0 && os.IsNotExist(err) {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			shape, data, err := npy.Read(f)
			f.Close()
			if err != nil {
				t.Fatalf("%s: %v", tk.key, err)
			}
			if !slices.Equal(shape, append([]int{positions}, tk.shape...)) {
				t.Fatalf("%s: shape %v, want %d positions of %v", tk.key, shape, positions, tk.shape)
			}
			n := numValues(tk.shape)
			for q := range positions {
				for i := range n {
					if got, want := data[q*n+i], value(q, k, i); math.Float32bits(got) != math.Float32bits(want) {
						t.Fatalf("%s position %d value %d: %v, want %v", tk.key, q, i, got, want)
					}
				}
			}
		}
	case FormatJSON:
		res := readLines(t, filepath.Join(dir, ResultsFile))
		if len(res) != positions {
			t.Fatalf("results.jsonl has %d lines, want %d", len(res), positions)
		}
		for q, l := range res {
			var got struct {
				Position json.RawMessage
				Results  map[string]struct {
					Dtype string
					Shape []int
					Data  any
				}
			}
			if err := json.Unmarshal(l, &got); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Position, lines[q]) {
				t.Fatalf("results line %d position %s, positions.jsonl has %s", q, got.Position, lines[q])
			}
			for k, tk := range testKeys {
				r := got.Results[tk.key]
				if r.Dtype != "float32" || !slices.Equal(r.Shape, tk.shape) {
					t.Fatalf("results line %d key %s: %s", q, tk.key, l)
				}
				flat := flatten(t, r.Data, tk.shape)
				for i, v := range flat {
					if want := value(q, k, i); math.Float32bits(v) != math.Float32bits(want) && !(v != v && want != want) {
						t.Fatalf("results line %d key %s value %d: %v, want %v", q, tk.key, i, v, want)
					}
				}
			}
		}
	}
}

// flatten checks v is nested to shape and returns its values in C order.
func flatten(t *testing.T, v any, shape []int) []float32 {
	t.Helper()
	if len(shape) == 0 {
		switch x := v.(type) {
		case float64:
			return []float32{float32(x)}
		case string:
			switch x {
			case "NaN":
				return []float32{float32(math.NaN())}
			case "Infinity":
				return []float32{float32(math.Inf(1))}
			case "-Infinity":
				return []float32{float32(math.Inf(-1))}
			}
		}
		t.Fatalf("unexpected JSON value %v", v)
	}
	arr, ok := v.([]any)
	if !ok || len(arr) != shape[0] {
		t.Fatalf("JSON data %v is not nested to shape %v", v, shape)
	}
	var out []float32
	for _, e := range arr {
		out = append(out, flatten(t, e, shape[1:])...)
	}
	return out
}

// compareDirs fails unless a and b hold the same files with the same bytes.
func compareDirs(t *testing.T, a, b string) {
	t.Helper()
	list := func(dir string) []string {
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		sort.Strings(names)
		return names
	}
	na, nb := list(a), list(b)
	if !slices.Equal(na, nb) {
		t.Fatalf("files differ: %v vs %v", na, nb)
	}
	for _, n := range na {
		x, _ := os.ReadFile(filepath.Join(a, n))
		y, _ := os.ReadFile(filepath.Join(b, n))
		if !bytes.Equal(x, y) {
			t.Errorf("%s differs (%d vs %d bytes)", n, len(x), len(y))
		}
	}
}

// runPython runs script with args and returns its stdout.
func runPython(t *testing.T, script string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(testutil.NumpyPython(t), append([]string{"-c", script}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, stderr.String())
	}
	return out
}
