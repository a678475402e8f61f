package probe

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/floats"
)

// A bilinear probe is the per-square probe of a top-1 concept in the form of leela-interp's probe (Jenner
// et al. 2024, "Evidence of learned look-ahead in a chess-playing neural network"): the logit of square i is x_i' A' B [z; 1], with x_i the square's standardised activations, z a context vector
// (standardised) and A, B rank x C and rank x (C+1) matrices (W = A'B is a low-rank bilinear map), turned
// into a distribution over the 64 squares by a softmax and trained on the cross-entropy of the labelled
// square, plus l2 * (|A|^2 + |B|^2). The context z is the anchor square's activations when positions have
// one (leela-interp predicts the third solution move's target from the first's), else the mean of the 64
// squares' activations. The constant 1 appended to z lets the map contain a linear probe x_i' w, so the
// bilinear probe can do anything the linear one does on a top-1 concept. Training is deterministic: A and
// B start from Gaussian draws seeded by FitOptions.Seed and full-batch L-BFGS minimises the loss.

// FormBilinear is SquareProbe.Form for a bilinear probe.
const FormBilinear = "bilinear"

// DefaultRank is the rank of a bilinear probe's map, as in leela-interp.
const DefaultRank = 32

// BilinearGrid is the penalties `--l2 auto` tries for a bilinear probe: every decade from 1e-4 to 1 (the loss
// is a mean cross-entropy over 64 squares, at most ln 64 ~ 4.2, so larger penalties only give W = 0).
func BilinearGrid() []float64 { return []float64{1e-4, 1e-3, 1e-2, 1e-1, 1} }

// Optimiser budgets: L-BFGS iterations for the final fit and for each cross-validation fit, and the number
// of training positions cross-validation uses.
const (
	bilinearIters   = 300
	bilinearCVIters = 60
	bilinearCVRows  = 1000
)

// bilinearData are the training positions of a bilinear probe: raw activations, their standardisation,
// and each position's standardised context with the constant 1 appended.
type bilinearData struct {
	x      [][]float32
	y      []int // labelled square
	z      [][]float64
	inv    []float64 // 1/std per channel of the square vectors
	cs, ss int       // strides of channel and square in x
	c      int
}

// objective returns the mean cross-entropy over positions idx plus alpha (|A|^2 + |B|^2) at theta = [A; B],
// and writes its gradient into grad when it is not nil.
func (d *bilinearData) objective(theta, grad []float64, idx []int, alpha float64, rank int) float64 {
	c, e := d.c, d.c+1
	a, b := theta[:rank*c], theta[rank*c:]
	var ga, gb []float64
	if grad != nil {
		clear(grad)
		ga, gb = grad[:rank*c], grad[rank*c:]
	}
	v, w, q, r := make([]float64, rank), make([]float64, c), make([]float64, c), make([]float64, rank)
	xs := make([]float64, 64*c) // the position's activations as float64, for the assembly kernels of floats
	var s, g [64]float64
	var loss float64
	inv := 1 / float64(len(idx))
	for _, p := range idx {
		x, z := d.x[p], d.z[p]
		for i, xv := range x {
			xs[i] = float64(xv)
		}
		clear(w)
		for k := range rank {
			v[k] = floats.Dot(b[k*e:(k+1)*e], z)
			floats.AddScaled(w, v[k], a[k*c:(k+1)*c])
		}
		// Standardising x_i shifts every square's logit by the same amount, which the softmax ignores:
		// only the scale 1/std enters.
		floats.Mul(w, d.inv)
		clear(s[:])
		if d.ss == 1 { // [C][64]
			for ch, wc := range w {
				floats.AddScaled(s[:], wc, xs[ch*64:(ch+1)*64])
			}
		} else { // [64][C]
			for i := range 64 {
				s[i] = floats.Dot(w, xs[i*c:(i+1)*c])
			}
		}
		mx := s[0]
		for _, t := range s {
			mx = math.Max(mx, t)
		}
		var sum float64
		for i, t := range s {
			g[i] = math.Exp(t - mx)
			sum += g[i]
		}
		loss += (math.Log(sum) + mx - s[d.y[p]]) * inv
		if grad == nil {
			continue
		}
		for i := range g {
			g[i] = g[i] / sum * inv
		}
		g[d.y[p]] -= inv
		// q = dL/du (u = A'v, before the scale): inv * X' g.
		if d.ss == 1 {
			for ch := range c {
				q[ch] = floats.Dot(xs[ch*64:(ch+1)*64], g[:])
			}
		} else {
			clear(q)
			for i := range 64 {
				floats.AddScaled(q, g[i], xs[i*c:(i+1)*c])
			}
		}
		floats.Mul(q, d.inv)
		for k := range rank {
			floats.AddScaled(ga[k*c:(k+1)*c], v[k], q)
			r[k] = floats.Dot(a[k*c:(k+1)*c], q)
			floats.AddScaled(gb[k*e:(k+1)*e], r[k], z)
		}
	}
	for j, t := range theta {
		loss += alpha * t * t
		if grad != nil {
			grad[j] += 2 * alpha * t
		}
	}
	return loss
}

