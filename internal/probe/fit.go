package probe

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"slices"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/floats"
	"gonum.org/v1/gonum/lapack/lapack64"
	"gonum.org/v1/gonum/mat"
)

// FitOptions configure probe training.
type FitOptions struct {
	// Binary selects logistic regression (labels 0/1); otherwise ridge regression.
	Binary bool
	// L2 is the penalty alpha: the fit minimises mean loss + alpha * |w|^2 over standardised features.
	L2 float64
	// MaxRows bounds memory: ridge keeps up to MaxRows training rows, then switches to accumulating the exact
	// normal equations (d*d float64, slower: d*d/2 multiply-adds per row). Either is solved exactly by a
	// Cholesky factorisation of the smaller normal equations when min(n,d) <= 512 (8*min(n,d)^2 bytes), else
	// by conjugate gradients (from kept rows, holding up to 256 MiB of them standardised). Logistic regression
	// trains on a uniform sample of MaxRows training rows; the held-out score uses a uniform sample of up to
	// MaxRows/2 held-out rows.
	MaxRows int
	// Seed makes the samples (and the logistic regression's shuffles) reproducible.
	Seed uint64
	// Epochs of mini-batch Adam for logistic regression.
	Epochs int
	// Grid, when not empty, replaces L2: the penalty is chosen from it by cross-validation over whole
	// groups (games), on a uniform sample of up to CVRows training rows (see crossValidate).
	Grid []float64
	// CVRows bounds the rows cross-validation fits on (0: DefaultCVRows).
	CVRows int
	// Folds is the number of cross-validation folds (0: DefaultFolds).
	Folds int
	// Bilinear makes per-square probes of top-1 concepts bilinear (see bilinear.go), of rank Rank
	// (0: DefaultRank, capped at the channels), trained on up to MaxRows/4 training positions.
	Bilinear bool
	Rank     int
}

// DefaultGrid is the penalties `--l2 auto` tries: every decade from 1e-3 to 1e3.
func DefaultGrid() []float64 { return []float64{1e-3, 1e-2, 1e-1, 1, 10, 100, 1000} }

// Cross-validation defaults.
const (
	DefaultCVRows = 1500
	DefaultFolds  = 5
)

// DefaultFitOptions are the defaults of `probe train`.
func DefaultFitOptions() FitOptions {
	return FitOptions{L2: 0.1, MaxRows: 12000, Seed: 1, Epochs: 20}
}

// InHoldout deterministically assigns input record to the held-out split with probability frac: whole
// records (a game, a line) go to one side, so positions of one game never straddle the split.
func InHoldout(seed uint64, frac float64, record int) bool {
	h := fnv.New64a()
	var b [16]byte
	for i := range 8 {
		b[i] = byte(seed >> (8 * i))
		b[8+i] = byte(uint64(record) >> (8 * i))
	}
	h.Write(b[:])
	return float64(h.Sum64()>>11)/float64(1<<53) < frac
}

// Fitter trains one linear probe on one module's activations, streaming: Add every (activation,
// label) pair, then Fit. Memory is bounded by FitOptions.MaxRows whatever the number of rows.
type Fitter struct {
	module string
	shape  []int
	d      int
	opts   FitOptions

	train, test *reservoir
	cv          *reservoir // training rows for choosing the penalty (Grid set)
	labels      Labels
	rows        int             // rows added, numbering rows without a group
	ctx         context.Context // of the running Fit, for cancellation

	// Ridge beyond MaxRows training rows: sums for the exact normal equations.
	gram   *mat.SymDense // X'X over the raw rows, d x d
	sumX   []float64
	sumY   float64
	sumYY  float64
	xty    []float64
	n      int
	block  *mat.Dense // pending rows, blockRows x d
	nblk   int
	gramR2 float64 // training R^2, known once the normal equations are solved
}

// blockRows is the number of rows folded into the Gram matrix at a time (and of standardised rows formed at
// a time when solving from kept rows): enough for the rank-k update to run at speed, little memory.
const blockRows = 64

