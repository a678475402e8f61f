package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/lczerolens/lczerolens/internal/board"
	"github.com/lczerolens/lczerolens/internal/demonet"
	"github.com/lczerolens/lczerolens/internal/testutil"
)

// transformDumps are the lc0 dumps of issue 22 and the --policy-transpose their policy fields follow: the
// planes-consistent rewrites for the default, the untouched dumps for lc0-v0.32.
var transformDumps = []struct {
	policy string
	dirs   []string
}{
	{"planes", []string{"reference/lc0/planes-consistent/transforms", "reference/lc0/planes-consistent/synthetic"}},
	{"lc0-v0.32", []string{"reference/lc0/transforms", "reference/lc0/synthetic"}},
}

// chess960Castling names the records whose FEN gives Chess960 castling rights, where lc0 castles b1a1 and
// b1h1; lczerolens plays standard chess only and refuses them as input errors (checked on encode here).
var chess960Castling = map[string]bool{"frc_castling_KQkq_w_00": true}

// cliFills maps a dump's history_fill to --history-fill.
var cliFills = map[string]string{"fen_only": "fen-only", "always": "always", "no": "no"}

// transformCase is one record to run: lc0's record, or for a position where lc0 crashed (format 5, fill
// fen_only) its fill-no record run with fill fen-only, which is what lczerolens documents it encodes there.
type transformCase struct {
	testutil.RefRecord
	fill    string // --history-fill
	crashed bool
}

// dumpCases reads one dump and groups its cases by transform value, leaving out Chess960 castling.
func dumpCases(t *testing.T, path string) map[int][]transformCase {
	t.Helper()
	recs := testutil.ReadRefdump(t, path)
	var alt []testutil.RefRecord
	out := map[int][]transformCase{}
	for i, r := range recs {
		c := transformCase{RefRecord: r, fill: cliFills[r.HistoryFill]}
		if r.Error != "" {
			if alt == nil {
				alt = testutil.ReadRefdump(t, strings.Replace(path, ".refdump.jsonl.gz", ".refdump.histfill-no.jsonl.gz", 1))
			}
			if i >= len(alt) || alt[i].Name != r.Name || alt[i].Error != "" {
				t.Fatalf("%s: %s: lc0 failed (%s) and the fill-no dump does not hold it", path, r.Name, r.Error)
			}
			c = transformCase{RefRecord: alt[i], fill: c.fill, crashed: true}
		}
		if chess960Castling[r.Name] {
			code, _, stderr := runCLI(t, nil, append([]string{"encode"}, posArgs(r, cliFills[r.HistoryFill])...)...)
			if code != ExitUsage || !strings.Contains(stderr, "Chess960") {
				t.Errorf("%s: encode: exit %d %q, want %d naming Chess960", r.Name, code, stderr, ExitUsage)
			}
			continue
		}
		if c.fill == "" {
			t.Fatalf("%s: %s: history fill %q", path, r.Name, r.HistoryFill)
		}
		out[c.Transform] = append(out[c.Transform], c)
	}
	return out
}

// modelFor returns the ONNX model a dump was made with.
func modelFor(t *testing.T, dump string) string {
	t.Helper()
	name := strings.SplitN(filepath.Base(dump), ".refdump", 2)[0]
	if p := filepath.Join(testutil.Root(t), "..", "shared", "models", "synthetic", name+".onnx"); fileExists(p) {
		return p
	}
	return testutil.Shared(t, "models", name+".onnx")
}

// posArgs are the position flags of a record.
func posArgs(r testutil.RefRecord, fill string) []string {
	args := []string{"--moves", strings.Join(r.MovesFromFEN, " "), "--history-fill", fill, "--input-format", strconv.Itoa(r.InputFormat)}
	if r.FENStart == "startpos" {
		return append(args, "--startpos")
	}
	return append(args, "--fen", r.FENStart)
}

// predictor runs predict on many positions of one model with one factory, so that the network and its ONNX
// Runtime session are made once: the configuration (model, history fill, policy transpose) comes from the
// environment as LoadConfig reads it.
type predictor struct {
	f   *Factory
	out *bytes.Buffer
}

func newPredictor(t *testing.T, env map[string]string) *predictor {
	t.Helper()
	streams, _, out, _ := TestIO()
	f := NewFactory(streams, "test")
	setEnv(t, env)
	cfg, _, err := LoadConfig("", nil)
	if err != nil {
		t.Fatal(err)
	}
	f.setConfig(cfg)
	return &predictor{f: f, out: out}
}