func dot(a, b []float64) float64 {
	var t float64
	for i, x := range a {
		t += x * b[i]
	}
	return t
}

// minimise runs L-BFGS (memory 10, backtracking Armijo line search) from theta, updated in place, on
// the positions idx, for at most iters iterations or until the loss stops improving.
func (d *bilinearData) minimise(ctx context.Context, theta []float64, idx []int, alpha float64, rank, iters int) error {
	const mem = 10
	n := len(theta)
	g := make([]float64, n)
	f := d.objective(theta, g, idx, alpha, rank)
	var ss, ys [][]float64
	var rho []float64
	dir, x2, g2 := make([]float64, n), make([]float64, n), make([]float64, n)
	al := make([]float64, mem)
	for it := 0; it < iters; it++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		// Two-loop recursion: dir = -H g.
		for i := range dir {
			dir[i] = -g[i]
		}
		for j := len(ss) - 1; j >= 0; j-- {
			al[j] = rho[j] * dot(ss[j], dir)
			for i := range dir {
				dir[i] -= al[j] * ys[j][i]
			}
		}
		if m := len(ss); m > 0 {
			gamma := dot(ss[m-1], ys[m-1]) / dot(ys[m-1], ys[m-1])
			for i := range dir {
				dir[i] *= gamma
			}
		}
		for j := range ss {
			b := rho[j] * dot(ys[j], dir)
			for i := range dir {
				dir[i] += (al[j] - b) * ss[j][i]
			}
		}
		slope := dot(dir, g)
		if !(slope < 0) { // not a descent direction: restart from the gradient
			ss, ys, rho = nil, nil, nil
			for i := range dir {
				dir[i] = -g[i]
			}
			slope = -dot(g, g)
		}
		if slope == 0 {
			return nil
		}
		step, f2 := 1.0, 0.0
		if len(ss) == 0 {
			step = math.Min(1, 1/math.Sqrt(-slope))
		}
		ok := false
		for range 40 {
			for i := range x2 {
				x2[i] = theta[i] + step*dir[i]
			}
			f2 = d.objective(x2, g2, idx, alpha, rank)
			if f2 <= f+1e-4*step*slope {
				ok = true
				break
			}
			step /= 2
		}
		if !ok || !finiteAll(x2) {
			return nil // no further decrease: theta is the best point found
		}
		s, y := make([]float64, n), make([]float64, n)
		for i := range s {
			s[i], y[i] = x2[i]-theta[i], g2[i]-g[i]
		}
		copy(theta, x2)
		copy(g, g2)
		improved := f - f2
		f = f2
		if sy := dot(s, y); sy > 1e-12 {
			if len(ss) == mem {
				ss, ys, rho = ss[1:], ys[1:], rho[1:]
			}
			ss, ys, rho = append(ss, s), append(ys, y), append(rho, 1/sy)
		}
		if improved <= 1e-7*math.Max(1, math.Abs(f)) {
			return nil
		}
	}
	return nil
}

func finiteAll(v []float64) bool {
	for _, x := range v {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return false
		}
	}
	return true
}

// bilinearInit draws A and B as leela-interp does: standard normals over sqrt(fan-in).
func bilinearInit(seed uint64, rank, c int) []float64 {
	rng := rand.New(rand.NewPCG(seed, 0xb1))
	theta := make([]float64, rank*c+rank*(c+1))
	for j := range theta {
		n := c
		if j >= rank*c {
			n = c + 1
		}
		theta[j] = rng.NormFloat64() / math.Sqrt(float64(n))
	}
	return theta
}

// context returns a position's raw context: the anchor square's activations, or the mean over squares.
func squareContext(x []float32, anchor, c int, sqMajor bool) []float64 {
	z := make([]float64, c)
	for ch := range c {
		if anchor >= 0 {
			z[ch] = float64(x[at(sqMajor, c, ch, anchor)])
			continue
		}
		var t float64
		for sq := range 64 {
			t += float64(x[at(sqMajor, c, ch, sq)])
		}
		z[ch] = t / 64
	}
	return z
}