// NewFitter starts a probe of a module whose activations have the given per-position shape.
func NewFitter(module string, shape []int, opts FitOptions) *Fitter {
	d := 1
	for _, s := range shape {
		d *= s
	}
	if opts.MaxRows < 1 {
		opts.MaxRows = DefaultFitOptions().MaxRows
	}
	if opts.Epochs < 1 {
		opts.Epochs = DefaultFitOptions().Epochs
	}
	if opts.CVRows < 1 {
		opts.CVRows = DefaultCVRows
	}
	if opts.Folds < 2 {
		opts.Folds = DefaultFolds
	}
	f := &Fitter{
		module: module, shape: append([]int(nil), shape...), d: d, opts: opts, ctx: context.Background(),
		train: newReservoir(opts.MaxRows, d, opts.Seed),
		test:  newReservoir(max(opts.MaxRows/2, 1), d, opts.Seed^0x9e3779b97f4a7c15),
	}
	if len(opts.Grid) > 0 {
		f.cv = newReservoir(opts.CVRows, d, opts.Seed^0x5851f42d4c957f2d)
	}
	return f
}

// Add records one position's activation x (copied) with label y, in the held-out split or not, as a group of
// its own.
func (f *Fitter) Add(x []float32, y float64, holdout bool) error {
	return f.AddGroup(x, y, -1-f.rows, holdout)
}

// AddGroup records one position's activation x (copied) with label y, in the held-out split or not. group
// names the input record (a game) it comes from: cross-validation keeps a group's rows in one fold.
func (f *Fitter) AddGroup(x []float32, y float64, group int, holdout bool) error {
	if len(x) != f.d {
		return fmt.Errorf("probe %s: %d activation values, want %d", f.module, len(x), f.d)
	}
	f.rows++
	if holdout {
		f.labels.Test.add(y)
	} else {
		f.labels.Train.add(y)
	}
	if holdout {
		f.test.add(x, y, group)
		return nil
	}
	if f.cv != nil {
		f.cv.add(x, y, group)
	}
	if f.opts.Binary {
		f.train.add(x, y, group)
		return nil
	}
	// Ridge: keep rows while they fit, then fold them into the normal equations and stream the rest.
	if f.gram == nil && f.train.seen < f.opts.MaxRows {
		f.train.add(x, y, group)
		return nil
	}
	if f.gram == nil {
		f.gram = mat.NewSymDense(f.d, nil)
		f.sumX = make([]float64, f.d)
		f.xty = make([]float64, f.d)
		f.block = mat.NewDense(blockRows, f.d, nil)
		for r := range f.train.n {
			f.accumulate(f.train.row(r), f.train.y[r])
		}
		f.train = newReservoir(0, f.d, 0)
	}
	f.accumulate(x, y)
	return nil
}

func (f *Fitter) accumulate(x []float32, y float64) {
	row := f.block.RawRowView(f.nblk)
	for j, v := range x {
		fv := float64(v)
		row[j] = fv
		f.sumX[j] += fv
		f.xty[j] += fv * y
	}
	f.sumY += y
	f.sumYY += y * y
	f.n++
	f.nblk++
	if f.nblk == blockRows {
		f.flushBlock()
	}
}

// flushBlock adds the pending rows' outer products to the Gram matrix.
func (f *Fitter) flushBlock() {
	if f.nblk == 0 {
		return
	}
	pending := f.block.Slice(0, f.nblk, 0, f.d)
	f.gram.SymRankK(f.gram, 1, pending.T())
	f.nblk = 0
}

// Labels counts the labels of every row added so far, by split.
func (f *Fitter) Labels() Labels { return f.labels }

// Fit trains the probe and scores it on the held-out rows, next to the baseline. It consumes the fitter (the
// Gram matrix is factorised in place): call it once.
func (f *Fitter) Fit() (*Probe, error) { return f.FitContext(context.Background()) }

// FitContext is Fit, stopping with ctx's error soon after ctx is done (between epochs, folds and solves).
func (f *Fitter) FitContext(ctx context.Context) (*Probe, error) {
	f.ctx = ctx
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var curve []CVPoint
	if f.cv != nil {
		var err error
		if f.opts.L2, curve, err = f.crossValidate(); err != nil {
			return nil, err
		}
	}
	w, bias, err := f.solve()
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p := &Probe{Module: f.module, Shape: f.shape, Bias: bias, Weights: make([]float32, f.d), Metric: "r2", Test: f.test.n, L2: f.opts.L2}
	if f.opts.Binary {
		p.Metric = "accuracy"
	}
	for j := range w {
		p.Weights[j] = float32(w[j])
	}
	p.Train = f.train.seen
	if f.n > 0 {
		p.Train = f.n
		p.TrainScore = f.gramR2
	} else {
		p.TrainScore = f.score(p, f.train)
	}
	p.CV = curve
	f.evaluate(p)
	return p, nil
}

