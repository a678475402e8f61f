package sae

import (
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
)

// Options tune training.
type Options struct {
	LR float64 // Adam step size
	// L1 is the penalty lambda * sum_j z_j (decoder rows have unit norm) of the ReLU activation.
	L1 float64
	// AuxK and AuxCoef are the auxiliary loss that revives dead features (Gao et al. 2024, section A.2): the
	// AuxK largest pre-activations among dead features reconstruct the residual x - x_hat, and AuxCoef times
	// that error is added to the loss, so dead features get a gradient towards what the live ones miss.
	AuxK    int
	AuxCoef float64
	// DeadSteps is how many steps without firing make a feature dead.
	DeadSteps int
	Seed      uint64
}

// DefaultOptions are the defaults of `sae train`.
func DefaultOptions() Options {
	return Options{LR: 1e-3, AuxCoef: 1.0 / 32, DeadSteps: 200}
}

// Adam's constants (Kingma and Ba's defaults).
const (
	beta1 = 0.9
	beta2 = 0.999
	adamE = 1e-8
)

// Trainer holds an SAE under training and everything a resumed run needs to continue it exactly.
type Trainer struct {
	SAE  *SAE
	Opts Options
	Step int
	// Ready says Init has run.
	Ready bool
	// Adam's first and second moments, one pair per parameter array.
	MWEnc, VWEnc, MBEnc, VBEnc, MWDec, VWDec, MBDec, VBDec []float32
	// SinceFired counts the steps since each feature was last active.
	SinceFired []int32

	chunks []*chunk
	xc     []float32
	pre    []float32
}

// chunk is one fixed slice of a batch with its own gradient buffers: the chunks run in parallel and their
// gradients are summed in chunk order, so a step gives the same bits whatever the number of cores.
type chunk struct {
	gWEncT, gBEnc, gWDec, gBDec []float32 // gWEncT is [F,C]: a feature's encoder gradient is contiguous
	touched, fired              []bool
	loss, aux                   float64
	l0                          int
	idx, aidx                   []int32
	val, aval, e, g, d          []float32
}

// StepStats are one step's losses (in the scaled space, per element) and mean L0.
type StepStats struct {
	MSE, AuxMSE, L0 float64
	Dead            int // features dead before the step
}

// NewTrainer starts training s.
func NewTrainer(s *SAE, opts Options) *Trainer {
	c, f := s.C, s.F
	if opts.AuxK == 0 {
		opts.AuxK = min(2*s.K, f)
	}
	if opts.DeadSteps <= 0 {
		opts.DeadSteps = DefaultOptions().DeadSteps
	}
	return &Trainer{SAE: s, Opts: opts,
		MWEnc: make([]float32, c*f), VWEnc: make([]float32, c*f), MBEnc: make([]float32, f), VBEnc: make([]float32, f),
		MWDec: make([]float32, f*c), VWDec: make([]float32, f*c), MBDec: make([]float32, c), VBDec: make([]float32, c),
		SinceFired: make([]int32, f)}
}

// Init fixes the input scale s from a sample of n vectors (E|x*s|^2 = C) and starts the decoder bias at the
// sample's scaled mean. It is called once, before the first step.
func (t *Trainer) Init(x []float32, n int) {
	s := t.SAE
	c := s.C
	var sq float64
	mean := make([]float64, c)
	for i := range n * c {
		sq += float64(x[i]) * float64(x[i])
		mean[i%c] += float64(x[i])
	}
	if sq > 0 {
		s.Scale = float32(math.Sqrt(float64(c) * float64(n) / sq))
	}
	for i := range c {
		s.BDec[i] = float32(mean[i] / float64(n) * float64(s.Scale))
	}
	t.Ready = true
}

// numChunks depends on the sizes only, so that the summation order (and the bits) does not depend on the
// machine; large dictionaries get fewer chunks to bound the gradient buffers' memory.
func numChunks(c, f int) int {
	switch {
	case c*f <= 1<<20:
		return 8
	case c*f <= 1<<23:
		return 4
	}
	return 2
}

