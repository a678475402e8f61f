// Package report turns output directories of lczerolens commands into one self-contained HTML file: every
// picture, style and script inline, nothing fetched, so the file opens offline and can be mailed. Boards
// are drawn by internal/render. What it reads is detected by file name and content, so that outputs of
// commands it does not know yet still show as tables rather than failing:
//
//   - a batch (or analyse --format npy) directory, manifest.json + positions.jsonl + KEY.npy or
//     results.jsonl: per position a board with every [8,8] result switchable and the record's move as an
//     arrow; vector results (per layer or module, as the logit lens's) as a bar chart of their mean;
//     results of other shapes are listed; an analyse --format json file likewise, with the
//     network's top moves as arrows;
//   - a features.jsonl of sae features: per feature its density and its top examples' boards;
//   - a probe file (format lczerolens-probe, from probe train): the held-out and training score per module
//     as a bar chart and a table;
//   - any other .json, .jsonl or .csv file: its scalar fields as a table (JSONL rows with a rating and a
//     boolean outcome are also summarised by rating band, and rows with a "fen" drawn as boards: puzzle
//     lists, a feature's top examples), subdirectories one level down likewise.
package report

import (
	"bufio"
	"bytes"
	_ "embed"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/lczerolens/lczerolens/internal/board"
	"github.com/lczerolens/lczerolens/internal/npy"
	"github.com/lczerolens/lczerolens/internal/render"
	"github.com/lczerolens/lczerolens/internal/store"
)

// Options bound a report.
type Options struct {
	// Limit is the most positions drawn per batch directory, sampled evenly over the run (0 means 50).
	Limit int
	// MaxBytes bounds the boards' pictures in bytes; positions past it are left out and the report says so
	// (0 means DefaultMaxBytes).
	MaxBytes int
	// TableRows is the most rows shown per generic table (0 means 20).
	TableRows int
}

// DefaultMaxBytes bounds the pictures of a report: large enough for 50 positions with a handful of maps,
// small enough for any browser and mail system.
const DefaultMaxBytes = 20 << 20

// Report is what a report shows.
type Report struct {
	Title    string
	Batches  []*Batch
	Probes   []*Probe
	Tables   []*Table
	Features []*FeatureSet
	Notes    []string
	MaxBytes int
	bytes    int
	svgs     int // SVGs drawn, numbering their element ids
}

// Batch is one batch-like output directory.
type Batch struct {
	Path      string
	Model     string
	Lens      string
	Count     int
	Keys      []string // the [8,8] keys, switchable
	Other     []string // other keys, with their shapes
	Positions []*Position
	Omitted   int    // positions not drawn (limit, size)
	Arrows    string // what the arrows show
	Charts    []Chart
}

// Position is one drawn position: one SVG per key, and one without a map.
type Position struct {
	Index int
	FEN   string
	Move  string
	SVG   map[string]template.HTML
}

// Probe is a probe file's scores per module.
type Probe struct {
	Path, Concept, Kind, Model string
	Chart                      template.HTML
	Rows                       []ProbeRow
}

// ProbeRow is one module's probe.
type ProbeRow struct {
	Module, Metric, Score, TrainScore string
	Train, Test                       int
}

// Table is a generic table of a file's rows.
type Table struct {
	Path    string
	Caption string
	Columns []string
	Rows    [][]string
	More    int // rows not shown
}

