package probe

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"math/rand/v2"
	"slices"

	"gonum.org/v1/gonum/mat"
)

// SquareFitter trains one per-square probe of a module whose activations are C channels over the 64 squares
// ([C,8,8]): a single linear map, shared by the squares, from a square's C activations to its label. It is
// ridge regression on the label's one-hot code (K outputs for K classes; one 0/1 output for two), a least
// squares classifier: the prediction is the class with the largest output, or for a top-1 concept the
// square with the largest output. Training rows are never kept: the normal equations are accumulated per
// cross-validation fold (C x C each), so the penalty is chosen over all training positions and whole groups.
type SquareFitter struct {
	module   string
	channels int
	classes  int // label values
	outputs  int // 1 for two classes, else classes
	top1     bool
	sqMajor  bool // activations laid out [square][channel] (attention bodies' tokens), else [channel][square]
	opts     FitOptions
	folds    []*squareSums
	test     *posReservoir
	train    *posReservoir // for the training score
	counts   [2][64][]int  // label counts per split and square
	positive [2]int        // top-1 concepts: positions per split
	ctx      context.Context
	// Bilinear probes (opts.Bilinear) keep training positions instead of normal equations.
	fitSet   *posReservoir
	anchored int // 0 unknown, 1 every position has an anchor square, -1 none has
}

// squareSums are the normal equations of a set of (square, label) rows.
type squareSums struct {
	n          float64
	sumX, sumY []float64
	gram       *mat.SymDense // sum x x'
	xy         *mat.Dense    // sum x y'
	yy         []float64     // sum y^2 per output
}

func newSquareSums(c, k int) *squareSums {
	return &squareSums{sumX: make([]float64, c), sumY: make([]float64, k), gram: mat.NewSymDense(c, nil), xy: mat.NewDense(c, k, nil), yy: make([]float64, k)}
}

func (s *squareSums) addSums(o *squareSums, sign float64) {
	s.n += sign * o.n
	for j := range s.sumX {
		s.sumX[j] += sign * o.sumX[j]
	}
	for k := range s.sumY {
		s.sumY[k] += sign * o.sumY[k]
		s.yy[k] += sign * o.yy[k]
	}
	var g mat.SymDense
	g.ScaleSym(sign, o.gram)
	s.gram.AddSym(s.gram, &g)
	var xy mat.Dense
	xy.Scale(sign, o.xy)
	s.xy.Add(s.xy, &xy)
}

// posReservoir keeps a uniform sample of whole positions: activations [C][64], labels, anchor squares (-1:
// none) and cross-validation folds.
type posReservoir struct {
	cap, seen int
	x         [][]float32
	y         [][64]int
	anchor    []int
	fold      []int
	rng       *rand.Rand
}

func (r *posReservoir) add(x []float32, y [64]int, anchor, fold int) {
	r.seen++
	if len(r.x) < r.cap {
		r.x, r.y = append(r.x, slices.Clone(x)), append(r.y, y)
		r.anchor, r.fold = append(r.anchor, anchor), append(r.fold, fold)
		return
	}
	if k := r.rng.IntN(r.seen); k < r.cap {
		copy(r.x[k], x)
		r.y[k], r.anchor[k], r.fold[k] = y, anchor, fold
	}
}

// NewSquareFitter starts a per-square probe with the given number of label classes (2 for yes/no); top1 marks
// a concept with one square labelled 1 per position. opts.Grid, when set, is the penalties cross-validated.
func NewSquareFitter(module string, channels, classes int, top1 bool, opts FitOptions) *SquareFitter {
	return NewSquareFitterLayout(module, channels, classes, top1, false, opts)
}