// TrainStep runs one Adam step on n vectors x ([n,C], raw activations).
func (t *Trainer) TrainStep(x []float32, n int) StepStats {
	s := t.SAE
	c, f := s.C, s.F
	if t.chunks == nil {
		for range numChunks(c, f) {
			t.chunks = append(t.chunks, &chunk{gWEncT: make([]float32, f*c), gBEnc: make([]float32, f), gWDec: make([]float32, f*c),
				gBDec: make([]float32, c), touched: make([]bool, f), fired: make([]bool, f), e: make([]float32, c), g: make([]float32, c), d: make([]float32, c)})
		}
	}
	if cap(t.pre) < n*f {
		t.pre = make([]float32, n*f)
		t.xc = make([]float32, n*c)
	}
	xc, pre := t.xc[:n*c], t.pre[:n*f]
	s.preacts(x, n, xc, pre)

	var dead []bool
	nDead := 0
	if t.Opts.AuxCoef > 0 {
		for j, v := range t.SinceFired {
			if int(v) >= t.Opts.DeadSteps {
				if dead == nil {
					dead = make([]bool, f)
				}
				dead[j] = true
				nDead++
			}
		}
	}
	nc := len(t.chunks)
	per := (n + nc - 1) / nc
	var wg sync.WaitGroup
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	for ci, ch := range t.chunks {
		lo, hi := min(ci*per, n), min((ci+1)*per, n)
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			t.backward(ch, xc, pre, lo, hi, n, dead)
		}()
	}
	wg.Wait()

	// Sum the chunks' gradients into the first, in chunk order.
	g0 := t.chunks[0]
	st := StepStats{Dead: nDead}
	for ci, ch := range t.chunks {
		st.MSE += ch.loss
		st.AuxMSE += ch.aux
		st.L0 += float64(ch.l0)
		if ci == 0 {
			continue
		}
		for j := range f {
			if ch.fired[j] {
				g0.fired[j] = true
				ch.fired[j] = false
			}
			if !ch.touched[j] {
				continue
			}
			g0.touched[j] = true
			ch.touched[j] = false
			addClear(g0.gWEncT[j*c:(j+1)*c], ch.gWEncT[j*c:(j+1)*c])
			addClear(g0.gWDec[j*c:(j+1)*c], ch.gWDec[j*c:(j+1)*c])
			g0.gBEnc[j] += ch.gBEnc[j]
			ch.gBEnc[j] = 0
		}
		addClear(g0.gBDec, ch.gBDec)
	}
	norm := float64(n * c)
	st.MSE /= norm
	st.AuxMSE /= norm
	st.L0 /= float64(n)

	// Unit-norm decoder rows: only the gradient's component tangent to each row is kept (the radial one
	// would be undone by the renormalisation and only disturbs Adam's moments).
	for j := range f {
		if !g0.touched[j] {
			continue
		}
		w, g := s.WDec[j*c:(j+1)*c], g0.gWDec[j*c:(j+1)*c]
		axpy(-dot(g, w), w, g)
	}
	t.Step++
	lr := t.Opts.LR * math.Sqrt(1-math.Pow(beta2, float64(t.Step))) / (1 - math.Pow(beta1, float64(t.Step)))
	// The encoder gradient is stored transposed; Adam runs over the parameters in their own layout.
	for i := range c {
		row := i * f
		for j := range f {
			adam(&s.WEnc[row+j], g0.gWEncT[j*c+i], &t.MWEnc[row+j], &t.VWEnc[row+j], lr)
		}
	}
	for j := range f {
		adam(&s.BEnc[j], g0.gBEnc[j], &t.MBEnc[j], &t.VBEnc[j], lr)
	}
	for i := range s.WDec {
		adam(&s.WDec[i], g0.gWDec[i], &t.MWDec[i], &t.VWDec[i], lr)
	}
	for i := range c {
		adam(&s.BDec[i], g0.gBDec[i], &t.MBDec[i], &t.VBDec[i], lr)
	}
	s.normalize()
	for j := range f {
		if g0.fired[j] {
			t.SinceFired[j] = 0
		} else if t.SinceFired[j] < math.MaxInt32 {
			t.SinceFired[j]++
		}
		g0.fired[j] = false
		if g0.touched[j] {
			g0.touched[j] = false
			clear(g0.gWEncT[j*c : (j+1)*c])
			clear(g0.gWDec[j*c : (j+1)*c])
			g0.gBEnc[j] = 0
		}
	}
	clear(g0.gBDec)
	return st
}