// evaluate sets p's held-out score, baselines and verdict from the held-out rows.
func (f *Fitter) evaluate(p *Probe) {
	r := f.test
	pred := make([]float64, r.n)
	for i := range r.n {
		pred[i] = p.Predict(r.row(i), f.opts.Binary)
	}
	ref := f.labels.Train.Mean
	if f.opts.Binary {
		ref = b2f(2*f.labels.Train.Positives >= f.labels.Train.N)
	}
	e := evaluate(pred, r.y[:r.n], f.opts.Binary, ref)
	p.Score, p.Baseline, p.BalancedAccuracy, p.AUC, p.Verdict = e.score, e.baseline, e.balanced, e.auc, e.verdict
}

// solve fits the weights and bias over raw activations in float64.
func (f *Fitter) solve() ([]float64, float64, error) {
	switch {
	case f.gram != nil:
		f.flushBlock()
		return f.fitRidgeGram()
	case f.train.n == 0:
		return nil, 0, fmt.Errorf("probe %s: no training rows", f.module)
	case f.opts.Binary:
		w, bias := f.fitLogistic()
		return w, bias, nil
	}
	return f.fitRidgeRows()
}

// score is R^2 (regression) or accuracy at 0.5 (binary) of p on a reservoir's rows; NaN when empty.
func (f *Fitter) score(p *Probe, r *reservoir) float64 {
	if r.n == 0 {
		return math.NaN()
	}
	var mean float64
	for _, y := range r.y[:r.n] {
		mean += y
	}
	mean /= float64(r.n)
	var sse, sst, correct float64
	for i := range r.n {
		pred := p.Predict(r.row(i), f.opts.Binary)
		y := r.y[i]
		if f.opts.Binary {
			if (pred >= 0.5) == (y >= 0.5) {
				correct++
			}
			continue
		}
		sse += (y - pred) * (y - pred)
		sst += (y - mean) * (y - mean)
	}
	if f.opts.Binary {
		return correct / float64(r.n)
	}
	if sst == 0 {
		return math.NaN() // constant labels: R^2 is undefined
	}
	return 1 - sse/sst
}

// standardisation holds per-feature means and scales; a constant feature has scale 0 and is left out.
type standardisation struct {
	mean, inv []float64 // inv = 1/std, 0 for constant features
}

func newStandardisation(sum, sumSq []float64, n int) standardisation {
	s := standardisation{mean: make([]float64, len(sum)), inv: make([]float64, len(sum))}
	std := make([]float64, len(sum))
	var active []float64
	for j := range sum {
		m := sum[j] / float64(n)
		v := sumSq[j]/float64(n) - m*m
		s.mean[j] = m
		if v > 1e-12*(1+m*m) {
			std[j] = math.Sqrt(v)
			active = append(active, std[j])
		}
	}
	// A feature that barely varies over the training rows (a ReLU that fired on a few of them) would be
	// scaled up by 1/std: a held-out row where it fires then gets a prediction far off the scale. Features
	// are scaled by at least stdFloor of the median feature's spread instead.
	floor := 0.0
	if len(active) > 0 {
		slices.Sort(active)
		floor = stdFloor * active[len(active)/2]
	}
	for j, sd := range std {
		if sd > 0 {
			s.inv[j] = 1 / max(sd, floor)
		}
	}
	return s
}

// stdFloor is the smallest spread a feature is scaled by, as a fraction of the median feature's.
var stdFloor = 0.1

// unstandardise turns weights over standardised features into weights and bias over raw activations.
func (s standardisation) unstandardise(w []float64, yMean float64) ([]float64, float64) {
	out := make([]float64, len(w))
	bias := yMean
	for j := range w {
		out[j] = w[j] * s.inv[j]
		bias -= out[j] * s.mean[j]
	}
	return out, bias
}

func (r *reservoir) moments() (sum, sumSq []float64, yMean float64) {
	sum = make([]float64, r.d)
	sumSq = make([]float64, r.d)
	for i := range r.n {
		for j, v := range r.row(i) {
			fv := float64(v)
			sum[j] += fv
			sumSq[j] += fv * fv
		}
		yMean += r.y[i]
	}
	return sum, sumSq, yMean / float64(r.n)
}