// NewSquareFitterLayout is NewSquareFitter for activations laid out [square][channel] when squareMajor (the
// [64,E] token outputs of attention bodies), else [channel][square] ([C,8,8] convolution outputs).
func NewSquareFitterLayout(module string, channels, classes int, top1, squareMajor bool, opts FitOptions) *SquareFitter {
	if opts.Folds < 2 {
		opts.Folds = DefaultFolds
	}
	if opts.MaxRows < 1 {
		opts.MaxRows = DefaultFitOptions().MaxRows
	}
	k := classes
	if classes == 2 {
		k = 1
	}
	f := &SquareFitter{module: module, channels: channels, classes: classes, outputs: k, top1: top1, sqMajor: squareMajor, opts: opts, ctx: context.Background(),
		test:  &posReservoir{cap: max(opts.MaxRows/8, 1), rng: rand.New(rand.NewPCG(opts.Seed, 0x7e57))},
		train: &posReservoir{cap: max(opts.MaxRows/16, 1), rng: rand.New(rand.NewPCG(opts.Seed, 0x7a1))},
	}
	if opts.Bilinear {
		f.fitSet = &posReservoir{cap: max(opts.MaxRows/4, 1), rng: rand.New(rand.NewPCG(opts.Seed, 0xb111))}
	} else {
		for range opts.Folds {
			f.folds = append(f.folds, newSquareSums(channels, k))
		}
	}
	for s := range f.counts {
		for sq := range 64 {
			f.counts[s][sq] = make([]int, classes)
		}
	}
	return f
}

// Add records one position: x its activations laid out [channel][square] (or [square][channel], see
// NewSquareFitterLayout; square = the activation's own index, 0..63), labels its per-square labels in the same order, group its record (a game), and whether it
// is held out.
func (f *SquareFitter) Add(x []float32, labels [64]int, group int, holdout bool) error {
	return f.AddAnchored(x, labels, -1, group, holdout)
}

// AddAnchored is Add for a position with an anchor square (-1: none), the square whose activations a
// bilinear probe conditions on (see BilinearFit); a linear probe ignores it. Either every position of a
// fitter has an anchor or none has.
func (f *SquareFitter) AddAnchored(x []float32, labels [64]int, anchor, group int, holdout bool) error {
	if len(x) != 64*f.channels {
		return fmt.Errorf("probe %s: %d activation values, want %d channels x 64 squares", f.module, len(x), f.channels)
	}
	if anchor < -1 || anchor > 63 {
		return fmt.Errorf("probe %s: anchor square %d, want 0..63 or -1", f.module, anchor)
	}
	if f.opts.Bilinear {
		has := 1
		if anchor < 0 {
			has = -1
		}
		if f.anchored == 0 {
			f.anchored = has
		} else if f.anchored != has {
			return fmt.Errorf("probe %s: some positions have an anchor square and some do not", f.module)
		}
	}
	split := 0
	if holdout {
		split = 1
	}
	for sq, l := range labels {
		if l < 0 || l >= f.classes {
			return fmt.Errorf("probe %s: label %d on square %d, want 0..%d", f.module, l, sq, f.classes-1)
		}
		f.counts[split][sq][l]++
	}
	if holdout {
		f.test.add(x, labels, anchor, -1)
		return nil
	}
	f.train.add(x, labels, anchor, -1)
	if f.opts.Bilinear {
		f.fitSet.add(x, labels, anchor, f.fold(group))
		return nil
	}
	s := f.folds[f.fold(group)]
	rows := mat.NewDense(64, f.channels, nil)
	ys := mat.NewDense(64, f.outputs, nil)
	for sq := range 64 {
		row := rows.RawRowView(sq)
		for c := range f.channels {
			v := float64(x[at(f.sqMajor, f.channels, c, sq)])
			row[c] = v
			s.sumX[c] += v
		}
		f.target(labels[sq], ys.RawRowView(sq))
	}
	for sq := range 64 {
		for k, y := range ys.RawRowView(sq) {
			s.sumY[k] += y
			s.yy[k] += y * y
		}
	}
	s.n += 64
	s.gram.SymRankK(s.gram, 1, rows.T())
	var xy mat.Dense
	xy.Mul(rows.T(), ys)
	s.xy.Add(s.xy, &xy)
	return nil
}

// target writes label l's code: 0/1 for two classes, else one-hot.
func (f *SquareFitter) target(l int, dst []float64) {
	clear(dst)
	if f.outputs == 1 {
		dst[0] = float64(l)
		return
	}
	dst[l] = 1
}

