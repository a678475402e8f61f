package probe

import (
	"fmt"
	"hash/fnv"
	"math"
	"slices"

	"gonum.org/v1/gonum/floats"
	"gonum.org/v1/gonum/mat"
)

// crossValidate chooses the penalty from f.opts.Grid: the rows of the cross-validation sample are split into
// folds by group (a game's positions share a fold, so a probe is never scored on positions of a game it was
// fitted on), each fold is predicted by probes fitted on the others at every penalty, and the penalty with
// the smallest pooled loss wins (on a tie, the larger one). The sample holds up to CVRows training rows: on
// larger training sets the chosen penalty errs towards the strong side, since a probe fitted on more rows
// would need less.
func (f *Fitter) crossValidate() (float64, []CVPoint, error) {
	r, grid := f.cv, f.opts.Grid
	fold, k := f.folds(r)
	if k < 2 {
		return 0, nil, fmt.Errorf("probe %s: --l2 auto cross-validates over records (games), and the training positions come from %d: pass --l2 VALUE", f.module, k)
	}
	sum, sumSq, _ := r.moments()
	st := newStandardisation(sum, sumSq, r.n)
	z := mat.NewDense(r.n, f.d, nil)
	for i := range r.n {
		zi := z.RawRowView(i)
		for j, x := range r.row(i) {
			zi[j] = (float64(x) - st.mean[j]) * st.inv[j]
		}
	}
	loss := make([]float64, len(grid))
	var kern *mat.SymDense // Z Z', for the dual systems
	for fk := range k {
		if err := f.ctx.Err(); err != nil {
			return 0, nil, err
		}
		var tr, va []int
		for i, g := range fold {
			if g == fk {
				va = append(va, i)
			} else {
				tr = append(tr, i)
			}
		}
		if len(tr) == 0 || len(va) == 0 {
			continue
		}
		var fl []float64
		switch {
		case f.opts.Binary:
			fl = f.cvLogistic(z, r.y, tr, va)
		case len(tr) < f.d:
			if kern == nil {
				kern = mat.NewSymDense(r.n, nil)
				kern.SymOuterK(1, z)
			}
			fl = cvRidgeDual(kern, r.y, tr, va, grid)
		default:
			fl = cvRidgePrimal(z, r.y, tr, va, grid)
		}
		floats.Add(loss, fl)
	}
	if err := f.ctx.Err(); err != nil {
		return 0, nil, err
	}
	best := 0
	var curve []CVPoint
	for i, a := range grid {
		if !math.IsInf(loss[i], 0) { // a system that could not be solved is left out
			curve = append(curve, CVPoint{L2: a, Loss: loss[i] / float64(r.n)})
		}
		if loss[i] <= loss[best] {
			best = i
		}
	}
	return grid[best], curve, nil
}

// folds assigns each row of r to one of up to Folds folds by a hash of its group, and returns the number of
// folds; with fewer groups than folds, each group is a fold.
func (f *Fitter) folds(r *reservoir) ([]int, int) {
	groups := slices.Clone(r.g[:r.n])
	slices.Sort(groups)
	groups = slices.Compact(groups)
	k := f.opts.Folds
	fold := make([]int, r.n)
	if len(groups) <= k {
		for i, g := range r.g[:r.n] {
			fold[i], _ = slices.BinarySearch(groups, g)
		}
		return fold, len(groups)
	}
	for i, g := range r.g[:r.n] {
		h := fnv.New64a()
		var b [16]byte
		for j := range 8 {
			b[j] = byte(f.opts.Seed >> (8 * j))
			b[8+j] = byte(uint64(g) >> (8 * j))
		}
		h.Write(b[:])
		fold[i] = int(h.Sum64() % uint64(k))
	}
	return fold, k
}