// fitRidgeRows solves (Z'Z + alpha n I) w = Z'(y - mean y), Z the standardised kept rows (n x d). Small systems
// (min(n, d) <= directMax) are solved exactly through whichever normal equations are smaller: d x d as written
// when n >= d, else the n x n dual system (ZZ' + alpha n I) a = y - mean y with w = Z'a, the same solution.
// Larger ones by conjugate gradients on the d x d system without forming it: the Gram matrix costs n*d*min(n,d)
// multiply-adds and 8*min(n,d)^2 bytes, an iteration 2*n*d multiply-adds and at most heldBytes.
func (f *Fitter) fitRidgeRows() ([]float64, float64, error) {
	r := f.train
	sum, sumSq, yMean := r.moments()
	st := newStandardisation(sum, sumSq, r.n)
	n, d := r.n, f.d
	lambda := f.opts.L2 * float64(n)
	yc := make([]float64, n)
	for i := range n {
		yc[i] = r.y[i] - yMean
	}
	var w []float64
	switch {
	case min(n, d) > directMax:
		var err error
		if w, err = st.ridgeCG(r, yc, lambda); err != nil {
			return nil, 0, fmt.Errorf("probe %s: %w", f.module, err)
		}
	case n >= d:
		a := mat.NewSymDense(d, nil)
		rhs := mat.NewVecDense(d, nil)
		var part mat.VecDense
		st.eachBlock(r, 0, func(from int, z *mat.Dense) {
			k, _ := z.Dims()
			a.SymRankK(a, 1, z.T())
			part.MulVec(z.T(), mat.NewVecDense(k, yc[from:from+k]))
			rhs.AddVec(rhs, &part)
		})
		w = rhs.RawVector().Data
		if err := solveRidge(a, w, lambda, st.inv); err != nil {
			return nil, 0, fmt.Errorf("probe %s: %w", f.module, err)
		}
	default:
		k := mat.NewSymDense(n, nil)
		z := mat.NewDense(n, min(blockRows, d), nil)
		for c := 0; c < d; c += blockRows {
			cols := z.Slice(0, n, 0, min(blockRows, d-c)).(*mat.Dense)
			st.fillColumns(r, c, cols)
			k.SymRankK(k, 1, cols)
		}
		if err := solveRidge(k, yc, lambda, nil); err != nil {
			return nil, 0, fmt.Errorf("probe %s: %w", f.module, err)
		}
		wv := mat.NewVecDense(d, nil)
		var part mat.VecDense
		st.eachBlock(r, 0, func(from int, z *mat.Dense) {
			k, _ := z.Dims()
			part.MulVec(z.T(), mat.NewVecDense(k, yc[from:from+k]))
			wv.AddVec(wv, &part)
		})
		w = wv.RawVector().Data
	}
	ow, b := st.unstandardise(w, yMean)
	return ow, b, nil
}

// ridgeCG solves (Z'Z + lambda I) w = Z'yc by conjugate gradients, Z the standardised rows of r, without
// forming Z'Z: each product is Z'(Z v), two passes of matrix-vector products over the rows. Standardising a
// float32 row into float64 costs as much as both products, so the first rows, up to heldBytes, are standardised
// once and kept; the others are standardised again, a block at a time, in every product.
func (st standardisation) ridgeCG(r *reservoir, yc []float64, lambda float64) ([]float64, error) {
	n, d := r.n, r.d
	h := min(n, heldBytes/(8*d))
	var held *mat.Dense
	if h > 0 {
		held = mat.NewDense(h, d, nil)
		st.eachBlock(r, 0, func(from int, z *mat.Dense) {
			if from < h {
				k, _ := z.Dims()
				held.Slice(from, min(from+k, h), 0, d).(*mat.Dense).Copy(z)
			}
		})
	}
	t := make([]float64, n)
	vec := func(x []float64) blas64.Vector { return blas64.Vector{N: len(x), Inc: 1, Data: x} }
	// mulGram sets dst = Z'Z v, block by block: Z'Z v = sum over blocks b of Z_b'(Z_b v).
	mulGram := func(dst, v []float64) {
		clear(dst)
		if held != nil {
			blas64.Gemv(blas.NoTrans, 1, held.RawMatrix(), vec(v), 0, vec(t[:h]))
			blas64.Gemv(blas.Trans, 1, held.RawMatrix(), vec(t[:h]), 1, vec(dst))
		}
		st.eachBlock(r, h, func(from int, z *mat.Dense) {
			k, _ := z.Dims()
			blas64.Gemv(blas.NoTrans, 1, z.RawMatrix(), vec(v), 0, vec(t[from:from+k]))
			blas64.Gemv(blas.Trans, 1, z.RawMatrix(), vec(t[from:from+k]), 1, vec(dst))
		})
	}
	rhs := make([]float64, d)
	if held != nil {
		blas64.Gemv(blas.Trans, 1, held.RawMatrix(), vec(yc[:h]), 0, vec(rhs))
	}
	st.eachBlock(r, h, func(from int, z *mat.Dense) {
		k, _ := z.Dims()
		blas64.Gemv(blas.Trans, 1, z.RawMatrix(), vec(yc[from:from+k]), 1, vec(rhs))
	})
	return conjugateGradient(mulGram, rhs, lambda, st.inv)
}