func (f *SquareFitter) fold(group int) int {
	h := fnv.New64a()
	var b [16]byte
	for j := range 8 {
		b[j] = byte(f.opts.Seed >> (8 * j))
		b[8+j] = byte(uint64(group) >> (8 * j))
	}
	h.Write(b[:])
	return int(h.Sum64() % uint64(f.opts.Folds))
}

// SquareProbe is a fitted per-square probe: outputs = Bias + x . Weights[c][k] for a square's activations x.
type SquareProbe struct {
	Module   string `json:"module"`
	Channels int    `json:"channels"`
	// SquareMajor: activations are laid out [square][channel], else [channel][square].
	SquareMajor bool        `json:"square_major,omitempty"`
	Train       int         `json:"train"` // training positions
	Test        int         `json:"test"`  // held-out positions scored
	L2          float64     `json:"l2"`
	CV          []CVPoint   `json:"cv,omitempty"`
	Metric      string      `json:"metric"`   // accuracy (per square) or top1 (over the 64 squares)
	Score       float64     `json:"score"`    // held-out
	Baseline    float64     `json:"baseline"` // held-out score of the best constant (see SquareFitter.Fit)
	AUC         float64     `json:"auc"`      // two classes: ROC AUC over held-out squares; NaN otherwise
	Train1      float64     `json:"train_score"`
	Verdict     string      `json:"verdict,omitempty"`
	Weights     [][]float64 `json:"weights"` // [channel][output]; empty for a bilinear probe
	Bias        []float64   `json:"bias"`
	// A bilinear probe (Form "bilinear") scores square i as sum_r (Left[r] . x_i) (Right[r] . z + RightBias[r]),
	// z the anchor square's activations (Context "anchor") or the mean of the 64 squares' ("mean"), all raw
	// activations; see bilinear.go.
	Form      string      `json:"form,omitempty"`
	Context   string      `json:"context,omitempty"`
	Rank      int         `json:"rank,omitempty"`
	Left      [][]float64 `json:"left,omitempty"`  // [rank][channel]
	Right     [][]float64 `json:"right,omitempty"` // [rank][channel]
	RightBias []float64   `json:"right_bias,omitempty"`
}

// Fit chooses the penalty (when opts.Grid is set), solves on every training position, and scores on the
// held-out ones next to the baseline: the label each square most often has in training (per-square
// majority) for accuracy, the square most often the target in training for top-1.
func (f *SquareFitter) Fit(ctx context.Context) (*SquareProbe, error) {
	f.ctx = ctx
	if f.opts.Bilinear {
		p, err := f.fitBilinear(ctx)
		if err != nil {
			return nil, err
		}
		f.finish(p)
		return p, nil
	}
	total := newSquareSums(f.channels, f.outputs)
	for _, s := range f.folds {
		total.addSums(s, 1)
	}
	if total.n == 0 {
		return nil, fmt.Errorf("probe %s: no training position", f.module)
	}
	inv := squareScale(total)
	alpha, curve := f.opts.L2, []CVPoint(nil)
	if len(f.opts.Grid) > 0 {
		var err error
		if alpha, curve, err = f.crossValidate(total, inv); err != nil {
			return nil, err
		}
	}
	w, b, err := solveSquare(total, inv, alpha)
	if err != nil {
		return nil, fmt.Errorf("probe %s: %w", f.module, err)
	}
	p := &SquareProbe{Module: f.module, Channels: f.channels, SquareMajor: f.sqMajor, Train: int(total.n / 64), Test: len(f.test.x), L2: alpha, CV: curve, Bias: b, AUC: math.NaN()}
	p.Weights = make([][]float64, f.channels)
	for c := range p.Weights {
		p.Weights[c] = slices.Clone(w.RawRowView(c))
	}
	f.finish(p)
	return p, nil
}

// finish scores p on the training sample and the held-out positions, next to the baseline.
func (f *SquareFitter) finish(p *SquareProbe) {
	p.Test = len(f.test.x)
	p.Metric = "accuracy"
	if f.top1 {
		p.Metric = "top1"
	}
	p.Train1 = f.score(p, f.train, nil)
	d := make([]float64, 0)
	p.Score = f.score(p, f.test, &d)
	p.Baseline = f.baselineScore(f.test)
	if len(f.test.x) > 0 && len(d) > 0 {
		p.Verdict = pairedVerdict(d)
	}
	if f.outputs == 1 && !f.top1 && len(f.test.x) > 0 {
		var s, y []float64
		for i, x := range f.test.x {
			for sq := range 64 {
				s = append(s, p.outputs(x, sq)[0])
				y = append(y, float64(f.test.y[i][sq]))
			}
		}
		if slices.Contains(y, 0) && slices.Contains(y, 1) {
			p.AUC = rocAUC(s, y)
		}
	}
}

