package probe

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
)

// FitOptions configure probe training.
type FitOptions struct {
	// Binary selects logistic regression (labels 0/1); otherwise ridge regression.
	Binary bool
	// L2 is the penalty alpha: the fit minimises mean loss + alpha * |w|^2 over standardised features.
	L2 float64
	// MaxRows bounds memory: ridge keeps up to MaxRows training rows (solved by conjugate gradients), then
	// switches to accumulating the exact normal equations (d*d float64, slower: d*d/2 multiply-adds per
	// row); logistic regression trains on a uniform sample of MaxRows training rows; the held-out score
	// uses a uniform sample of up to MaxRows/2 held-out rows.
	MaxRows int
	// Seed makes the samples (and the logistic regression's shuffles) reproducible.
	Seed uint64
	// Epochs of mini-batch Adam for logistic regression.
	Epochs int
}

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

	// Ridge beyond MaxRows training rows: sums for the exact normal equations.
	gram  []float64 // d x d, lower triangle filled
	sumX  []float64
	sumY  float64
	sumYY float64
	xty   []float64
	n     int
	block []float64 // pending rows, transposed: block[j*blockRows+r]
	nblk  int
}

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
	return &Fitter{
		module: module, shape: append([]int(nil), shape...), d: d, opts: opts,
		train: newReservoir(opts.MaxRows, d, opts.Seed),
		test:  newReservoir(max(opts.MaxRows/2, 1), d, opts.Seed^0x9e3779b97f4a7c15),
	}
}

// Add records one position's activation x (copied) with label y, in the held-out split or not.
func (f *Fitter) Add(x []float32, y float64, holdout bool) error {
	if len(x) != f.d {
		return fmt.Errorf("probe %s: %d activation values, want %d", f.module, len(x), f.d)
	}
	if holdout {
		f.test.add(x, y)
		return nil
	}
	if f.opts.Binary {
		f.train.add(x, y)
		return nil
	}
	// Ridge: keep rows while they fit, then fold them into the normal equations and stream the rest.
	if f.gram == nil && f.train.seen < f.opts.MaxRows {
		f.train.add(x, y)
		return nil
	}
	if f.gram == nil {
		f.gram = make([]float64, f.d*f.d)
		f.sumX = make([]float64, f.d)
		f.xty = make([]float64, f.d)
		f.block = make([]float64, f.d*blockRows)
		for r := range f.train.n {
			f.accumulate(f.train.row(r), f.train.y[r])
		}
		f.train = newReservoir(0, f.d, 0)
	}
	f.accumulate(x, y)
	return nil
}