// cvRidgeDual returns, per penalty, the summed squared error on rows va of ridge fitted on rows tr, through
// the dual system over the kernel K = Z Z' centred on the training rows' mean: (Kc + alpha n I) c = y - mean y,
// predictions mean y + Kc c.
func cvRidgeDual(kern *mat.SymDense, y []float64, tr, va []int, grid []float64) []float64 {
	n := len(tr)
	// Centring features on the training rows' mean z: (z_i - z).(z_j - z) = K_ij - m_i - m_j + M, with
	// m_i = z_i.z the mean of K_it over training rows t and M = z.z.
	m := func(i int) float64 {
		var s float64
		for _, t := range tr {
			s += kern.At(i, t)
		}
		return s / float64(n)
	}
	mt := make([]float64, n)
	var big float64
	for a, t := range tr {
		mt[a] = m(t)
		big += mt[a]
	}
	big /= float64(n)
	kc := mat.NewSymDense(n, nil)
	for a, ta := range tr {
		for b := a; b < n; b++ {
			kc.SetSym(a, b, kern.At(ta, tr[b])-mt[a]-mt[b]+big)
		}
	}
	kv := mat.NewDense(len(va), n, nil)
	for v, iv := range va {
		mv := m(iv)
		for a, ta := range tr {
			kv.Set(v, a, kern.At(iv, ta)-mv-mt[a]+big)
		}
	}
	var yMean float64
	for _, t := range tr {
		yMean += y[t]
	}
	yMean /= float64(n)
	out := make([]float64, len(grid))
	a := mat.NewSymDense(n, nil)
	pred := mat.NewVecDense(len(va), nil)
	for g, alpha := range grid {
		a.CopySym(kc)
		c := make([]float64, n)
		for i, t := range tr {
			c[i] = y[t] - yMean
		}
		if err := solveRidge(a, c, alpha*float64(n), nil); err != nil {
			out[g] = math.Inf(1)
			continue
		}
		pred.MulVec(kv, mat.NewVecDense(n, c))
		for v, iv := range va {
			e := y[iv] - yMean - pred.AtVec(v)
			out[g] += e * e
		}
	}
	return out
}

// cvRidgePrimal is cvRidgeDual through the d x d normal equations, for fewer features than training rows.
func cvRidgePrimal(z *mat.Dense, y []float64, tr, va []int, grid []float64) []float64 {
	_, d := z.Dims()
	n := len(tr)
	mean := make([]float64, d)
	var yMean float64
	for _, t := range tr {
		floats.Add(mean, z.RawRowView(t))
		yMean += y[t]
	}
	floats.Scale(1/float64(n), mean)
	yMean /= float64(n)
	zc := mat.NewDense(n, d, nil)
	rhs := make([]float64, d)
	for a, t := range tr {
		row := zc.RawRowView(a)
		floats.SubTo(row, z.RawRowView(t), mean)
		floats.AddScaled(rhs, y[t]-yMean, row)
	}
	gram := mat.NewSymDense(d, nil)
	gram.SymOuterK(1, zc.T())
	out := make([]float64, len(grid))
	a := mat.NewSymDense(d, nil)
	row := make([]float64, d)
	for g, alpha := range grid {
		a.CopySym(gram)
		w := slices.Clone(rhs)
		if err := solveRidge(a, w, alpha*float64(n), nil); err != nil {
			out[g] = math.Inf(1)
			continue
		}
		for _, iv := range va {
			floats.SubTo(row, z.RawRowView(iv), mean)
			e := y[iv] - yMean - floats.Dot(w, row)
			out[g] += e * e
		}
	}
	return out
}

// cvLogistic returns, per penalty, the summed log-loss on rows va of logistic regression fitted on rows tr.
func (f *Fitter) cvLogistic(z *mat.Dense, y []float64, tr, va []int) []float64 {
	_, d := z.Dims()
	var yMean float64
	for _, t := range tr {
		yMean += y[t]
	}
	yMean /= float64(len(tr))
	row := func(i int, dst []float64) { copy(dst, z.RawRowView(i)) }
	out := make([]float64, len(f.opts.Grid))
	for g, alpha := range f.opts.Grid {
		if f.ctx.Err() != nil {
			break
		}
		w, b := logistic(f.ctx, row, y, tr, yMean, d, alpha, f.opts.Epochs, f.opts.Seed)
		for _, iv := range va {
			p := sigmoid(b + floats.Dot(w, z.RawRowView(iv)))
			p = math.Min(math.Max(p, 1e-12), 1-1e-12)
			if y[iv] >= 0.5 {
				out[g] -= math.Log(p)
			} else {
				out[g] -= math.Log(1 - p)
			}
		}
	}
	return out
}
