package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/lczerolens/lczerolens/internal/board"
	"github.com/lczerolens/lczerolens/internal/lens"
	"github.com/lczerolens/lczerolens/internal/npy"
	"github.com/lczerolens/lczerolens/internal/store"
)

// boardAxes says where the board lies in one position's tensor: two trailing axes [8,8], or one axis of 64
// squares (attention bodies' [64,C], per-square patching's [modules,64]); for [..,64,64] (attention
// weights) the board is the key axis and the query axis is chosen by square. The other axes each need an
// index.
type boardAxes struct {
	shape []int
	board []int // the board's axes: two of 8, or one of 64
	query int   // the query axis of [..,64,64], else -1
	other []int // the axes left to choose an index on
}

func findBoardAxes(key string, shape []int) (boardAxes, bool) {
	n := len(shape)
	a := boardAxes{shape: shape, query: -1}
	// [64,64] is attention weights only when named so (or with a head axis): an attention body's activation
	// of embedding size 64 has the same shape, squares first.
	weights := n >= 3 || strings.Contains(key, "softmax") || strings.Contains(key, "mha") || strings.Contains(key, "attention")
	switch {
	case n >= 2 && shape[n-2] == 8 && shape[n-1] == 8:
		a.board = []int{n - 2, n - 1}
	case n >= 2 && shape[n-2] == 64 && shape[n-1] == 64 && weights:
		a.board, a.query = []int{n - 1}, n-2
	case n == 2 && shape[1] == 64 && key == "effects": // per-square patching: a row of squares per module
		a.board = []int{1}
	case n == 2 && shape[0] == 64:
		a.board = []int{0}
	default:
		i := -1
		for k := n - 1; k >= 0 && i < 0; k-- { // the last axis of 64
			if shape[k] == 64 {
				i = k
			}
		}
		if i < 0 {
			return a, false
		}
		a.board = []int{i}
	}
	for k := range shape {
		if !slices.Contains(a.board, k) && k != a.query {
			a.other = append(a.other, k)
		}
	}
	return a, true
}

// pick returns the 64 values of the board at index idx of the other axes (one per axis) and query (the
// query axis's index, when it has one), squares in the tensor's own order.
func (a boardAxes) pick(data []float32, idx []int, query int) []float32 {
	strides := make([]int, len(a.shape))
	s := 1
	for k := len(a.shape) - 1; k >= 0; k-- {
		strides[k] = s
		s *= a.shape[k]
	}
	base := 0
	for j, k := range a.other {
		base += idx[j] * strides[k]
	}
	if a.query >= 0 {
		base += query * strides[a.query]
	}
	out := make([]float32, 64)
	for sq := range 64 {
		off := base
		if len(a.board) == 2 {
			off += (sq/8)*strides[a.board[0]] + (sq%8)*strides[a.board[1]]
		} else {
			off += sq * strides[a.board[0]]
		}
		out[sq] = data[off]
	}
	return out
}

// frameMap maps squares of the planes' frame (the network's input: the side to move at the bottom, then
// the canonical transform) to board squares: for each planes square, its board square.
func frameMap(pos *board.Position, transform int) [64]int {
	var m [64]int
	for p := range 64 {
		sq := board.UntransformSquare(board.Square(p), transform)
		if pos != nil && pos.SideToMove() == board.Black {
			sq = sq.Mirror()
		}
		m[p] = int(sq)
	}
	return m
}

// parseIndexList parses "3", "0-7" or "1,4,9" into indices below n, with the lenses' index-list syntax.
func parseIndexList(flag, s string, n int) ([]int, error) {
	out, err := lens.ParseIndexList(s, 0)
	if err != nil || len(out) == 0 {
		return nil, usageErrorf("render: %s %q: want an index, a range such as 0-7, or a comma-separated list", flag, s)
	}
	if slices.Max(out) >= n {
		return nil, usageErrorf("render: %s %q: the axis has %d entries (0..%d)", flag, s, n, n-1)
	}
	return out, nil
}

// dirTensor reads row i of result key from an output directory with its per-position shape, where the
// manifest says the key is; nil data and no error when there is no manifest (see dirRow).
func dirTensor(dir, key string, i int) ([]float32, []int, error) {
	m, err := store.ReadManifest(dir)
	if err != nil {
		return nil, nil, nil // no manifest: the caller falls back to [8,8] maps
	}
	k, err := manifestKey(dir, m, key)
	if err != nil {
		return nil, nil, err
	}
	if i >= m.Count {
		return nil, nil, inputError(fmt.Errorf("render: --row %d: %s has %d rows", i, dir, m.Count))
	}
	size := 1
	for _, d := range k.Shape {
		size *= d
	}
	if m.Storage == store.FormatJSON {
		vals, _, err := jsonValues(filepath.Join(dir, k.File), key, i)
		if err != nil {
			return nil, nil, err
		}
		if len(vals) != size {
			return nil, nil, inputError(fmt.Errorf("render: %s row %d: %d values, want %v", key, i, len(vals), k.Shape))
		}
		return vals, k.Shape, nil
	}
	vals, err := readNPYRow(filepath.Join(dir, k.File), i, size)
	return vals, k.Shape, err
}