func (f *Fitter) accumulate(x []float32, y float64) {
	for j, v := range x {
		fv := float64(v)
		f.block[j*blockRows+f.nblk] = fv
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

// flushBlock adds the pending rows' outer products to the lower triangle of the Gram matrix (entries
// above the diagonal may be written too: fitRidgeGram overwrites them by symmetry).
func (f *Fitter) flushBlock() {
	k := f.nblk
	if k == 0 {
		return
	}
	d := f.d
	col := func(i int) []float64 { return f.block[i*blockRows : i*blockRows+k] }
	// 2x2 blocks of entries share their loads: four multiply-adds per four values read.
	for i := 0; i+1 < d; i += 2 {
		a0, a1 := col(i), col(i+1)
		g0, g1 := f.gram[i*d:(i+1)*d], f.gram[(i+1)*d:(i+2)*d]
		for j := 0; j <= i; j += 2 {
			b0, b1 := col(j), col(j+1)
			var s00, s01, s10, s11 float64
			for r := range a0 {
				x0, x1, y0, y1 := a0[r], a1[r], b0[r], b1[r]
				s00 += x0 * y0
				s01 += x0 * y1
				s10 += x1 * y0
				s11 += x1 * y1
			}
			g0[j] += s00
			g0[j+1] += s01
			g1[j] += s10
			g1[j+1] += s11
		}
	}
	if d%2 == 1 {
		i := d - 1
		a := col(i)
		g := f.gram[i*d : (i+1)*d]
		for j := range d {
			var s float64
			for r, x := range col(j) {
				s += a[r] * x
			}
			g[j] += s
		}
	}
	f.nblk = 0
}

// Fit trains the probe and scores it on the held-out rows.
func (f *Fitter) Fit() (*Probe, error) {
	var (
		w    []float64
		bias float64
		err  error
	)
	switch {
	case f.opts.Binary:
		if f.train.n == 0 {
			return nil, fmt.Errorf("probe %s: no training rows", f.module)
		}
		w, bias = f.fitLogistic()
	case f.gram != nil:
		f.flushBlock()
		w, bias, err = f.fitRidgeGram()
	default:
		if f.train.n == 0 {
			return nil, fmt.Errorf("probe %s: no training rows", f.module)
		}
		w, bias, err = f.fitRidgeRows()
	}
	if err != nil {
		return nil, err
	}
	p := &Probe{Module: f.module, Shape: f.shape, Bias: bias, Weights: make([]float32, f.d), Metric: "r2", Test: f.test.n}
	if f.opts.Binary {
		p.Metric = "accuracy"
	}
	for j := range w {
		p.Weights[j] = float32(w[j])
	}
	p.Train = f.train.seen
	if f.gram != nil {
		p.Train = f.n
		p.TrainScore = f.gramTrainR2(w, bias)
	} else {
		p.TrainScore = f.score(p, f.train)
	}
	p.Score = f.score(p, f.test)
	return p, nil
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
	for j := range sum {
		m := sum[j] / float64(n)
		v := sumSq[j]/float64(n) - m*m
		s.mean[j] = m
		if v > 1e-12*(1+m*m) {
			s.inv[j] = 1 / math.Sqrt(v)
		}
	}
	return s
}

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

// fitRidgeRows solves (Z'Z + alpha n I) w = Z'(y - mean y) by conjugate gradients, Z the standardised
// stored rows, without forming Z'Z.
func (f *Fitter) fitRidgeRows() ([]float64, float64, error) {
	r := f.train
	sum, sumSq, yMean := r.moments()
	st := newStandardisation(sum, sumSq, r.n)
	n := r.n
	zv := make([]float64, n)
	// apply computes Z'Z v.
	apply := func(v, out []float64) {
		u := make([]float64, f.d)
		var mu float64
		for j := range v {
			u[j] = v[j] * st.inv[j]
			mu += st.mean[j] * u[j]
		}
		for i := range n {
			zv[i] = dot32(r.row(i), u) - mu
		}
		f.ztq(r, st, zv, out)
	}
	yc := make([]float64, n)
	for i := range n {
		yc[i] = r.y[i] - yMean
	}
	rhs := make([]float64, f.d)
	f.ztq(r, st, yc, rhs)
	w, err := conjugateGradient(apply, rhs, f.opts.L2*float64(n), st.inv)
	if err != nil {
		return nil, 0, fmt.Errorf("probe %s: %w", f.module, err)
	}
	ow, b := st.unstandardise(w, yMean)
	return ow, b, nil
}

// ztq computes Z'q for the standardised rows of r.
func (f *Fitter) ztq(r *reservoir, st standardisation, q, out []float64) {
	clear(out)
	var qs float64
	i := 0
	// Four rows per sweep over out: a quarter of the loads and stores of one row at a time.
	for ; i+4 <= r.n; i += 4 {
		q0, q1, q2, q3 := q[i], q[i+1], q[i+2], q[i+3]
		qs += q0 + q1 + q2 + q3
		x0, x1, x2, x3 := r.row(i), r.row(i+1), r.row(i+2), r.row(i+3)
		x1, x2, x3 = x1[:len(x0)], x2[:len(x0)], x3[:len(x0)]
		o := out[:len(x0)]
		for j := range x0 {
			o[j] += float64(x0[j])*q0 + float64(x1[j])*q1 + float64(x2[j])*q2 + float64(x3[j])*q3
		}
	}
	for ; i < r.n; i++ {
		qi := q[i]
		qs += qi
		for j, x := range r.row(i) {
			out[j] += float64(x) * qi
		}
	}
	for j := range out {
		out[j] = (out[j] - st.mean[j]*qs) * st.inv[j]
	}
}

// fitRidgeGram solves the same system from the accumulated normal equations.
func (f *Fitter) fitRidgeGram() ([]float64, float64, error) {
	d, n := f.d, float64(f.n)
	for i := range d { // mirror the lower triangle
		for j := i + 1; j < d; j++ {
			f.gram[i*d+j] = f.gram[j*d+i]
		}
	}
	sumSq := make([]float64, d)
	for j := range d {
		sumSq[j] = f.gram[j*d+j]
	}
	st := newStandardisation(f.sumX, sumSq, f.n)
	yMean := f.sumY / n
	apply := func(v, out []float64) {
		u := make([]float64, d)
		var mu float64
		for j := range v {
			u[j] = v[j] * st.inv[j]
			mu += st.mean[j] * u[j]
		}
		for i := range d {
			var s float64
			for j, g := range f.gram[i*d : (i+1)*d] {
				s += g * u[j]
			}
			out[i] = (s - n*st.mean[i]*mu) * st.inv[i]
		}
	}
	rhs := make([]float64, d)
	for j := range d {
		rhs[j] = (f.xty[j] - st.mean[j]*f.sumY) * st.inv[j]
	}
	w, err := conjugateGradient(apply, rhs, f.opts.L2*n, st.inv)
	if err != nil {
		return nil, 0, fmt.Errorf("probe %s: %w", f.module, err)
	}
	ow, b := st.unstandardise(w, yMean)
	return ow, b, nil
}

// gramTrainR2 is the training R^2 from the accumulated sums: SSE = sum (y - b - w.x)^2 expanded.
func (f *Fitter) gramTrainR2(w []float64, b float64) float64 {
	d, n := f.d, float64(f.n)
	var wGw, wXy, wSx float64
	for i := range d {
		var s float64
		for j, g := range f.gram[i*d : (i+1)*d] {
			s += g * w[j]
		}
		wGw += w[i] * s
		wXy += w[i] * f.xty[i]
		wSx += w[i] * f.sumX[i]
	}
	sse := f.sumYY - 2*wXy - 2*b*f.sumY + wGw + 2*b*wSx + n*b*b
	sst := f.sumYY - f.sumY*f.sumY/n
	if sst <= 0 {
		return math.NaN()
	}
	return 1 - sse/sst
}

// conjugateGradient solves (A + lambda I) w = rhs for symmetric positive semi-definite A given by apply,
// restricted to the features with a non-zero scale (the others stay 0).
func conjugateGradient(apply func(v, out []float64), rhs []float64, lambda float64, active []float64) ([]float64, error) {
	d := len(rhs)
	mask := func(v []float64) {
		for j := range v {
			if active[j] == 0 {
				v[j] = 0
			}
		}
	}
	w := make([]float64, d)
	r := append([]float64(nil), rhs...)
	mask(r)
	p := append([]float64(nil), r...)
	ap := make([]float64, d)
	rr := dot(r, r)
	tol := 1e-8 * rr // a relative residual of 1e-4: tighter changes held-out scores in the fourth digit
	if rr == 0 {
		return w, nil
	}
	for it := 0; it < 1000 && rr > tol; it++ {
		apply(p, ap)
		for j := range ap {
			ap[j] += lambda * p[j]
		}
		mask(ap)
		pap := dot(p, ap)
		if pap <= 0 || math.IsNaN(pap) {
			return nil, errors.New("ridge: the system is not positive definite (use a larger --l2)")
		}
		alpha := rr / pap
		for j := range w {
			w[j] += alpha * p[j]
			r[j] -= alpha * ap[j]
		}
		next := dot(r, r)
		beta := next / rr
		rr = next
		for j := range p {
			p[j] = r[j] + beta*p[j]
		}
	}
	return w, nil
}

// dot32 is the dot product of float32 values with float64 ones, in four independent sums.
func dot32(x []float32, u []float64) float64 {
	u = u[:len(x)]
	var s0, s1, s2, s3 float64
	j := 0
	for ; j+4 <= len(x); j += 4 {
		s0 += float64(x[j]) * u[j]
		s1 += float64(x[j+1]) * u[j+1]
		s2 += float64(x[j+2]) * u[j+2]
		s3 += float64(x[j+3]) * u[j+3]
	}
	for ; j < len(x); j++ {
		s0 += float64(x[j]) * u[j]
	}
	return (s0 + s1) + (s2 + s3)
}

func dot(a, b []float64) float64 {
	var s float64
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

// fitLogistic minimises the mean log-loss + alpha |w|^2 over standardised features of the sampled rows with
// mini-batch Adam.
func (f *Fitter) fitLogistic() ([]float64, float64) {
	r := f.train
	sum, sumSq, yMean := r.moments()
	st := newStandardisation(sum, sumSq, r.n)
	d, n := f.d, r.n
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
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	rng := rand.New(rand.NewPCG(f.opts.Seed, 0x5eed))
	z := make([]float64, d)
	step := 0
	for range f.opts.Epochs {
		rng.Shuffle(n, func(i, j int) { order[i], order[j] = order[j], order[i] })
		for start := 0; start < n; start += batch {
			end := min(start+batch, n)
			clear(g)
			for _, i := range order[start:end] {
				s := b
				for j, x := range r.row(i) {
					z[j] = (float64(x) - st.mean[j]) * st.inv[j]
					s += w[j] * z[j]
				}
				e := sigmoid(s) - r.y[i]
				for j := range z {
					g[j] += e * z[j]
				}
				g[d] += e
			}
			k := float64(end - start)
			step++
			c1 := 1 - math.Pow(beta1, float64(step))
			c2 := 1 - math.Pow(beta2, float64(step))
			for j := range g {
				gj := g[j] / k
				if j < d {
					gj += 2 * f.opts.L2 * w[j]
				}
				m[j] = beta1*m[j] + (1-beta1)*gj
				v[j] = beta2*v[j] + (1-beta2)*gj*gj
				delta := lr * (m[j] / c1) / (math.Sqrt(v[j]/c2) + adamEp)
				if j < d {
					w[j] -= delta
				} else {
					b -= delta
				}
			}
		}
	}
	ow, ob := st.unstandardise(w, 0)
	return ow, ob + b
}

// reservoir keeps a uniform sample of up to cap rows of a stream (all of them while it is shorter).
type reservoir struct {
	cap, d, n, seen int
	x               []float32
	y               []float64
	rng             *rand.Rand
}

func newReservoir(cap, d int, seed uint64) *reservoir {
	return &reservoir{cap: cap, d: d, rng: rand.New(rand.NewPCG(seed, 0xa11ce))}
}

func (r *reservoir) add(x []float32, y float64) {
	r.seen++
	if r.n < r.cap {
		r.x = append(r.x, x...)
		r.y = append(r.y, y)
		r.n++
		return
	}
	if r.cap == 0 {
		return
	}
	if k := r.rng.IntN(r.seen); k < r.cap {
		copy(r.x[k*r.d:(k+1)*r.d], x)
		r.y[k] = y
	}
}

func (r *reservoir) row(i int) []float32 { return r.x[i*r.d : (i+1)*r.d] }