// Build reads path (an output directory, or a probe or other JSON file) into a Report.
func Build(path string, o Options) (*Report, error) {
	if o.Limit <= 0 {
		o.Limit = 50
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.TableRows <= 0 {
		o.TableRows = 20
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	r := &Report{Title: filepath.Base(filepath.Clean(path)), MaxBytes: o.MaxBytes}
	if !st.IsDir() {
		if err := r.addFile(path, o); err != nil {
			return nil, err
		}
	} else if err := r.addDir(path, o, 0); err != nil {
		return nil, err
	}
	if len(r.Batches)+len(r.Probes)+len(r.Tables)+len(r.Features) == 0 {
		return nil, fmt.Errorf("report: %s: %w", path, ErrNothing)
	}
	return r, nil
}

// ErrNothing says that nothing in the input was recognised.
var ErrNothing = errors.New("no batch, analyse, probe, JSON, JSONL or CSV output found")

// batchFiles are the files a batch directory's reader consumes itself.
var batchFiles = map[string]bool{store.ManifestFile: true, "positions.jsonl": true, "progress.json": true, "results.jsonl": true}

func (r *Report) addDir(dir string, o Options, depth int) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	consumed := map[string]bool{}
	if _, err := os.Stat(filepath.Join(dir, store.ManifestFile)); err == nil {
		b, used, err := r.readBatch(dir, o)
		if err != nil {
			r.Notes = append(r.Notes, fmt.Sprintf("%s: not read as a batch output: %v", dir, err))
		} else {
			r.Batches = append(r.Batches, b)
			consumed = used
		}
	}
	for _, e := range entries {
		name := e.Name()
		p := filepath.Join(dir, name)
		switch {
		case consumed[name] || strings.HasPrefix(name, "."):
		case e.IsDir():
			if depth < 1 {
				if err := r.addDir(p, o, depth+1); err != nil {
					r.Notes = append(r.Notes, err.Error())
				}
			}
		default:
			if err := r.addFile(p, o); err != nil {
				r.Notes = append(r.Notes, err.Error())
			}
		}
	}
	return nil
}

func (r *Report) addFile(p string, o Options) error {
	switch strings.ToLower(filepath.Ext(p)) {
	case ".json":
		raw, err := os.ReadFile(p)
		if err != nil {
			return fmt.Errorf("report: %w", err)
		}
		var head struct {
			Format string `json:"format"`
		}
		_ = json.Unmarshal(raw, &head)
		if head.Format == "lczerolens-analysis" {
			b, err := r.readAnalysis(p, raw)
			if err != nil {
				return err
			}
			r.Batches = append(r.Batches, b)
			return nil
		}
		if head.Format == "lczerolens-probe" {
			pr, err := readProbe(p, raw)
			if err != nil {
				return err
			}
			r.Probes = append(r.Probes, pr)
			return nil
		}
		if t := jsonTable(p, raw, o.TableRows); t != nil {
			r.Tables = append(r.Tables, t)
		}
	case ".jsonl":
		if fs, err := r.saeFeatures(p, o); err != nil || fs != nil {
			if fs != nil {
				r.Features = append(r.Features, fs)
			}
			return err
		}
		ts, err := jsonlTables(p, o.TableRows)
		if err != nil {
			return err
		}
		r.Tables = append(r.Tables, ts...)
		if b, err := r.jsonlBoards(p, min(o.Limit, 12), o.MaxBytes); err == nil && b != nil {
			r.Batches = append(r.Batches, b)
		}
	case ".csv":
		t, err := csvTable(p, o.TableRows)
		if err != nil {
			return err
		}
		if t != nil {
			r.Tables = append(r.Tables, t)
		}
	}
	return nil
}

// positionRecord is a line of positions.jsonl.
type positionRecord struct {
	FEN  string  `json:"fen"`
	Move *string `json:"move"`
}

// readBatch reads a batch directory: which [8,8] keys it has, and the sampled positions' maps.
func (r *Report) readBatch(dir string, o Options) (*Batch, map[string]bool, error) {
	m, err := store.ReadManifest(dir)
	if err != nil {
		return nil, nil, err
	}
	used := map[string]bool{}
	for f := range batchFiles {
		used[f] = true
	}
	b := &Batch{Path: dir, Model: m.Model.Path, Lens: m.Lens.Name, Count: m.Count, Arrows: "the record's move"}
	var series []store.ManifestKey // per-layer (or per-module) vectors, charted as their mean
	for _, k := range m.Keys {
		used[k.File] = true
		switch {
		case len(k.Shape) == 2 && k.Shape[0] == 8 && k.Shape[1] == 8:
			b.Keys = append(b.Keys, k.Key)
		case len(k.Shape) == 1 && k.Shape[0] > 1 && k.Shape[0] <= maxSeries:
			series = append(series, k)
		default:
			b.Other = append(b.Other, fmt.Sprintf("%s %v", k.Key, k.Shape))
		}
	}
	n := min(m.Count, o.Limit)
	rows := make([]int, n) // evenly over the run, first and last included
	for i := range rows {
		if n > 1 {
			rows[i] = int(math.Round(float64(i) * float64(m.Count-1) / float64(n-1)))
		}
	}
	recs, err := readLines(filepath.Join(dir, "positions.jsonl"), rows)
	if err != nil {
		return nil, nil, err
	}
	maps := map[string][][]float32{} // key -> row values per sampled row
	if m.Storage == store.FormatJSON {
		lines, err := readLines(filepath.Join(dir, "results.jsonl"), rows)
		if err != nil {
			return nil, nil, err
		}
		for _, line := range lines {
			var rec struct {
				Results map[string]struct {
					Data json.RawMessage `json:"data"`
				} `json:"results"`
			}
			if err := json.Unmarshal(line, &rec); err != nil {
				return nil, nil, fmt.Errorf("results.jsonl: %w", err)
			}
			for _, k := range b.Keys {
				var nested [][]float32
				_ = json.Unmarshal(rec.Results[k].Data, &nested)
				maps[k] = append(maps[k], flat(nested))
			}
			for _, k := range series {
				var v []float32
				_ = json.Unmarshal(rec.Results[k.Key].Data, &v)
				maps[k.Key] = append(maps[k.Key], v)
			}
		}
		for _, k := range series {
			b.Charts = append(b.Charts, seriesChart(k.Key, fmt.Sprintf("mean over the %d positions shown", len(rows)), moduleLabels(m, k.Shape[0]), maps[k.Key]))
		}
	} else {
		for _, k := range series {
			rowsOf, err := npyAll(filepath.Join(dir, k.File), k.Shape[0])
			if err != nil {
				return nil, nil, err
			}
			b.Charts = append(b.Charts, seriesChart(k.Key, fmt.Sprintf("mean over all %d positions", len(rowsOf)), moduleLabels(m, k.Shape[0]), rowsOf))
		}
		for _, k := range b.Keys {
			mk, _ := m.Key(k)
			vals, err := npyRows(filepath.Join(dir, mk.File), rows)
			if err != nil {
				return nil, nil, err
			}
			maps[k] = vals
		}
	}
	for i, row := range rows {
		var pr positionRecord
		if err := json.Unmarshal(recs[i], &pr); err != nil {
			return nil, nil, fmt.Errorf("positions.jsonl line %d: %w", row+1, err)
		}
		pos, err := board.ParseFEN(pr.FEN)
		if err != nil {
			return nil, nil, fmt.Errorf("positions.jsonl line %d: %w", row+1, err)
		}
		var move []string
		if pr.Move != nil {
			move = []string{*pr.Move}
		}
		heats := map[string][]float32{}
		for _, k := range b.Keys {
			if i < len(maps[k]) {
				heats[k] = maps[k][i]
			}
		}
		p, size, err := r.position(row, pos, move, b.Keys, heats)
		if err != nil {
			return nil, nil, err
		}
		if r.bytes+size > o.MaxBytes {
			break
		}
		r.bytes += size
		b.Positions = append(b.Positions, p)
	}
	b.Omitted = m.Count - len(b.Positions)
	return b, used, nil
}

// position draws pos once plain and once per key with a map of 64 values, with the moves as arrows.
func (r *Report) position(index int, pos *board.Position, moves []string, keys []string, heats map[string][]float32) (*Position, int, error) {
	p := &Position{Index: index, FEN: pos.FEN(), Move: strings.Join(moves, " "), SVG: map[string]template.HTML{}}
	var arrows []board.Move
	for _, m := range moves {
		if mv, err := pos.ParseMove(m); err == nil {
			arrows = append(arrows, mv)
		}
	}
	size := 0
	draw := func(key string, heat []float32) error {
		var buf bytes.Buffer
		title := key
		if key == "" {
			title = "position"
		}
		if err := render.SVG(&buf, render.Options{Heat: heat, Position: pos, Arrows: arrows, Title: fmt.Sprintf("#%d %s", index, title), SquareSize: 40}); err != nil {
			return err
		}
		// The XML declaration is not allowed inside HTML.
		svg := bytes.TrimSpace(buf.Bytes())
		if i := bytes.Index(svg, []byte("<svg")); i > 0 {
			svg = svg[i:]
		}
		r.svgs++
		svg = uniqueIDs(svg, r.svgs)
		p.SVG[key] = template.HTML(svg) //nolint:gosec // render's own output, escaped by it
		size += len(svg)
		return nil
	}
	if err := draw("", nil); err != nil {
		return nil, 0, err
	}
	for _, k := range keys {
		if len(heats[k]) == 64 {
			if err := draw(k, heats[k]); err != nil {
				return nil, 0, err
			}
		}
	}
	return p, size, nil
}

// readAnalysis shows an analyse --format json envelope: its position with every [8,8] result, and the
// network's top moves as arrows.
func (r *Report) readAnalysis(path string, raw []byte) (*Batch, error) {
	var env struct {
		Model struct {
			Path string `json:"path"`
		} `json:"model"`
		Lens struct {
			Name string `json:"name"`
		} `json:"lens"`
		Position struct {
			FEN string `json:"fen"`
		} `json:"position"`
		Outputs struct {
			Moves []struct {
				UCI string `json:"uci"`
			} `json:"moves"`
		} `json:"outputs"`
		Results map[string]struct {
			Shape []int           `json:"shape"`
			Data  json.RawMessage `json:"data"`
		} `json:"results"`
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		return nil, fmt.Errorf("report: analysis %s: %w", path, err)
	}
	pos, err := board.ParseFEN(env.Position.FEN)
	if err != nil {
		return nil, fmt.Errorf("report: analysis %s: %w", path, err)
	}
	b := &Batch{Path: path, Model: env.Model.Path, Lens: env.Lens.Name, Count: 1, Arrows: "the network's top moves"}
	heats := map[string][]float32{}
	keys := make([]string, 0, len(env.Results))
	for k := range env.Results {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		res := env.Results[k]
		var nested [][]float32
		if len(res.Shape) == 2 && res.Shape[0] == 8 && res.Shape[1] == 8 && json.Unmarshal(res.Data, &nested) == nil {
			b.Keys = append(b.Keys, k)
			heats[k] = flat(nested)
		} else {
			b.Other = append(b.Other, fmt.Sprintf("%s %v", k, res.Shape))
		}
	}
	var moves []string
	for _, m := range env.Outputs.Moves[:min(3, len(env.Outputs.Moves))] {
		moves = append(moves, m.UCI)
	}
	p, size, err := r.position(0, pos, moves, b.Keys, heats)
	if err != nil {
		return nil, err
	}
	r.bytes += size
	b.Positions = []*Position{p}
	return b, nil
}

// maxSeries bounds the length of a vector result drawn as a chart (layers, modules, heads).
const maxSeries = 128

// Chart is a small chart of a vector result.
type Chart struct {
	Key, Note string
	SVG       template.HTML
}

// moduleLabels names the n entries of a per-module vector by the modules a lens lists in lens_meta (the
// logit lens's layers), else by index.
func moduleLabels(m *store.Manifest, n int) []string {
	var meta map[string]struct {
		Modules []string `json:"modules"`
	}
	if raw, ok := m.Extra["lens_meta"]; ok && json.Unmarshal(raw, &meta) == nil {
		for _, l := range meta {
			if len(l.Modules) == n {
				return l.Modules
			}
		}
	}
	labels := make([]string, n)
	for i := range labels {
		labels[i] = strconv.Itoa(i)
	}
	return labels
}

// seriesChart draws the mean over rows of a vector result, one bar per entry from a zero axis, scaled to
// the largest magnitude; non-finite values are left out of the mean.
func seriesChart(key, note string, labels []string, rows [][]float32) Chart {
	n := len(labels)
	mean := make([]float64, n)
	count := make([]int, n)
	for _, r := range rows {
		for i := 0; i < n && i < len(r); i++ {
			if v := float64(r[i]); !math.IsNaN(v) && !math.IsInf(v, 0) {
				mean[i] += v
				count[i]++
			}
		}
	}
	scale := 0.0
	for i := range mean {
		if count[i] > 0 {
			mean[i] /= float64(count[i])
		}
		scale = math.Max(scale, math.Abs(mean[i]))
	}
	if scale == 0 {
		scale = 1
	}
	const rowH, labelW, half = 18, 200, 150
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="%d" height="%d" font-size="11" font-family="sans-serif">`, labelW+2*half+80, rowH*n+8)
	zero := labelW + half
	fmt.Fprintf(&b, `<line x1="%d" y1="0" x2="%d" y2="%d" stroke="#888"/>`, zero, zero, rowH*n+8)
	for i, v := range mean {
		y := 4 + i*rowH
		w := math.Abs(v) / scale * half
		x := float64(zero)
		fill := "#b2182b"
		if v < 0 {
			x -= w
			fill = "#2166ac"
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%s</text>`, labelW-6, y+12, template.HTMLEscapeString(labels[i]))
		fmt.Fprintf(&b, `<rect class="bar" x="%.1f" y="%d" width="%.1f" height="13" fill="%s"><title>%g</title></rect>`, x, y+1, w, fill, v)
		fmt.Fprintf(&b, `<text x="%d" y="%d">%.4g</text>`, labelW+2*half+6, y+12, v)
	}
	b.WriteString(`</svg>`)
	return Chart{Key: key, Note: note, SVG: template.HTML(b.String())} //nolint:gosec // labels escaped above
}