// heldBytes bounds the standardised copy of the kept rows that conjugate gradients keep between iterations
// (all of them for 8,000 rows of 4,096 features). A variable so that tests can exercise both kinds of rows.
var heldBytes = 256 << 20

// eachBlock calls fn with the standardised rows start.. of r, blockRows at a time (z is reused between calls).
func (st standardisation) eachBlock(r *reservoir, start int, fn func(from int, z *mat.Dense)) {
	if start >= r.n {
		return
	}
	buf := mat.NewDense(min(blockRows, r.n-start), r.d, nil)
	for from := start; from < r.n; from += blockRows {
		k := min(blockRows, r.n-from)
		z := buf.Slice(0, k, 0, r.d).(*mat.Dense)
		for i := range k {
			row := z.RawRowView(i)
			for j, x := range r.row(from + i) {
				row[j] = (float64(x) - st.mean[j]) * st.inv[j]
			}
		}
		fn(from, z)
	}
}

// fillColumns sets z (n x k) to the standardised features c..c+k of every row of r.
func (st standardisation) fillColumns(r *reservoir, c int, z *mat.Dense) {
	_, k := z.Dims()
	for i := range r.n {
		row, x := z.RawRowView(i), r.row(i)[c:c+k]
		for j := range row {
			row[j] = (float64(x[j]) - st.mean[c+j]) * st.inv[c+j]
		}
	}
}

// fitRidgeGram solves the same system from the accumulated normal equations, turning the raw Gram matrix
// into the standardised one in place (the Gram matrix is the largest thing a fitter holds).
func (f *Fitter) fitRidgeGram() ([]float64, float64, error) {
	d, n := f.d, float64(f.n)
	g := f.gram.RawSymmetric() // upper triangle
	sumSq := make([]float64, d)
	for j := range d {
		sumSq[j] = g.Data[j*g.Stride+j]
	}
	st := newStandardisation(f.sumX, sumSq, f.n)
	yMean := f.sumY / n
	for i := range d {
		row := g.Data[i*g.Stride : i*g.Stride+d]
		for j := i; j < d; j++ {
			row[j] = (row[j] - n*st.mean[i]*st.mean[j]) * st.inv[i] * st.inv[j]
		}
	}
	w := make([]float64, d)
	for j := range d {
		w[j] = (f.xty[j] - st.mean[j]*f.sumY) * st.inv[j]
	}
	zty := append([]float64(nil), w...)
	lambda := f.opts.L2 * n
	if d > directMax {
		// The factorisation would cost d^3/3 multiply-adds, an iteration of conjugate gradients d^2.
		mulGram := func(dst, v []float64) {
			blas64.Symv(1, f.gram.RawSymmetric(), blas64.Vector{N: d, Inc: 1, Data: v}, 0, blas64.Vector{N: d, Inc: 1, Data: dst})
		}
		var err error
		if w, err = conjugateGradient(mulGram, zty, lambda, st.inv); err != nil {
			return nil, 0, fmt.Errorf("probe %s: %w", f.module, err)
		}
	} else if err := solveRidge(f.gram, w, lambda, st.inv); err != nil {
		return nil, 0, fmt.Errorf("probe %s: %w", f.module, err)
	}
	f.gram = nil // standardised, or factorised in place: no longer the Gram matrix
	// Training R^2 without the rows: the solution satisfies (Z'Z + lambda I) w = Z'y, so the residual sum of
	// squares |yc - Zw|^2 = yc'yc - w.Z'y - lambda |w|^2 (conjugate gradients leave a residual res, and an
	// error of w.res/yc'yc, below 1e-12 in the tests).
	syy := f.sumYY - f.sumY*f.sumY/n
	f.gramR2 = math.NaN()
	if syy > 0 {
		sse := syy - floats.Dot(w, zty) - lambda*floats.Dot(w, w)
		f.gramR2 = 1 - sse/syy
	}
	ow, b := st.unstandardise(w, yMean)
	return ow, b, nil
}