func adam(p *float32, g float32, m, v *float32, lr float64) {
	*m = beta1*(*m) + (1-beta1)*g
	*v = beta2*(*v) + (1-beta2)*g*g
	*p -= float32(lr * float64(*m) / (math.Sqrt(float64(*v)) + adamE))
}

func addClear(dst, src []float32) {
	src = src[:len(dst)]
	for i, v := range src {
		dst[i] += v
		src[i] = 0
	}
}

// backward accumulates the gradients of vectors lo..hi of a batch of n into ch. With e = z WDec - xc the
// error in the scaled space (x*s - x_hat*s), the loss is |e|^2/(n C) (+ L1 + the auxiliary loss).
func (t *Trainer) backward(ch *chunk, xc, pre []float32, lo, hi, n int, dead []bool) {
	s := t.SAE
	c, f := s.C, s.F
	ch.loss, ch.aux, ch.l0 = 0, 0, 0
	scale := float32(2 / float64(n*c))
	l1 := float32(t.Opts.L1 / float64(n))
	auxScale := float32(2 * t.Opts.AuxCoef / float64(n*c))
	e, g, d := ch.e, ch.g, ch.d
	for i := lo; i < hi; i++ {
		x := xc[i*c : (i+1)*c]
		p := pre[i*f : (i+1)*f]
		ch.idx, ch.val = s.active(p, s.K, nil, ch.idx, ch.val)
		ch.l0 += len(ch.idx)
		for c := range e {
			e[c] = -x[c]
		}
		for a, j := range ch.idx {
			axpy(ch.val[a], s.WDec[int(j)*c:int(j+1)*c], e)
		}
		var sq float64
		for c, v := range e {
			sq += float64(v) * float64(v)
			g[c] = scale * v
		}
		ch.loss += sq
		// b_dec enters x_hat directly and, through xc = x*s - b_dec, the encoder.
		axpy(1, g, ch.gBDec)
		for a, j := range ch.idx {
			ch.fired[j] = true
			t.feature(ch, int(j), ch.val[a], g, x, dot(g, s.WDec[int(j)*c:int(j+1)*c])+l1)
		}
		if dead == nil {
			continue
		}
		ch.aidx, ch.aval = s.active(p, t.Opts.AuxK, dead, ch.aidx, ch.aval)
		if len(ch.aidx) == 0 {
			continue
		}
		// The dead features' reconstruction of the residual -e (treated as a constant target).
		copy(d, e)
		for a, j := range ch.aidx {
			axpy(ch.aval[a], s.WDec[int(j)*c:int(j+1)*c], d)
		}
		sq = 0
		for c, v := range d {
			sq += float64(v) * float64(v)
			d[c] = auxScale * v
		}
		ch.aux += sq
		for a, j := range ch.aidx {
			t.feature(ch, int(j), ch.aval[a], d, x, dot(d, s.WDec[int(j)*c:int(j+1)*c]))
		}
	}
}

// feature adds one active feature j's gradients: value z, output gradient g (over C), centred input x, and
// dz the gradient at its pre-activation.
func (t *Trainer) feature(ch *chunk, j int, z float32, g, x []float32, dz float32) {
	s := t.SAE
	c, f := s.C, s.F
	ch.touched[j] = true
	axpy(z, g, ch.gWDec[j*c:(j+1)*c])
	ch.gBEnc[j] += dz
	axpy(dz, x, ch.gWEncT[j*c:(j+1)*c])
	for i := range c {
		ch.gBDec[i] -= dz * s.WEnc[i*f+j]
	}
}

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)) }