// readNPYRow reads row i of size values of an NPY file of float32 rows.
func readNPYRow(path string, i, size int) ([]float32, error) {
	f, _, off, err := openNPY(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readRowAt(f, path, off, i, size)
}

// openNPY opens an NPY file and reads its header: the array's shape and where its data start.
func openNPY(path string) (f *os.File, shape []int, off int64, err error) {
	f, err = os.Open(path)
	if err != nil {
		return nil, nil, 0, pathError(fmt.Errorf("render: %w", err))
	}
	shape, off, err = npy.ReadHeader(f)
	if err != nil {
		f.Close()
		return nil, nil, 0, pathError(fmt.Errorf("render: %s: %w", path, err))
	}
	return f, shape, off, nil
}

// readRowAt reads row i of size little-endian float32 values of f (path), whose data start at off.
func readRowAt(f *os.File, path string, off int64, i, size int) ([]float32, error) {
	out, err := npy.ReadRowAt(f, off, i, size)
	if err != nil {
		return nil, pathError(fmt.Errorf("render: %s: %w", path, err))
	}
	return out, nil
}

// npyTensor reads row i of a bare NPY file: the whole file when it holds one [8,8] map, else row i of its
// first axis, with the shape of a row.
func npyTensor(path string, i int) ([]float32, []int, error) {
	f, shape, _, err := openNPY(path)
	if err != nil {
		return nil, nil, err
	}
	f.Close()
	total := 1
	for _, d := range shape {
		total *= d
	}
	if total == 64 {
		vals, err := readNPYRow(path, 0, 64)
		return vals, []int{8, 8}, err
	}
	if len(shape) < 2 || shape[0] == 0 {
		return nil, nil, inputError(fmt.Errorf("render: %s has shape %v, want rows with a board axis ([8,8] or 64)", path, shape))
	}
	if i >= shape[0] {
		return nil, nil, inputError(fmt.Errorf("render: --row %d: %s has %d rows", i, path, shape[0]))
	}
	vals, err := readNPYRow(path, i, total/shape[0])
	return vals, shape[1:], err
}

// jsonValues reads row i of result key from a results.jsonl file, flattened, with the shape the line gives.
func jsonValues(jl, key string, i int) ([]float32, []int, error) {
	results, err := jsonLineResults(jl, i)
	if err != nil {
		return nil, nil, err
	}
	r, ok := results[key]
	if !ok {
		var keys []string
		for k := range results {
			keys = append(keys, k)
		}
		return nil, nil, inputError(fmt.Errorf("render: %s line %d has no result %q (it has %s)", jl, i+1, key, strings.Join(keys, ", ")))
	}
	var vals []float32
	if err := flattenJSON(r.Data, &vals); err != nil {
		return nil, nil, inputError(fmt.Errorf("render: %s line %d, %q: %w", jl, i+1, key, err))
	}
	return vals, r.Shape, nil
}

// jsonResult is one result of a results.jsonl line.
type jsonResult struct {
	Shape []int `json:"shape"`
	Data  any   `json:"data"`
}

// jsonLineResults reads line i (row i) of a results.jsonl file: its results by key.
func jsonLineResults(jl string, i int) (map[string]jsonResult, error) {
	f, err := os.Open(jl)
	if err != nil {
		return nil, inputError(fmt.Errorf("render: %w", err))
	}
	defer f.Close()
	line, err := nthLine(f, i)
	if err != nil {
		return nil, pathError(fmt.Errorf("render: %s: %w", jl, err))
	}
	var rec struct {
		Results map[string]jsonResult `json:"results"`
	}
	if err := json.Unmarshal(line, &rec); err != nil {
		return nil, inputError(fmt.Errorf("render: %s line %d: %w", jl, i+1, err))
	}
	return rec.Results, nil
}

// manifestKey is result key of the output directory dir (manifest m); an unknown key is an input error that
// lists the keys dir has.
func manifestKey(dir string, m *store.Manifest, key string) (store.ManifestKey, error) {
	k, ok := m.Key(key)
	if !ok {
		names := make([]string, len(m.Keys))
		for j, k := range m.Keys {
			names[j] = k.Key
		}
		return k, inputError(fmt.Errorf("render: %s has no result %q (it has %s)", dir, key, strings.Join(names, ", ")))
	}
	return k, nil
}

// dirInfo is what an output directory's manifest says about how to read and caption its results.
type dirInfo struct {
	lens, model string
	lensOpts    map[string]any
	modules     []string // the module order of per-module results (patching's effects)
	transform   int      // of row 0 when analyse recorded it, else -1
	format      string   // input format, "" when not recorded
}

func readDirInfo(dir string) dirInfo {
	info := dirInfo{transform: -1}
	m, err := store.ReadManifest(dir)
	if err != nil {
		return info
	}
	info.lens, info.model, info.lensOpts = m.Lens.Name, m.Model.Path, m.Lens.Options
	var enc struct {
		Transform   *int   `json:"transform"`
		InputFormat string `json:"input_format"`
	}
	if raw, ok := m.Extra["input_encoding"]; ok && json.Unmarshal(raw, &enc) == nil {
		if enc.Transform != nil {
			info.transform = *enc.Transform
		}
		info.format = enc.InputFormat
	}
	if raw, ok := m.Extra["input"]; ok && json.Unmarshal(raw, &enc) == nil && info.format == "" {
		info.format = enc.InputFormat
	}
	var meta map[string]struct {
		Modules []string `json:"modules"`
	}
	if raw, ok := m.Extra["lens_meta"]; ok && json.Unmarshal(raw, &meta) == nil {
		for _, l := range meta {
			if len(l.Modules) > 0 {
				info.modules = l.Modules
			}
		}
	}
	return info
}