// close releases the network's sessions and ONNX Runtime.
func (p *predictor) close(t *testing.T) {
	if err := p.f.Close(); err != nil {
		t.Error(err)
	}
}

func (p *predictor) predict(t *testing.T, r testutil.RefRecord) predictJSON {
	t.Helper()
	p.out.Reset()
	pos := positionFlags{FEN: r.FENStart, Moves: strings.Join(r.MovesFromFEN, " "), InputFormat: strconv.Itoa(r.InputFormat)}
	if r.FENStart == "startpos" {
		pos = positionFlags{Startpos: true, Moves: pos.Moves, InputFormat: pos.InputFormat}
	}
	if err := runPredict(&PredictOptions{Factory: p.f, Pos: pos, JSON: true}); err != nil {
		t.Fatalf("%s: predict: %v", r.Name, err)
	}
	var doc predictJSON
	if err := json.Unmarshal(p.out.Bytes(), &doc); err != nil {
		t.Fatalf("%s: %v", r.Name, err)
	}
	return doc
}

// diffs holds the largest differences from lc0 seen for one transform value.
type diffs struct{ p, wdl, mlh float64 }

// TestEncodePredictTransforms is issue 22's acceptance 1 and 2 through the commands: for every record of the
// transform and synthetic dumps, `encode` with the record's input format reports lc0's transform and the
// policy transpose used, gives the planes bit for bit and every legal move's nn_index; `predict` gives the
// move probabilities, W/D/L and moves-left within 1e-5 of lc0's. With the default --policy-transpose
// against the planes-consistent dumps, with lc0-v0.32 against the untouched ones. The positions where lc0
// crashes (format 5, fill fen_only) must work too and give what lc0 gives with fill no. Subtests per
// transform value.
func TestEncodePredictTransforms(t *testing.T) {
	lib := testutil.ORTLib(t)
	for _, set := range transformDumps {
		t.Run(set.policy, func(t *testing.T) {
			var files []string
			for _, dir := range set.dirs {
				fs, _ := filepath.Glob(filepath.Join(testutil.Shared(t, dir), "*.refdump*.jsonl.gz"))
				files = append(files, fs...)
			}
			if len(files) == 0 {
				t.Fatal("no dumps")
			}
			sort.Strings(files)
			worst := map[int]*diffs{}
			records := map[int]int{}
			for _, file := range files {
				name := filepath.Base(filepath.Dir(file)) + "/" + strings.TrimSuffix(filepath.Base(file), ".jsonl.gz")
				t.Run(name, func(t *testing.T) {
					groups := dumpCases(t, file)
					model := modelFor(t, file)
					fill := ""
					for _, g := range groups {
						fill = g[0].fill // the same for every case of a file
					}
					env := map[string]string{"LCZEROLENS_ORT_LIB": lib, "LCZEROLENS_MODEL": model,
						"LCZEROLENS_HISTORY_FILL": fill, "LCZEROLENS_POLICY_TRANSPOSE": set.policy, "HOME": t.TempDir()}
					func() {
						pr := newPredictor(t, env)
						defer pr.close(t) // before any other command shuts ONNX Runtime down
						for tr := 0; tr < 8; tr++ {
							if len(groups[tr]) == 0 {
								continue
							}
							if worst[tr] == nil {
								worst[tr] = &diffs{}
							}
							t.Run(fmt.Sprintf("transform=%d", tr), func(t *testing.T) {
								for i, c := range groups[tr] {
									checkEncode(t, c, set.policy, pr.encode(t, c.RefRecord, i == 0))
									checkPredict(t, c, set.policy, pr.predict(t, c.RefRecord), worst[tr])
									records[tr]++
								}
							})
						}
					}()
					// The flag, not the environment, through the whole command: one case of the highest transform
					// (transposed where the dump has one).
					for tr := 7; tr >= 0; tr-- {
						if len(groups[tr]) == 0 {
							continue
						}
						c := groups[tr][0]
						args := append([]string{"predict", "--json", "--top", "0", "--model", model, "--policy-transpose", set.policy}, posArgs(c.RefRecord, c.fill)...)
						code, stdout, stderr := runCLI(t, map[string]string{"LCZEROLENS_ORT_LIB": lib}, args...)
						if code != 0 {
							t.Fatalf("%s: predict: exit %d: %s", c.Name, code, stderr)
						}
						var doc predictJSON
						if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
							t.Fatal(err)
						}
						checkPredict(t, c, set.policy, doc, &diffs{})
						break
					}
				})
			}
			for tr := 0; tr < 8; tr++ {
				if d := worst[tr]; d != nil {
					t.Logf("transform %d: %d records, max |p - lc0| %.2g, max |wdl - lc0| %.2g, max |mlh - lc0| %.2g", tr, records[tr], d.p, d.wdl, d.mlh)
				}
			}
		})
	}
}

