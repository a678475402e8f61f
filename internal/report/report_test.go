package report

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/lczerolens/lczerolens/internal/store"
)

// batchDir writes an output directory of n positions (the start position each time) whose "a" map is the
// row number on every square and "b" map minus it, in the given storage format.
func batchDir(t *testing.T, n int, format store.Format) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "out")
	w, err := store.Open(dir, store.Options{Format: format, ToolVersion: "test", Model: store.ModelInfo{Path: "m.onnx", SHA256: "00"}, Lens: store.LensInfo{Name: "x", Options: map[string]any{}}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		a, b := make([]float32, 64), make([]float32, 64)
		for j := range a {
			a[j], b[j] = float32(i)+float32(j)/100, -float32(i)
		}
		mv := "e2e4"
		meta := store.PositionMeta{Source: "t", Record: i, Ply: 0, FEN: "rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR w KQkq - 0 1", Move: &mv}
		if err := w.Add(meta, []store.Result{{Key: "a", Shape: []int{8, 8}, Data: a}, {Key: "b", Shape: []int{8, 8}, Data: b}, {Key: "v", Shape: []int{3}, Data: []float32{1, 2, 3}}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestBatchSampling: --limit draws that many positions spread evenly, first and last included, with the
// values of their own rows, in both storage formats; results of other shapes are listed, not drawn.
func TestBatchSampling(t *testing.T) {
	for _, format := range []store.Format{store.FormatNPY, store.FormatJSON} {
		r, err := Build(batchDir(t, 10, format), Options{Limit: 4})
		if err != nil {
			t.Fatal(err)
		}
		b := r.Batches[0]
		var idx []int
		for _, p := range b.Positions {
			idx = append(idx, p.Index)
			// Square a1 of map "a" holds the row number; render prints it in the square's title.
			if !strings.Contains(string(p.SVG["a"]), "<title>a1 "+strconv.Itoa(p.Index)+"</title>") {
				t.Errorf("%s: position %d: map a does not show its row's values", format, p.Index)
			}
		}
		if got := fmtInts(idx); got != "0 3 6 9" {
			t.Errorf("%s: sampled rows %v, want 0,3,6,9", format, idx)
		}
		if b.Omitted != 6 || strings.Join(b.Keys, ",") != "a,b" || len(b.Other) != 0 || len(b.Charts) != 1 {
			t.Fatalf("%s: omitted %d, keys %v, other %v, charts %d", format, b.Omitted, b.Keys, b.Other, len(b.Charts))
		}
		// "v" is (1,2,3) at every position: bars of 1/3, 2/3 and all of the 150-unit half axis.
		widths := regexp.MustCompile(`class="bar" [^>]*width="([0-9.]+)"`).FindAllStringSubmatch(string(b.Charts[0].SVG), -1)
		if len(widths) != 3 || widths[0][1] != "50.0" || widths[1][1] != "100.0" || widths[2][1] != "150.0" {
			t.Errorf("%s: chart bars %v, want 50, 100, 150", format, widths)
		}
	}
}

func fmtInts(v []int) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, " ")
}

// TestSizeBound: pictures past MaxBytes are left out, and what is kept stays under it.
func TestSizeBound(t *testing.T) {
	r, err := Build(batchDir(t, 10, store.FormatNPY), Options{Limit: 10, MaxBytes: 100 << 10})
	if err != nil {
		t.Fatal(err)
	}
	n := len(r.Batches[0].Positions)
	if n == 0 || n == 10 || r.bytes > 100<<10 {
		t.Errorf("%d positions, %d bytes of pictures for a bound of %d", n, r.bytes, 100<<10)
	}
}

// TestWriteSelfContained: the document names no other resource and each inline SVG's ids are its own.
func TestWriteSelfContained(t *testing.T) {
	r, err := Build(batchDir(t, 3, store.FormatNPY), Options{})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := Write(&buf, r, "test"); err != nil {
		t.Fatal(err)
	}
	html := buf.String()
	for _, bad := range []string{`src="http`, `href="http`, "<link", "@import", "<?xml"} {
		if strings.Contains(html, bad) {
			t.Errorf("report holds %q", bad)
		}
	}
	ids := regexp.MustCompile(`id="([^"]+)"`).FindAllStringSubmatch(html, -1)
	seen := map[string]bool{}
	for _, m := range ids {
		if seen[m[1]] {
			t.Errorf("id %q appears twice", m[1])
		}
		seen[m[1]] = true
	}
	if got := strings.Count(html, `<svg xmlns="http://www.w3.org/2000/svg" width=`); got != 3*3 {
		t.Errorf("%d boards, want 3 positions x (plain, a, b)", got)
	}
	if got := strings.Count(html, `class="chart"`); got != 2 { // the chart's div and its svg
		t.Errorf("%d chart elements, want one chart of v", got)
	}
}

// TestProbeAndTables: a probe file's chart has bars of score x 320 units; a JSONL of puzzle-like rows is
// summarised by rating band (counted here by hand); CSV files become tables.
func TestProbeAndTables(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("probe.json", `{"format":"lczerolens-probe","concept":"in-check","kind":"binary","model":{"path":"m"},
		"probes":[{"module":"block0","metric":"accuracy","train":10,"test":5,"score":0.5,"train_score":0.75},
		{"module":"block1","metric":"accuracy","train":10,"test":5,"score":null,"train_score":-0.2}]}`)
	write("puzzles.jsonl", `{"id":"a","rating":1210,"solved":true,"fen":"8/8/8/4k3/8/8/4P3/4K3 w - - 0 1","best_move":"e2e4"}
{"id":"b","rating":1390,"solved":false}
{"id":"c","rating":1650,"solved":true}
not json
{"id":"d","rating":1601,"solved":true}
`)
	write("summary.csv", "a,b\n1,2\n3,4\n")
	r, err := Build(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Probes) != 1 || len(r.Probes[0].Rows) != 2 {
		t.Fatalf("probes: %+v", r.Probes)
	}
	chart := string(r.Probes[0].Chart)
	widths := regexp.MustCompile(`class="bar" [^>]*width="([0-9.]+)"`).FindAllStringSubmatch(chart, -1)
	if len(widths) != 2 || widths[0][1] != "160.0" || widths[1][1] != "0.0" {
		t.Errorf("bar widths %v, want 160.0 (0.5 of 320) and 0.0 (no score)", widths)
	}
	var band *Table
	for _, tb := range r.Tables {
		if tb.Caption == "solved by rating" {
			band = tb
		}
	}
	if band == nil {
		t.Fatalf("no rating summary among %d tables", len(r.Tables))
	}
	want := [][]string{{"1200-1399", "2", "1", "50.0%"}, {"1600-1799", "2", "2", "100.0%"}}
	if fmtRows(band.Rows) != fmtRows(want) {
		t.Errorf("by rating %v, want %v", band.Rows, want)
	}
	if len(r.Tables) != 3 {
		t.Errorf("%d tables, want rows + by rating + csv", len(r.Tables))
	}
	if len(r.Batches) != 1 || len(r.Batches[0].Positions) != 1 || r.Batches[0].Positions[0].Move != "e2e4" {
		t.Errorf("the row with a FEN is not drawn with its move: %+v", r.Batches)
	}
	if _, err := Build(filepath.Join(dir, "summary.csv"), Options{}); err != nil {
		t.Errorf("a CSV file alone: %v", err)
	}
	empty := t.TempDir()
	if _, err := Build(empty, Options{}); err == nil {
		t.Error("an empty directory made a report")
	}
}

func fmtRows(rows [][]string) string {
	var b strings.Builder
	for _, r := range rows {
		b.WriteString(strings.Join(r, "|") + ";")
	}
	return b.String()
}

// TestAnalysisEnvelope: an analyse --format json file shows its position with each [8,8] result and the
// network's top moves (at most three) as arrows.
func TestAnalysisEnvelope(t *testing.T) {
	rows := make([]string, 8)
	for i := range rows {
		rows[i] = "[" + strings.TrimSuffix(strings.Repeat(strconv.Itoa(i)+",", 8), ",") + "]"
	}
	env := `{"format":"lczerolens-analysis","model":{"path":"m"},"lens":{"name":"saliency"},
		"position":{"fen":"rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR w KQkq - 0 1"},
		"outputs":{"moves":[{"uci":"e2e4"},{"uci":"d2d4"},{"uci":"g1f3"},{"uci":"c2c4"}]},
		"results":{"saliency":{"dtype":"float32","shape":[8,8],"data":[` + strings.Join(rows, ",") + `]},
		"input_grad":{"dtype":"float32","shape":[112,8,8],"data":[]}}}`
	p := filepath.Join(t.TempDir(), "a.json")
	if err := os.WriteFile(p, []byte(env), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := Build(p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Batches) != 1 || len(r.Batches[0].Positions) != 1 {
		t.Fatalf("batches: %+v", r.Batches)
	}
	b := r.Batches[0]
	pos := b.Positions[0]
	if pos.Move != "e2e4 d2d4 g1f3" || strings.Join(b.Keys, ",") != "saliency" || len(b.Other) != 1 {
		t.Errorf("moves %q, keys %v, other %v", pos.Move, b.Keys, b.Other)
	}
	// Rank 5 (row 4 of the data, a1 first) holds 4s.
	if svg := string(pos.SVG["saliency"]); !strings.Contains(svg, "<title>e5 4</title>") || !strings.Contains(svg, "<title>h1 0</title>") {
		t.Errorf("saliency board does not show the data's values")
	}
}

// TestSAEFeatures: a features.jsonl shows each feature with its examples, the SVG written beside it when
// there is one (its ids made unique), else the bare position; --limit bounds the features shown.
func TestSAEFeatures(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "svg"), 0o755); err != nil {
		t.Fatal(err)
	}
	svg := `<?xml version="1.0"?>` + "\n" + `<svg xmlns="http://www.w3.org/2000/svg"><defs><linearGradient id="colorbar"/></defs><rect fill="url(#colorbar)"/><title>mark</title></svg>`
	if err := os.WriteFile(filepath.Join(dir, "svg", "0_0.svg"), []byte(svg), 0o644); err != nil {
		t.Fatal(err)
	}
	fen := "8/8/8/4k3/8/8/4P3/4K3 w - - 0 1"
	var lines []string
	for f := range 3 {
		lines = append(lines, `{"feature":`+strconv.Itoa(f)+`,"density":0.25,"examples":[{"value":2,"square":"e2","fen":"`+fen+`","svg":"svg/`+strconv.Itoa(f)+`_0.svg"}]}`)
	}
	if err := os.WriteFile(filepath.Join(dir, "features.jsonl"), []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := Build(dir, Options{Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Features) != 1 || r.Features[0].Total != 3 || len(r.Features[0].Features) != 2 || len(r.Tables) != 0 {
		t.Fatalf("features: %+v, tables %d", r.Features, len(r.Tables))
	}
	first := string(r.Features[0].Features[0].Examples[0].SVG)
	second := string(r.Features[0].Features[1].Examples[0].SVG)
	if !strings.Contains(first, "<title>mark</title>") || strings.Contains(first, "<?xml") || !strings.Contains(first, `url(#colorbar-`) {
		t.Errorf("the written SVG is not inlined with its own ids: %s", first)
	}
	if !strings.Contains(second, `data-square="e2"`) {
		t.Errorf("a missing SVG is not replaced by the position's board")
	}
}