// solveRidge solves (a + lambda I) x = b for a symmetric positive semi-definite a (its upper triangle) by a
// Cholesky factorisation, which overwrites a; x overwrites b. Where active is given, features with
// active[j] == 0 (constant ones, whose rows and columns of a are 0) get x[j] = 0.
func solveRidge(a *mat.SymDense, b []float64, lambda float64, active []float64) error {
	raw := a.RawSymmetric()
	for j := range raw.N {
		ajj := &raw.Data[j*raw.Stride+j]
		if active != nil && active[j] == 0 {
			*ajj, b[j] = 1, 0
			continue
		}
		*ajj += lambda
	}
	t, ok := lapack64.Potrf(raw)
	if !ok {
		return errors.New("ridge: the normal equations are not positive definite (use a larger --l2)")
	}
	lapack64.Potrs(t, blas64.General{Rows: raw.N, Cols: 1, Stride: 1, Data: b})
	return nil
}

// directMax is the largest min(n, d) solved by a Cholesky factorisation of the normal equations; larger systems
// go to conjugate gradients. Measured on kept rows (n = 2,000): the factorisation takes 67 ms at d = 512 and
// 286 ms at d = 1,024, an iteration 0.5 ms and 1 ms; maia-1100's activations (d = 4,096) take about 120
// iterations at alpha = 0.1, fewer at smaller d. So the two break even near min(n, d) = 512. A variable so that
// tests can send small systems through conjugate gradients.
var directMax = 512

// cgTol is the relative residual |Z'y - (Z'Z + lambda I) w| / |Z'y| at which conjugate gradients stop. The
// error in w is then at most cgTol times the condition number of Z'Z + lambda I, relative.
const cgTol = 1e-6

// conjugateGradient solves (A + lambda I) x = b for symmetric positive semi-definite A given by mulA (dst = A v),
// restricted to the features with active[j] != 0 (A's rows and columns of the others are 0; their x[j] is 0).
func conjugateGradient(mulA func(dst, v []float64), b []float64, lambda float64, active []float64) ([]float64, error) {
	d := len(b)
	mask := func(v []float64) {
		for j := range v {
			if active[j] == 0 {
				v[j] = 0
			}
		}
	}
	apply := func(dst, v []float64) {
		mulA(dst, v)
		floats.AddScaled(dst, lambda, v)
		mask(dst)
	}
	x := make([]float64, d)
	r := append([]float64(nil), b...)
	mask(r)
	p := append([]float64(nil), r...)
	ap := make([]float64, d)
	rr := floats.Dot(r, r)
	rr0 := rr
	dim := 0
	for _, a := range active {
		if a != 0 {
			dim++
		}
	}
	// In exact arithmetic conjugate gradients end within dim iterations; rounding may take a few more.
	for it := 0; rr > cgTol*cgTol*rr0; it++ {
		if it >= 2*dim+100 {
			return nil, fmt.Errorf("ridge: conjugate gradients left a relative residual of %.1e after %d iterations (use a larger --l2)", math.Sqrt(rr/rr0), it)
		}
		apply(ap, p)
		pap := floats.Dot(p, ap)
		if !(pap > 0) {
			return nil, errors.New("ridge: the normal equations are not positive definite (use a larger --l2)")
		}
		alpha := rr / pap
		floats.AddScaled(x, alpha, p)
		floats.AddScaled(r, -alpha, ap)
		next := floats.Dot(r, r)
		floats.AddScaledTo(p, r, next/rr, p)
		rr = next
	}
	return x, nil
}