// npyAll reads every row of an [N,n] NPY file.
func npyAll(path string, n int) ([][]float32, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	defer f.Close()
	shape, data, err := npy.Read(f)
	if err != nil {
		return nil, fmt.Errorf("report: %s: %w", path, err)
	}
	if len(shape) != 2 || shape[1] != n {
		return nil, fmt.Errorf("report: %s: shape %v, want [N,%d]", path, shape, n)
	}
	rows := make([][]float32, shape[0])
	for i := range rows {
		rows[i] = data[i*n : (i+1)*n]
	}
	return rows, nil
}

var svgID = regexp.MustCompile(`id="([^"]+)"`)

// uniqueIDs suffixes the element ids of one SVG (its gradient, pattern and marker) and their url(#...)
// references with n: inline SVGs share the document's id space, so every board would otherwise use the
// first board's colour bar, even when that board is hidden (and a hidden gradient draws nothing).
func uniqueIDs(svg []byte, n int) []byte {
	for _, m := range svgID.FindAllSubmatch(svg, -1) {
		id := string(m[1])
		svg = bytes.ReplaceAll(svg, []byte(`id="`+id+`"`), fmt.Appendf(nil, `id="%s-%d"`, id, n))
		svg = bytes.ReplaceAll(svg, []byte(`url(#`+id+`)`), fmt.Appendf(nil, `url(#%s-%d)`, id, n))
	}
	return svg
}