// encode runs encode on one record with the predictor's configuration: through the whole command with its
// flags when cmd is set, else (faster) its run step alone.
func (p *predictor) encode(t *testing.T, r testutil.RefRecord, cmd bool) encodedJSON {
	t.Helper()
	cfg := p.f.Config()
	var stdout []byte
	if cmd {
		code, out, stderr := runCLI(t, nil, append([]string{"encode", "--policy-transpose", cfg.PolicyTranspose}, posArgs(r, cfg.HistoryFill)...)...)
		if code != 0 {
			t.Fatalf("%s: encode: exit %d: %s", r.Name, code, stderr)
		}
		stdout = []byte(out)
	} else {
		p.out.Reset()
		pos := positionFlags{FEN: r.FENStart, Moves: strings.Join(r.MovesFromFEN, " "), InputFormat: strconv.Itoa(r.InputFormat)}
		if r.FENStart == "startpos" {
			pos = positionFlags{Startpos: true, Moves: pos.Moves, InputFormat: pos.InputFormat}
		}
		if err := runEncode(&EncodeOptions{IO: p.f.IO, Config: p.f.Config, Pos: pos, Format: "json"}); err != nil {
			t.Fatalf("%s: encode: %v", r.Name, err)
		}
		stdout = p.out.Bytes()
	}
	var doc encodedJSON
	if err := json.Unmarshal(stdout, &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// checkEncode compares encode's output on one case with the record.
func checkEncode(t *testing.T, c transformCase, policy string, doc encodedJSON) {
	t.Helper()
	if doc.Transform != c.Transform || doc.PolicyTranspose != policy || doc.HistoryFill != c.fill {
		t.Errorf("%s: encode says transform %d, policy_transpose %q, history_fill %q; want %d, %q, %q", c.Name, doc.Transform, doc.PolicyTranspose, doc.HistoryFill, c.Transform, policy, c.fill)
	}
	want := testutil.DecodePlanes(t, c.RefRecord)
	for p := range board.NumPlanes {
		for sq := range 64 {
			if got := doc.Planes[p][sq/8][sq%8]; got != want[p*64+sq] {
				t.Fatalf("%s: plane %d square %s = %g, lc0 %g", c.Name, p, board.Square(sq), got, want[p*64+sq])
			}
		}
	}
	legal := map[string]int{}
	for _, m := range doc.Legal {
		legal[m.UCI] = m.Index
	}
	if len(legal) != len(c.LegalMoves) {
		t.Errorf("%s: %d legal moves, lc0 %d", c.Name, len(legal), len(c.LegalMoves))
	}
	for _, m := range c.LegalMoves {
		if idx, ok := legal[m.UCI]; !ok || idx != m.NNIndex {
			t.Errorf("%s: %s index %d (present %v), lc0 %d", c.Name, m.UCI, idx, ok, m.NNIndex)
		}
	}
}

// checkPredict compares predict's output on one case with the record, keeping the largest differences.
func checkPredict(t *testing.T, c transformCase, policy string, doc predictJSON, worst *diffs) {
	t.Helper()
	const tol = 1e-5
	if e := doc.InputEncoding; e.Transform != c.Transform || e.PolicyTranspose != policy || e.InputFormat != board.InputFormat(c.InputFormat).String() {
		t.Errorf("%s: predict's input_encoding %+v, want transform %d and policy_transpose %q", c.Name, e, c.Transform, policy)
	}
	p := map[string]float64{}
	for _, m := range doc.Moves {
		p[m.UCI] = float64(m.P)
	}
	if len(p) != len(c.LegalMoves) {
		t.Fatalf("%s: %d moves, lc0 %d", c.Name, len(p), len(c.LegalMoves))
	}
	for _, m := range c.LegalMoves {
		d := math.Abs(p[m.UCI] - m.PExact)
		worst.p = math.Max(worst.p, d)
		if d > tol {
			t.Errorf("%s: p(%s) = %g, lc0 %g", c.Name, m.UCI, p[m.UCI], m.PExact)
		}
	}
	if len(doc.WDL) != 3 {
		t.Fatalf("%s: wdl %v", c.Name, doc.WDL)
	}
	for k, w := range []float64{c.W, c.D, c.L} {
		d := math.Abs(float64(doc.WDL[k]) - w)
		worst.wdl = math.Max(worst.wdl, d)
		if d > tol {
			t.Errorf("%s: wdl %v, lc0 %g %g %g", c.Name, doc.WDL, c.W, c.D, c.L)
		}
	}
	if c.HasMLH {
		if doc.MLH == nil || c.M == nil {
			t.Fatalf("%s: mlh %v, lc0 %v", c.Name, doc.MLH, c.M)
		}
		d := math.Abs(float64(*doc.MLH) - *c.M)
		worst.mlh = math.Max(worst.mlh, d)
		if d > tol {
			t.Errorf("%s: mlh %g, lc0 %g", c.Name, *doc.MLH, *c.M)
		}
	}
}

// TestSaliencyAbsoluteFrameTransforms is issue 22's acceptance 3: saliency heatmaps are in the absolute board
// frame for every canonical transform. Every pawnless position of the transform dumps is analysed (batch, and
// one per transform through analyse) with the demo network in a canonical input format, and the heatmap is
// compared with closed forms computed from the board alone: for the value target, each man's value (plus for
// ours, minus for theirs) times K(W+L-(W-L)^2) on its real square, under either policy transpose; for the
// logit of the best move (default policy transpose), the captured man's value on the real destination square
// and nothing elsewhere.
func TestSaliencyAbsoluteFrameTransforms(t *testing.T) {
	env := map[string]string{"LCZEROLENS_ORT_LIB": testutil.ORTLib(t)}
	recs := testutil.ReadRefdump(t, filepath.Join(testutil.Shared(t, "reference/lc0/planes-consistent/transforms"), "se_apol_mlh.refdump.jsonl.gz"))
	dir := t.TempDir()
	var lines []string
	var games []*board.Game
	for _, r := range recs {
		if !strings.HasPrefix(r.Name, "pawnless_") && !strings.HasPrefix(r.Name, "tiebreak_") {
			continue
		}
		g, err := board.ParseGame(r.FENStart, strings.Join(r.MovesFromFEN, " "))
		if err != nil {
			t.Fatal(err)
		}
		line, _ := json.Marshal(map[string]any{"fen": r.FENStart, "moves": r.MovesFromFEN})
		lines = append(lines, string(line))
		games = append(games, g)
	}
	in := filepath.Join(dir, "pawnless.jsonl")
	if err := os.WriteFile(in, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	heats := map[string][][64]float64{}
	for _, run := range []struct{ target, policy string }{{"value", "planes"}, {"value", "lc0-v0.32"}, {"policy:best", "planes"}} {
		out := filepath.Join(dir, strings.ReplaceAll(run.target, ":", "-")+"-"+run.policy)
		code, _, stderr := runCLI(t, env, "batch", in, "-o", out, "--format", "json", "--quiet", "--lens", "saliency", "--target", run.target,
			"--input-format", "canonical", "--policy-transpose", run.policy)
		if code != 0 {
			t.Fatalf("batch %s %s: exit %d: %s", run.target, run.policy, code, stderr)
		}
		rows := readLines(t, filepath.Join(out, "results.jsonl"))
		if len(rows) != len(games) {
			t.Fatalf("batch %s %s: %d rows, want %d", run.target, run.policy, len(rows), len(games))
		}
		for _, row := range rows {
			var rec struct {
				Results map[string]json.RawMessage `json:"results"`
			}
			if err := json.Unmarshal([]byte(row), &rec); err != nil {
				t.Fatal(err)
			}
			heats[run.target+" "+run.policy] = append(heats[run.target+" "+run.policy], heatOf(t, rec.Results["saliency"]))
		}
	}
	for tr := 0; tr < 8; tr++ {
		t.Run(fmt.Sprintf("transform=%d", tr), func(t *testing.T) {
			n, captures, analysed := 0, 0, false
			for i, g := range games {
				if board.Transform(g, board.InputCanonical) != tr {
					continue
				}
				pos := g.Current()
				n++
				tag := fmt.Sprintf("%s (row %d)", pos.FEN(), i)
				want := valueHeat(pos)
				checkHeat(t, tag+" value planes", heats["value planes"][i], want)
				checkHeat(t, tag+" value lc0-v0.32", heats["value lc0-v0.32"][i], want)
				if best, ok := bestMoveHeat(pos); ok {
					checkHeat(t, tag+" policy:best", heats["policy:best planes"][i], best)
					for _, v := range best {
						if v != 0 {
							captures++
							break
						}
					}
				}
				if !analysed {
					// The single-position command, with its envelope.
					args := []string{"analyse", "--lens", "saliency", "--target", "value", "--fen", pos.FEN(), "--input-format", "canonical"}
					heat, enc := saliency(t, env, args)
					if enc.Transform != tr || enc.PolicyTranspose != "planes" {
						t.Errorf("%s: envelope's input_encoding %+v, want transform %d, planes", tag, enc, tr)
					}
					checkHeat(t, tag+" analyse", heat, want)
					analysed = true
				}
			}
			if n == 0 || captures == 0 {
				t.Fatalf("%d positions, %d with a capture as the best move", n, captures)
			}
			t.Logf("%d positions, %d with a capture as the best move", n, captures)
		})
	}
}

// bestMoveHeat is the closed form of the demo network's saliency of its best move's logit (gradient times
// input): the logit of a move is the value of the man it captures plus 0.01 times the centrality of its
// destination, both the same in every frame, so the best move is found on the board itself and the heatmap
// is the captured man's value on its square (all zero for a quiet move). ok is false when moves to different
// squares tie for best.
func bestMoveHeat(pos *board.Position) (heat [64]float64, ok bool) {
	best, to := math.Inf(-1), board.Square(-1)
	ok = true
	for _, m := range pos.LegalMoves() {
		v := 0.0
		if _, victim, occupied := pos.PieceAt(m.To); occupied {
			v = demonet.PieceValues[victim-board.Pawn]
		}
		f, r := float64(m.To.File()), float64(m.To.Rank())
		logit := v + demonet.CentralityWeight*(6-(math.Abs(2*f-7)+math.Abs(2*r-7)-2)/2)
		switch {
		case logit > best+1e-9:
			best, to, ok = logit, m.To, true
			heat = [64]float64{}
			heat[m.To] = v
		case logit > best-1e-9 && m.To != to:
			ok = false
		}
	}
	return heat, ok
}

// heatOf decodes one [8,8] result.
func heatOf(t *testing.T, raw json.RawMessage) [64]float64 {
	t.Helper()
	var res struct {
		Data [][]float64 `json:"data"`
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		t.Fatal(err)
	}
	var heat [64]float64
	if len(res.Data) != 8 {
		t.Fatalf("heatmap with %d rows", len(res.Data))
	}
	for r := range 8 {
		for f := range 8 {
			heat[r*8+f] = res.Data[r][f]
		}
	}
	return heat
}

// saliency runs analyse and returns the heatmap (a1 at index 0) and the envelope's input encoding.
func saliency(t *testing.T, env map[string]string, args []string) ([64]float64, encodingJSON) {
	t.Helper()
	code, stdout, stderr := runCLI(t, env, args...)
	if code != 0 {
		t.Fatalf("%v: exit %d: %s", args, code, stderr)
	}
	var e struct {
		InputEncoding encodingJSON               `json:"input_encoding"`
		Results       map[string]json.RawMessage `json:"results"`
	}
	if err := json.Unmarshal([]byte(stdout), &e); err != nil {
		t.Fatal(err)
	}
	return heatOf(t, e.Results["saliency"]), e.InputEncoding
}

// valueHeat is the closed form of the demo network's value saliency (gradient times input): on each man's
// square, K(W+L-(W-L)^2) times its value, positive for the side to move's men and negative for the others.
func valueHeat(pos *board.Position) [64]float64 {
	planes := make([]float32, board.NumPlanes*64)
	board.NewGame(pos).Encode(board.FillNo, planes) // the material, in any frame
	w, _, l := demonet.Value(planes)
	g := demonet.K * (w + l - (w-l)*(w-l))
	var out [64]float64
	for sq := board.Square(0); sq < 64; sq++ {
		c, pt, ok := pos.PieceAt(sq)
		if !ok {
			continue
		}
		v := g * demonet.PieceValues[pt-board.Pawn]
		if c != pos.SideToMove() {
			v = -v
		}
		out[sq] = v
	}
	return out
}

func checkHeat(t *testing.T, tag string, got, want [64]float64) {
	t.Helper()
	for sq := range 64 {
		if math.Abs(got[sq]-want[sq]) > 1e-5 {
			t.Errorf("%s: saliency on %s = %g, closed form %g", tag, board.Square(sq), got[sq], want[sq])
		}
	}
}
