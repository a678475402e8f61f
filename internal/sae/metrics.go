package sae

// Metrics are an SAE's quality on a set of vectors.
type Metrics struct {
	Vectors int     `json:"vectors"`
	FVU     float64 `json:"fvu"`           // sum|x - x_hat|^2 / sum|x - mean x|^2
	L0      float64 `json:"l0"`            // mean number of active features per vector
	Dead    float64 `json:"dead_fraction"` // fraction of features active on no vector
}

// Evaluator accumulates Metrics over vectors given in any number of calls.
type Evaluator struct {
	s             *SAE
	enc           *Encoder
	n             int
	sum, sumSq    []float64
	errSq, active float64
	fired         []bool
}

// NewEvaluator returns an empty evaluator of s.
func (s *SAE) NewEvaluator() *Evaluator {
	return &Evaluator{s: s, enc: s.NewEncoder(), sum: make([]float64, s.C), sumSq: make([]float64, s.C), fired: make([]bool, s.F)}
}

// Add adds n vectors x ([n,C]).
func (ev *Evaluator) Add(x []float32, n int) {
	if n == 0 {
		return
	}
	c := ev.s.C
	ev.enc.Encode(x, n, true, func(i int, code Code, xhat []float32) {
		row := x[i*c : (i+1)*c]
		for k, v := range row {
			d := float64(v - xhat[k])
			ev.errSq += d * d
			ev.sum[k] += float64(v)
			ev.sumSq[k] += float64(v) * float64(v)
		}
		for a, j := range code.Index {
			if code.Value[a] != 0 {
				ev.active++
				ev.fired[j] = true
			}
		}
	})
	ev.n += n
}

// Metrics returns the metrics so far.
func (ev *Evaluator) Metrics() Metrics {
	m := Metrics{Vectors: ev.n}
	if ev.n == 0 {
		return m
	}
	var total float64
	for k := range ev.sum {
		total += ev.sumSq[k] - ev.sum[k]*ev.sum[k]/float64(ev.n)
	}
	m.FVU = ev.errSq / total
	m.L0 = ev.active / float64(ev.n)
	dead := 0
	for _, f := range ev.fired {
		if !f {
			dead++
		}
	}
	m.Dead = float64(dead) / float64(len(ev.fired))
	return m
}

// Evaluate returns the metrics of s on n vectors x.
func (s *SAE) Evaluate(x []float32, n int) Metrics {
	ev := s.NewEvaluator()
	ev.Add(x, n)
	return ev.Metrics()
}