// at is the index of channel c of square sq in a position's activations.
func at(squareMajor bool, channels, c, sq int) int {
	if squareMajor {
		return sq*channels + c
	}
	return c*64 + sq
}

// outputs are the probe's outputs on square sq of activations x.
func (p *SquareProbe) outputs(x []float32, sq int) []float64 {
	out := slices.Clone(p.Bias)
	for c, wc := range p.Weights {
		v := float64(x[at(p.SquareMajor, p.Channels, c, sq)])
		for k, w := range wc {
			out[k] += v * w
		}
	}
	return out
}

// Predict returns the probe's prediction for each square of activations x: the class (0/1 at 0.5 for two
// classes), or for a top-1 probe 1 on the square scored highest and 0 elsewhere.
func (p *SquareProbe) Predict(x []float32, top1 bool) [64]int {
	var out [64]int
	best, bestSq := math.Inf(-1), 0
	for sq := range 64 {
		o := p.outputs(x, sq)
		switch {
		case top1:
			if o[0] > best {
				best, bestSq = o[0], sq
			}
		case len(o) == 1:
			out[sq] = int(b2f(o[0] >= 0.5))
		default:
			out[sq] = argmax(o)
		}
	}
	if top1 {
		out[bestSq] = 1
	}
	return out
}

// PredictAnchored is Predict for a probe of either form: a bilinear probe reads the anchor square's
// activations (anchor -1: the mean over squares is its context).
func (p *SquareProbe) PredictAnchored(x []float32, anchor int, top1 bool) [64]int {
	if p.Form != FormBilinear {
		return p.Predict(x, top1)
	}
	var out [64]int
	s := p.BilinearScores(x, anchor)
	out[argmax(s[:])] = 1
	return out
}

// argmax is the index of the first largest value (0 for none).
func argmax[T cmp.Ordered](v []T) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}

// score is the accuracy over squares, or top-1 over positions, of p on r; d, when given, gets each unit's
// correctness minus the baseline's (for the verdict).
func (f *SquareFitter) score(p *SquareProbe, r *posReservoir, d *[]float64) float64 {
	if len(r.x) == 0 {
		return math.NaN()
	}
	maj, majSq := f.majority()
	var correct, units float64
	for i, x := range r.x {
		pred, y := p.PredictAnchored(x, r.anchor[i], f.top1), r.y[i]
		if f.top1 {
			c := b2f(y[argmaxInt(pred)] == 1)
			correct += c
			units++
			if d != nil {
				*d = append(*d, c-b2f(y[majSq] == 1))
			}
			continue
		}
		for sq := range 64 {
			c := b2f(pred[sq] == y[sq])
			correct += c
			units++
			if d != nil {
				*d = append(*d, c-b2f(maj[sq] == y[sq]))
			}
		}
	}
	return correct / units
}

func argmaxInt(v [64]int) int {
	for i, x := range v {
		if x == 1 {
			return i
		}
	}
	return 0
}

// majority returns each square's most frequent training label, and the square most often labelled 1.
func (f *SquareFitter) majority() ([64]int, int) {
	var maj [64]int
	bestSq, best := 0, -1
	for sq := range 64 {
		maj[sq] = argmax(f.counts[0][sq])
		if c := f.counts[0][sq][min(1, f.classes-1)]; c > best {
			best, bestSq = c, sq
		}
	}
	return maj, bestSq
}

// baselineScore is the score on r of the training majority: each square's most frequent label, or the
// square most often the target.
func (f *SquareFitter) baselineScore(r *posReservoir) float64 {
	if len(r.x) == 0 {
		return math.NaN()
	}
	maj, majSq := f.majority()
	var correct, units float64
	for _, y := range r.y {
		if f.top1 {
			correct += b2f(y[majSq] == 1)
			units++
			continue
		}
		for sq := range 64 {
			correct += b2f(maj[sq] == y[sq])
			units++
		}
	}
	return correct / units
}