func flat(rows [][]float32) []float32 {
	var out []float32
	for _, r := range rows {
		out = append(out, r...)
	}
	return out
}

// readLines returns the given lines (0-based, ascending) of a file.
func readLines(path string, rows []int) ([][]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<30)
	out := make([][]byte, 0, len(rows))
	for i := 0; len(out) < len(rows) && sc.Scan(); i++ {
		for len(out) < len(rows) && rows[len(out)] == i {
			out = append(out, append([]byte(nil), sc.Bytes()...))
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("report: %s: %w", path, err)
	}
	if len(out) < len(rows) {
		return nil, fmt.Errorf("report: %s: %d lines, want %d", path, len(out), rows[len(rows)-1]+1)
	}
	return out, nil
}

// npyRows reads the given rows of an [N,8,8] NPY file without loading the rest.
func npyRows(path string, rows []int) ([][]float32, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	defer f.Close()
	shape, off, err := npy.ReadHeader(f)
	if err != nil {
		return nil, fmt.Errorf("report: %s: %w", path, err)
	}
	if len(shape) != 3 || shape[1] != 8 || shape[2] != 8 {
		return nil, fmt.Errorf("report: %s: shape %v, want [N,8,8]", path, shape)
	}
	out := make([][]float32, len(rows))
	for i, row := range rows {
		if row >= shape[0] {
			return nil, fmt.Errorf("report: %s: %d rows, want %d", path, shape[0], row+1)
		}
		if out[i], err = npy.ReadRowAt(f, off, row, 64); err != nil {
			return nil, fmt.Errorf("report: %s: %w", path, err)
		}
	}
	return out, nil
}