// fitLogistic minimises the mean log-loss + alpha |w|^2 over standardised features of the sampled rows with
// mini-batch Adam.
func (f *Fitter) fitLogistic() ([]float64, float64) {
	r := f.train
	sum, sumSq, yMean := r.moments()
	st := newStandardisation(sum, sumSq, r.n)
	idx := make([]int, r.n)
	for i := range idx {
		idx[i] = i
	}
	row := func(i int, z []float64) {
		for j, x := range r.row(i) {
			z[j] = (float64(x) - st.mean[j]) * st.inv[j]
		}
	}
	w, b := logistic(f.ctx, row, r.y, idx, yMean, f.d, f.opts.L2, f.opts.Epochs, f.opts.Seed)
	ow, ob := st.unstandardise(w, 0)
	return ow, ob + b
}

// logistic minimises the mean log-loss + alpha |w|^2 over rows idx (row fills a row's d standardised
// features, y holds the labels) with mini-batch Adam, starting the bias at the log-odds of yMean, and returns
// the weights over standardised features and the bias. Once ctx is done it stops at the end of an epoch.
func logistic(ctx context.Context, row func(i int, z []float64), y []float64, idx []int, yMean float64, d int, alpha float64, epochs int, seed uint64) ([]float64, float64) {
	n := len(idx)
	w := make([]float64, d)
	// Start the bias at the log-odds of the base rate, so a rare label does not take epochs to reach.
	p0 := math.Min(math.Max(yMean, 1e-4), 1-1e-4)
	b := math.Log(p0 / (1 - p0))
	const (
		lr     = 1e-2
		batch  = 64
		beta1  = 0.9
		beta2  = 0.999
		adamEp = 1e-8
	)
	m, v := make([]float64, d+1), make([]float64, d+1)
	g := make([]float64, d+1)
	order := slices.Clone(idx)
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	z := make([]float64, d)
	step := 0
	// The step size falls linearly to 0 over the run: at a fixed one, Adam keeps every weight moving by about
	// lr per step around the optimum, noise that thousands of features add up to in the logit (a strongly
	// penalised probe would then do worse than its constant).
	total := float64(epochs * ((n + batch - 1) / batch))
	for range epochs {
		if ctx.Err() != nil {
			break
		}
		rng.Shuffle(n, func(i, j int) { order[i], order[j] = order[j], order[i] })
		for start := 0; start < n; start += batch {
			end := min(start+batch, n)
			clear(g)
			for _, i := range order[start:end] {
				row(i, z)
				e := sigmoid(b+floats.Dot(w, z)) - y[i]
				floats.AddScaled(g[:d], e, z)
				g[d] += e
			}
			k := float64(end - start)
			rate := lr * (1 - float64(step)/total)
			step++
			c1 := 1 - math.Pow(beta1, float64(step))
			c2 := 1 - math.Pow(beta2, float64(step))
			for j := range g {
				gj := g[j] / k
				if j < d {
					gj += 2 * alpha * w[j]
				}
				m[j] = beta1*m[j] + (1-beta1)*gj
				v[j] = beta2*v[j] + (1-beta2)*gj*gj
				delta := rate * (m[j] / c1) / (math.Sqrt(v[j]/c2) + adamEp)
				if j < d {
					w[j] -= delta
				} else {
					b -= delta
				}
			}
		}
	}
	return w, b
}

// reservoir keeps a uniform sample of up to cap rows of a stream (all of them while it is shorter).
type reservoir struct {
	cap, d, n, seen int
	x               []float32
	y               []float64
	g               []int // groups
	rng             *rand.Rand
}

func newReservoir(cap, d int, seed uint64) *reservoir {
	return &reservoir{cap: cap, d: d, rng: rand.New(rand.NewPCG(seed, 0xa11ce))}
}

func (r *reservoir) add(x []float32, y float64, g int) {
	r.seen++
	if r.n < r.cap {
		r.x = append(r.x, x...)
		r.y = append(r.y, y)
		r.g = append(r.g, g)
		r.n++
		return
	}
	if r.cap == 0 {
		return
	}
	if k := r.rng.IntN(r.seen); k < r.cap {
		copy(r.x[k*r.d:(k+1)*r.d], x)
		r.y[k] = y
		r.g[k] = g
	}
}

func (r *reservoir) row(i int) []float32 { return r.x[i*r.d : (i+1)*r.d] }