// fitBilinear trains the bilinear probe (see the top of this file) on the kept training positions, the penalty
// cross-validated over whole groups when opts.Grid is set.
func (f *SquareFitter) fitBilinear(ctx context.Context) (*SquareProbe, error) {
	if !f.top1 {
		return nil, fmt.Errorf("probe %s: a bilinear probe scores the 64 squares against each other: it needs a top-1 concept", f.module)
	}
	r := f.fitSet
	n, c := len(r.x), f.channels
	if n == 0 {
		return nil, fmt.Errorf("probe %s: no training position", f.module)
	}
	rank := f.opts.Rank
	if rank < 1 {
		rank = DefaultRank
	}
	rank = min(rank, c)
	d := &bilinearData{x: r.x, y: make([]int, n), z: make([][]float64, n), c: c, cs: 64, ss: 1}
	if f.sqMajor {
		d.cs, d.ss = 1, c
	}
	sumX, sumSq := make([]float64, c), make([]float64, c)
	zs, zsSq := make([]float64, c), make([]float64, c)
	raw := make([][]float64, n)
	for p, x := range r.x {
		for ch := range c {
			for sq := range 64 {
				v := float64(x[at(f.sqMajor, c, ch, sq)])
				sumX[ch] += v
				sumSq[ch] += v * v
			}
		}
		d.y[p] = argmaxInt(r.y[p])
		raw[p] = squareContext(x, r.anchor[p], c, f.sqMajor)
		for ch, v := range raw[p] {
			zs[ch] += v
			zsSq[ch] += v * v
		}
	}
	d.inv = newStandardisation(sumX, sumSq, 64*n).inv
	zst := newStandardisation(zs, zsSq, n)
	for p, z := range raw {
		d.z[p] = make([]float64, c+1)
		for ch, v := range z {
			d.z[p][ch] = (v - zst.mean[ch]) * zst.inv[ch]
		}
		d.z[p][c] = 1
	}
	alpha, curve := f.opts.L2, []CVPoint(nil)
	if len(f.opts.Grid) > 0 {
		var err error
		if alpha, curve, err = f.crossValidateBilinear(ctx, d, rank); err != nil {
			return nil, err
		}
	}
	all := make([]int, n)
	for p := range all {
		all[p] = p
	}
	theta := bilinearInit(f.opts.Seed, rank, c)
	if err := d.minimise(ctx, theta, all, alpha, rank, bilinearIters); err != nil {
		return nil, fmt.Errorf("probe %s: %w", f.module, err)
	}
	p := &SquareProbe{Module: f.module, Channels: c, SquareMajor: f.sqMajor, Train: n, L2: alpha, CV: curve, AUC: math.NaN(),
		Form: FormBilinear, Context: "mean", Rank: rank}
	if f.anchored > 0 {
		p.Context = "anchor"
	}
	// Fold the standardisations into raw-activation maps: Left = A diag(inv); Right = B diag(zinv) and
	// RightBias = B[:,c] - Right zmean. The x mean shifts all 64 logits alike and is dropped.
	a, b := theta[:rank*c], theta[rank*c:]
	for k := range rank {
		left, right := make([]float64, c), make([]float64, c)
		bias := b[k*(c+1)+c]
		for ch := range c {
			left[ch] = a[k*c+ch] * d.inv[ch]
			right[ch] = b[k*(c+1)+ch] * zst.inv[ch]
			bias -= right[ch] * zst.mean[ch]
		}
		p.Left, p.Right, p.RightBias = append(p.Left, left), append(p.Right, right), append(p.RightBias, bias)
	}
	return p, nil
}

// crossValidateBilinear picks the penalty with the smallest held-out cross-entropy summed over the folds
// (whole groups), on up to bilinearCVRows training positions; each fold's fit starts from its fit at the
// previous, larger penalty. A tie goes to the larger penalty.
func (f *SquareFitter) crossValidateBilinear(ctx context.Context, d *bilinearData, rank int) (float64, []CVPoint, error) {
	n := min(len(d.x), bilinearCVRows)
	folds := make([][]int, f.opts.Folds)
	for p := range n {
		folds[f.fitSet.fold[p]] = append(folds[f.fitSet.fold[p]], p)
	}
	grid := f.opts.Grid
	loss := make([]float64, len(grid))
	used := 0
	for k, test := range folds {
		if len(test) == 0 || len(test) == n {
			continue
		}
		used++
		var train []int
		for j, o := range folds {
			if j != k {
				train = append(train, o...)
			}
		}
		theta := bilinearInit(f.opts.Seed, rank, d.c)
		for g := len(grid) - 1; g >= 0; g-- {
			if err := d.minimise(ctx, theta, train, grid[g], rank, bilinearCVIters); err != nil {
				return 0, nil, fmt.Errorf("probe %s: %w", f.module, err)
			}
			loss[g] += d.objective(theta, nil, test, 0, rank) * float64(len(test))
		}
	}
	if used < 2 {
		return 0, nil, fmt.Errorf("probe %s: --l2 auto cross-validates over records (games), and the training positions fill %d of %d folds: pass --l2 VALUE", f.module, used, len(folds))
	}
	best := len(grid) - 1
	var curve []CVPoint
	for g, a := range grid {
		curve = append(curve, CVPoint{L2: a, Loss: loss[g] / float64(n)})
		if loss[g] < loss[best] {
			best = g
		}
	}
	return grid[best], curve, nil
}

// BilinearScores are a bilinear probe's logits of the 64 squares of activations x, up to a constant per
// position (see the top of this file); anchor is the context square, -1 for the mean over squares.
func (p *SquareProbe) BilinearScores(x []float32, anchor int) [64]float64 {
	c := p.Channels
	if p.Context != "anchor" {
		anchor = -1
	}
	z := squareContext(x, anchor, c, p.SquareMajor)
	w := make([]float64, c)
	for k, left := range p.Left {
		v := dot(p.Right[k], z) + p.RightBias[k]
		for ch, l := range left {
			w[ch] += l * v
		}
	}
	var s [64]float64
	for sq := range 64 {
		for ch, wc := range w {
			s[sq] += wc * float64(x[at(p.SquareMajor, c, ch, sq)])
		}
	}
	return s
}