// SquareLabels reports the label counts by split, summed over squares: [split][class].
func (f *SquareFitter) SquareLabels() [2][]int {
	var out [2][]int
	for s := range out {
		out[s] = make([]int, f.classes)
		for sq := range 64 {
			for c, n := range f.counts[s][sq] {
				out[s][c] += n
			}
		}
	}
	return out
}

// squareScale is 1/std per channel over the rows of s, with the floor newStandardisation uses.
func squareScale(s *squareSums) []float64 {
	c := len(s.sumX)
	sumSq := make([]float64, c)
	for j := range c {
		sumSq[j] = s.gram.At(j, j)
	}
	return newStandardisation(s.sumX, sumSq, int(s.n)).inv
}

// solveSquare fits ridge on the rows summed in s: with m the mean row and D = diag(inv), (D Gc D + alpha n I)
// Wz = D XYc, W = D Wz, bias = mean y - m'W, where Gc and XYc are the centred sums.
func solveSquare(s *squareSums, inv []float64, alpha float64) (*mat.Dense, []float64, error) {
	c, k := s.xy.Dims()
	mean := make([]float64, c)
	for j := range c {
		mean[j] = s.sumX[j] / s.n
	}
	a := mat.NewSymDense(c, nil)
	for i := range c {
		for j := i; j < c; j++ {
			a.SetSym(i, j, (s.gram.At(i, j)-s.n*mean[i]*mean[j])*inv[i]*inv[j])
		}
	}
	rhs := mat.NewDense(c, k, nil)
	for i := range c {
		for o := range k {
			rhs.Set(i, o, (s.xy.At(i, o)-mean[i]*s.sumY[o])*inv[i])
		}
	}
	for j := range c {
		if inv[j] == 0 {
			a.SetSym(j, j, 1)
			for o := range k {
				rhs.Set(j, o, 0)
			}
			continue
		}
		a.SetSym(j, j, a.At(j, j)+alpha*s.n)
	}
	var ch mat.Cholesky
	if !ch.Factorize(a) {
		return nil, nil, fmt.Errorf("ridge: the normal equations are not positive definite (use a larger --l2)")
	}
	w := mat.NewDense(c, k, nil)
	if err := ch.SolveTo(w, rhs); err != nil {
		return nil, nil, fmt.Errorf("ridge: %w", err)
	}
	bias := make([]float64, k)
	for o := range k {
		bias[o] = s.sumY[o] / s.n
		for j := range c {
			w.Set(j, o, w.At(j, o)*inv[j])
			bias[o] -= mean[j] * w.At(j, o)
		}
	}
	return w, bias, nil
}

// sse is the summed squared error of outputs x W + bias on the rows summed in s, from the sums alone.
func sse(s *squareSums, w *mat.Dense, bias []float64) float64 {
	c, k := w.Dims()
	var out float64
	col := make([]float64, c)
	var gw mat.VecDense
	for o := range k {
		mat.Col(col, o, w)
		wv := mat.NewVecDense(c, col)
		gw.MulVec(s.gram, wv)
		var wxy, wsx float64
		for j := range c {
			wxy += col[j] * s.xy.At(j, o)
			wsx += col[j] * s.sumX[j]
		}
		b := bias[o]
		out += s.yy[o] - 2*wxy - 2*b*s.sumY[o] + mat.Dot(wv, &gw) + 2*b*wsx + s.n*b*b
	}
	return out
}

