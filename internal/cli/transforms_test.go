package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
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

// chess960Castling names the records whose FEN gives Chess960 castling rights, which lczerolens does not play
// (the board package drops them); lc0 castles b1a1 and b1h1 there.
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
	f.Getenv = envFunc(env)
	cfg, _, err := LoadConfig("", nil, f.Getenv)
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
								for _, c := range groups[tr] {
									checkEncode(t, c, set.policy)
									checkPredict(t, c, set.policy, pr.predict(t, c.RefRecord), worst[tr])
									records[tr]++
								}
							})
						}
					}()
					// The flag, not the environment, through the whole command: one case per transform.
					for tr := 0; tr < 8; tr++ {
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

// checkEncode runs encode on one case and compares it with the record.
func checkEncode(t *testing.T, c transformCase, policy string) {
	t.Helper()
	code, stdout, stderr := runCLI(t, nil, append([]string{"encode", "--policy-transpose", policy}, posArgs(c.RefRecord, c.fill)...)...)
	if code != 0 {
		t.Fatalf("%s: encode: exit %d: %s", c.Name, code, stderr)
	}
	var doc encodedJSON
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
		t.Fatal(err)
	}
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
// frame for every canonical transform. On the pawnless positions of the transform dumps, analysed with the
// demo network in a canonical input format, the heatmap has closed forms computed from the board alone:
// for the value target, each man's value (plus for ours, minus for theirs) times K(W+L-(W-L)^2) on its real
// square; for the logit of a capture (default policy indexing), the captured man's value on the real
// destination square and nothing elsewhere.
func TestSaliencyAbsoluteFrameTransforms(t *testing.T) {
	env := map[string]string{"LCZEROLENS_ORT_LIB": testutil.ORTLib(t)}
	recs := testutil.ReadRefdump(t, filepath.Join(testutil.Shared(t, "reference/lc0/planes-consistent/transforms"), "se_apol_mlh.refdump.jsonl.gz"))
	byTransform := map[int][]testutil.RefRecord{}
	for _, r := range recs {
		if strings.HasPrefix(r.Name, "pawnless_") || strings.HasPrefix(r.Name, "tiebreak_") {
			byTransform[r.Transform] = append(byTransform[r.Transform], r)
		}
	}
	for tr := 0; tr < 8; tr++ {
		t.Run(fmt.Sprintf("transform=%d", tr), func(t *testing.T) {
			rs := byTransform[tr]
			if len(rs) == 0 {
				t.Fatal("no pawnless record")
			}
			values, captures := 0, 0
			for _, r := range rs {
				if values >= 3 && captures >= 2 {
					break
				}
				g, err := board.ParseGame(r.FENStart, strings.Join(r.MovesFromFEN, " "))
				if err != nil {
					t.Fatal(err)
				}
				pos := g.Current()
				if got := board.Transform(g, board.InputCanonical); got != tr {
					t.Fatalf("%s: transform %d, lc0 %d", r.Name, got, tr)
				}
				args := []string{"analyse", "--lens", "saliency", "--fen", r.FENStart, "--moves", strings.Join(r.MovesFromFEN, " "), "--input-format", "canonical"}
				if values < 3 {
					for _, policy := range []string{"planes", "lc0-v0.32"} {
						heat, enc := saliency(t, env, append(args, "--target", "value", "--policy-transpose", policy))
						if enc.Transform != tr || enc.PolicyTranspose != policy {
							t.Errorf("%s: envelope's input_encoding %+v, want transform %d, %s", r.Name, enc, tr, policy)
						}
						checkHeat(t, r.Name+" value "+policy, heat, valueHeat(pos))
					}
					values++
				}
				if captures >= 2 {
					continue
				}
				// A capture of a man: its logit reads the captured man's value at the destination.
				for _, m := range pos.LegalMoves() {
					_, victim, ok := pos.PieceAt(m.To)
					if !ok || victim == board.King {
						continue
					}
					heat, _ := saliency(t, env, append(args, "--target", "policy:"+m.UCI()))
					var want [64]float64
					want[m.To] = demonet.PieceValues[victim-board.Pawn]
					checkHeat(t, r.Name+" policy:"+m.UCI(), heat, want)
					captures++
					break
				}
			}
			if captures == 0 {
				t.Error("no position with a capture")
			}
			t.Logf("value saliency on %d positions, capture saliency on %d", values, captures)
		})
	}
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
	var sal struct {
		Data [][]float64 `json:"data"`
	}
	if err := json.Unmarshal([]byte(stdout), &e); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(e.Results["saliency"], &sal); err != nil {
		t.Fatal(err)
	}
	var heat [64]float64
	data := sal.Data
	if len(data) != 8 {
		t.Fatalf("saliency shape: %d rows", len(data))
	}
	for r := range 8 {
		for f := range 8 {
			heat[r*8+f] = data[r][f]
		}
	}
	return heat, e.InputEncoding
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