func readProbe(path string, raw []byte) (*Probe, error) {
	var f struct {
		Concept string `json:"concept"`
		Kind    string `json:"kind"`
		Model   struct {
			Path string `json:"path"`
		} `json:"model"`
		Probes []struct {
			Module     string   `json:"module"`
			Metric     string   `json:"metric"`
			Train      int      `json:"train"`
			Test       int      `json:"test"`
			Score      *float64 `json:"score"`
			TrainScore *float64 `json:"train_score"`
		} `json:"probes"`
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		return nil, fmt.Errorf("report: probe file %s: %w", path, err)
	}
	p := &Probe{Path: path, Concept: f.Concept, Kind: f.Kind, Model: f.Model.Path}
	var bars []bar
	for _, q := range f.Probes {
		p.Rows = append(p.Rows, ProbeRow{Module: q.Module, Metric: q.Metric, Score: score(q.Score), TrainScore: score(q.TrainScore), Train: q.Train, Test: q.Test})
		bars = append(bars, bar{label: q.Module, v: q.Score, v2: q.TrainScore})
	}
	p.Chart = barChart(bars, "held-out", "train")
	return p, nil
}

func score(v *float64) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf("%.3f", *v)
}

type bar struct {
	label string
	v, v2 *float64
}

// barChart draws one row per label: a bar for v and a thinner one for v2, on a 0..1 scale (negative scores,
// an R^2 below 0, are drawn at 0 and printed).
func barChart(bars []bar, name, name2 string) template.HTML {
	const rowH, labelW, barW = 22, 230, 320
	var b strings.Builder
	h := rowH*len(bars) + 30
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="%d" height="%d" font-size="12" font-family="sans-serif">`, labelW+barW+70, h)
	fmt.Fprintf(&b, `<rect x="%d" y="4" width="10" height="10" fill="#3b6ea5"/><text x="%d" y="13">%s</text>`, labelW, labelW+14, template.HTMLEscapeString(name))
	fmt.Fprintf(&b, `<rect x="%d" y="8" width="10" height="4" fill="#e08a2c"/><text x="%d" y="13">%s</text>`, labelW+90, labelW+104, template.HTMLEscapeString(name2))
	for i, br := range bars {
		y := 22 + i*rowH
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%s</text>`, labelW-6, y+13, template.HTMLEscapeString(br.label))
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="16" fill="#f2f2f2"/>`, labelW, y+2, barW)
		w := func(v *float64) float64 {
			if v == nil || math.IsNaN(*v) {
				return 0
			}
			return math.Max(0, math.Min(1, *v)) * barW
		}
		fmt.Fprintf(&b, `<rect class="bar" x="%d" y="%d" width="%.1f" height="12" fill="#3b6ea5"/>`, labelW, y+4, w(br.v))
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.1f" height="3" fill="#e08a2c"/>`, labelW, y+15, w(br.v2))
		fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text>`, labelW+barW+6, y+14, score(br.v))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) //nolint:gosec // every text above is escaped
}

// jsonlBoards draws the first n rows of a JSONL file that carry a "fen" (puzzles, a feature's top
// examples), with the row's move as an arrow (move, best_move, or the first of moves); nil when no row
// has one.
func (r *Report) jsonlBoards(path string, n, maxBytes int) (*Batch, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<30)
	b := &Batch{Path: path, Arrows: "the row's move"}
	for i := 0; sc.Scan(); i++ {
		var row map[string]any
		if json.Unmarshal(sc.Bytes(), &row) != nil {
			continue
		}
		fen, _ := row["fen"].(string)
		pos, err := board.ParseFEN(fen)
		if err != nil {
			continue
		}
		b.Count++
		if len(b.Positions) >= n {
			continue
		}
		var moves []string
		for _, k := range []string{"move", "best_move", "moves"} {
			if m, ok := row[k].(string); ok && m != "" {
				moves = []string{strings.Fields(m)[0]}
				break
			}
		}
		p, size, err := r.position(i, pos, moves, nil, nil)
		if err != nil {
			return nil, err
		}
		if r.bytes+size > maxBytes {
			continue
		}
		r.bytes += size
		b.Positions = append(b.Positions, p)
	}
	if b.Count == 0 {
		return nil, sc.Err()
	}
	b.Omitted = b.Count - len(b.Positions)
	return b, sc.Err()
}

// FeatureSet is a features.jsonl of "sae features": per feature its density and top examples.
type FeatureSet struct {
	Path     string
	Total    int
	Features []*Feature
}

// Feature is one SAE feature with its examples' boards.
type Feature struct {
	Index    int
	Density  float64
	Examples []Example
}

// Example is a position where a feature is large.
type Example struct {
	Value  float64
	Square string
	FEN    string
	SVG    template.HTML
}

// saeFeatures reads a features.jsonl written by "sae features" (rows with a feature number and its
// examples), drawing each example with the SVG that command wrote beside it, else the bare position; nil
// when path is no such file. The first --limit features are shown.
func (r *Report) saeFeatures(path string, o Options) (*FeatureSet, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<30)
	type row struct {
		Feature  *int    `json:"feature"`
		Density  float64 `json:"density"`
		Examples []struct {
			Value  float64 `json:"value"`
			Square string  `json:"square"`
			FEN    string  `json:"fen"`
			SVG    string  `json:"svg"`
		} `json:"examples"`
	}
	fs := &FeatureSet{Path: path}
	for sc.Scan() {
		var rw row
		if json.Unmarshal(sc.Bytes(), &rw) != nil || rw.Feature == nil || rw.Examples == nil {
			if fs.Total == 0 {
				return nil, nil // not a features file
			}
			continue
		}
		fs.Total++
		if len(fs.Features) >= o.Limit || r.bytes > o.MaxBytes {
			continue
		}
		ft := &Feature{Index: *rw.Feature, Density: rw.Density}
		for _, e := range rw.Examples {
			ex := Example{Value: e.Value, Square: e.Square, FEN: e.FEN}
			svg, err := os.ReadFile(filepath.Join(filepath.Dir(path), filepath.FromSlash(e.SVG)))
			if e.SVG == "" || err != nil || !bytes.Contains(svg, []byte("<svg")) {
				pos, perr := board.ParseFEN(e.FEN)
				if perr != nil {
					continue
				}
				p, _, perr := r.position(len(ft.Examples), pos, nil, nil, nil)
				if perr != nil {
					return nil, perr
				}
				ex.SVG = p.SVG[""]
			} else {
				svg = svg[bytes.Index(svg, []byte("<svg")):]
				r.svgs++
				ex.SVG = template.HTML(uniqueIDs(svg, r.svgs)) //nolint:gosec // written by sae features with internal/render
			}
			r.bytes += len(ex.SVG)
			ft.Examples = append(ft.Examples, ex)
		}
		fs.Features = append(fs.Features, ft)
	}
	if fs.Total == 0 {
		return nil, sc.Err()
	}
	return fs, sc.Err()
}

// cell shows a JSON value in a table cell: scalars as they are, the rest as (shortened) JSON.
func cell(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case float64:
		return fmt.Sprintf("%.6g", x)
	case bool:
		return fmt.Sprint(x)
	case []any:
		// Short lists of numbers or words read better without quotes and digits beyond the third.
		parts := make([]string, len(x))
		for i, e := range x {
			switch y := e.(type) {
			case float64:
				parts[i] = fmt.Sprintf("%.3g", y)
			case string:
				parts[i] = y
			default:
				parts = nil
			}
			if parts == nil {
				break
			}
		}
		if parts != nil {
			if s := strings.Join(parts, ", "); len(s) <= 80 {
				return s
			}
		}
	}
	b, _ := json.Marshal(v)
	if len(b) > 80 {
		return string(b[:77]) + "..."
	}
	return string(b)
}

// objectsTable tabulates objects, with the union of their keys as columns (in first-seen order).
func objectsTable(path, caption string, objs []map[string]any, total, limit int) *Table {
	t := &Table{Path: path, Caption: caption}
	seen := map[string]bool{}
	for _, o := range objs {
		keys := make([]string, 0, len(o))
		for k := range o {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if !seen[k] {
				seen[k] = true
				t.Columns = append(t.Columns, k)
			}
		}
	}
	for i, o := range objs {
		if i >= limit {
			break
		}
		row := make([]string, len(t.Columns))
		for j, c := range t.Columns {
			row[j] = cell(o[c])
		}
		t.Rows = append(t.Rows, row)
	}
	t.More = total - len(t.Rows)
	return t
}

// jsonTable shows a JSON document: its scalar top-level fields, or its longest array of objects.
func jsonTable(path string, raw []byte, limit int) *Table {
	var doc any
	if json.Unmarshal(raw, &doc) != nil {
		return nil
	}
	switch d := doc.(type) {
	case []any:
		return arrayTable(path, "", d, limit)
	case map[string]any:
		var best []any
		bestKey := ""
		fields := map[string]any{}
		for k, v := range d {
			if a, ok := v.([]any); ok && len(a) > len(best) && isObjects(a) {
				best, bestKey = a, k
			} else {
				fields[k] = v
			}
		}
		if best != nil {
			return arrayTable(path, bestKey, best, limit)
		}
		t := &Table{Path: path, Caption: "fields", Columns: []string{"field", "value"}}
		keys := make([]string, 0, len(fields))
		for k := range fields {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			t.Rows = append(t.Rows, []string{k, cell(fields[k])})
		}
		return t
	}
	return nil
}

func isObjects(a []any) bool {
	for _, v := range a {
		if _, ok := v.(map[string]any); !ok {
			return false
		}
	}
	return len(a) > 0
}

func arrayTable(path, key string, a []any, limit int) *Table {
	if !isObjects(a) {
		return nil
	}
	objs := make([]map[string]any, 0, min(len(a), limit))
	for _, v := range a[:min(len(a), limit)] {
		objs = append(objs, v.(map[string]any))
	}
	return objectsTable(path, key, objs, len(a), limit)
}

// jsonlTables shows the first rows of a JSONL file and, when rows carry a rating and a boolean outcome
// (puzzle results), the outcome's rate by rating band of 200.
func jsonlTables(path string, limit int) ([]*Table, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<30)
	var objs []map[string]any
	total := 0
	type band struct{ n, ok int }
	bands := map[int]*band{}
	outcome := ""
	for sc.Scan() {
		var o map[string]any
		if json.Unmarshal(sc.Bytes(), &o) != nil || o == nil {
			continue
		}
		total++
		if len(objs) < limit {
			objs = append(objs, o)
		}
		rating, ok := o["rating"].(float64)
		if !ok {
			continue
		}
		if outcome == "" {
			for _, k := range []string{"solved", "correct", "success", "ok", "pass"} {
				if _, isBool := o[k].(bool); isBool {
					outcome = k
					break
				}
			}
		}
		if v, isBool := o[outcome].(bool); isBool {
			k := int(rating) / 200 * 200
			if bands[k] == nil {
				bands[k] = &band{}
			}
			bands[k].n++
			if v {
				bands[k].ok++
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("report: %s: %w", path, err)
	}
	if total == 0 {
		return nil, nil
	}
	rows := objectsTable(path, "rows", objs, total, limit)
	var out []*Table
	if len(bands) > 0 {
		t := &Table{Path: path, Caption: outcome + " by rating", Columns: []string{"rating", "positions", outcome, "rate"}}
		keys := make([]int, 0, len(bands))
		for k := range bands {
			keys = append(keys, k)
		}
		sort.Ints(keys)
		for _, k := range keys {
			b := bands[k]
			t.Rows = append(t.Rows, []string{fmt.Sprintf("%d-%d", k, k+199), fmt.Sprint(b.n), fmt.Sprint(b.ok), fmt.Sprintf("%.1f%%", 100*float64(b.ok)/float64(b.n))})
		}
		out = append(out, t)
	}
	return append(out, rows), nil
}

func csvTable(path string, limit int) (*Table, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	defer f.Close()
	cr := csv.NewReader(f)
	cr.FieldsPerRecord = -1
	head, err := cr.Read()
	if err == io.EOF {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("report: %s: %w", path, err)
	}
	t := &Table{Path: path, Caption: "rows", Columns: head}
	n := 0
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("report: %s: %w", path, err)
		}
		n++
		if len(t.Rows) < limit {
			t.Rows = append(t.Rows, rec)
		}
	}
	t.More = n - len(t.Rows)
	return t, nil
}

//go:embed assets/report.html
var page string

var tmpl = template.Must(template.New("report").Parse(page))

// Write renders r as one HTML document.
func Write(w io.Writer, r *Report, version string) error {
	data := struct {
		*Report
		Version          string
		PictureKB, MaxKB int
	}{r, version, (r.bytes + 1023) / 1024, r.MaxBytes / 1024}
	if err := tmpl.Execute(w, data); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	return nil
}