// crossValidate picks the penalty with the smallest summed squared error over the folds, each predicted by
// the fit on the others (a tie goes to the larger penalty).
func (f *SquareFitter) crossValidate(total *squareSums, inv []float64) (float64, []CVPoint, error) {
	grid := f.opts.Grid
	loss := make([]float64, len(grid))
	used := 0
	for _, fs := range f.folds {
		if err := f.ctx.Err(); err != nil {
			return 0, nil, err
		}
		if fs.n == 0 || fs.n == total.n {
			continue
		}
		used++
		rest := newSquareSums(f.channels, f.outputs)
		rest.addSums(total, 1)
		rest.addSums(fs, -1)
		for g, alpha := range grid {
			w, b, err := solveSquare(rest, inv, alpha)
			if err != nil {
				loss[g] = math.Inf(1)
				continue
			}
			loss[g] += sse(fs, w, b)
		}
	}
	if used < 2 {
		return 0, nil, fmt.Errorf("probe %s: --l2 auto cross-validates over records (games), and the training positions fill %d of %d folds: pass --l2 VALUE", f.module, used, len(f.folds))
	}
	best := 0
	var curve []CVPoint
	for g, a := range grid {
		if !math.IsInf(loss[g], 0) { // a system that could not be solved is left out
			curve = append(curve, CVPoint{L2: a, Loss: loss[g] / total.n})
		}
		if loss[g] <= loss[best] {
			best = g
		}
	}
	return grid[best], curve, nil
}

// SquareFormat names per-square probe files.
const SquareFormat = "lczerolens-square-probe"

// SquareFile is what `probe train --per-square` writes: the per-layer curve (plot-ready: one entry per
// module, in the network's order) and the probes with their weights.
type SquareFile struct {
	Format        string         `json:"format"`
	FormatVersion int            `json:"format_version"`
	ToolVersion   string         `json:"tool_version,omitempty"`
	Model         ModelID        `json:"model"`
	Concept       string         `json:"concept"`
	Classes       int            `json:"classes"`
	Top1          bool           `json:"top1"`
	Input         string         `json:"input,omitempty"`
	Holdout       float64        `json:"holdout"`
	Seed          uint64         `json:"seed"`
	L2            float64        `json:"l2"` // 0 under --l2 auto
	L2Grid        []float64      `json:"l2_grid,omitempty"`
	Skipped       int            `json:"skipped"`
	Labels        [2][]int       `json:"labels"` // [train, held out][class], summed over squares
	Warnings      []string       `json:"warnings,omitempty"`
	Curve         []CurveRow     `json:"curve"`
	Probes        []*SquareProbe `json:"probes"`
}

// SquareGapWarnings are the lines warning of probes whose training score exceeds the held-out one by more
// than maxGap.
func SquareGapWarnings(probes []*SquareProbe, maxGap float64) []string {
	var out []string
	for _, p := range probes {
		out = appendGapWarning(out, p.Module, p.Metric, p.Train1, p.Score, maxGap)
	}
	return out
}

// CurveRow is one module's held-out score next to its baseline.
type CurveRow struct {
	Layer    int      `json:"layer"` // position in the curve, 0 first
	Module   string   `json:"module"`
	Metric   string   `json:"metric"`
	Score    *float64 `json:"score"`
	Baseline *float64 `json:"baseline"`
	AUC      *float64 `json:"auc,omitempty"`
	Train    *float64 `json:"train_score"`
	L2       float64  `json:"l2"`
	Verdict  string   `json:"verdict,omitempty"`
}

// WriteSquare writes f as indented JSON, its curve filled from the probes; NaN scores become null.
func WriteSquare(w io.Writer, f *SquareFile) error {
	finite := func(x float64) *float64 {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil
		}
		return &x
	}
	f.Curve = nil
	type probeJSON struct {
		*SquareProbe
		Score    *float64 `json:"score"`
		Baseline *float64 `json:"baseline"`
		AUC      *float64 `json:"auc,omitempty"`
		Train1   *float64 `json:"train_score"`
	}
	out := struct {
		*SquareFile
		Probes []probeJSON `json:"probes"`
	}{SquareFile: f}
	for i, p := range f.Probes {
		f.Curve = append(f.Curve, CurveRow{Layer: i, Module: p.Module, Metric: p.Metric, Score: finite(p.Score), Baseline: finite(p.Baseline),
			AUC: finite(p.AUC), Train: finite(p.Train1), L2: p.L2, Verdict: p.Verdict})
		out.Probes = append(out.Probes, probeJSON{SquareProbe: p, Score: finite(p.Score), Baseline: finite(p.Baseline), AUC: finite(p.AUC), Train1: finite(p.Train1)})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", " ")
	return enc.Encode(out)
}
