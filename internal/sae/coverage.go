package sae

// Coverage scores units (SAE features or raw neurons) as binary classifiers of concepts, in the manner of
// Karvonen et al. (2024): unit u predicts concept q on a vector when its value exceeds a threshold, a
// fraction of u's largest value; a concept's score is the best F1 over units and thresholds.
type Coverage struct {
	Units, Concepts int
	Fractions       []float64
	thresh          []float32 // [unit*T + t]
	tp              []int64   // [(q*Units+u)*T + t]
	pred            []int64   // [unit*T + t]
	actual          []int64   // [q]
}

// DefaultFractions are the thresholds, as fractions of a unit's largest value.
var DefaultFractions = []float64{0, 0.1, 0.25, 0.5, 0.75}

// NewCoverage scores units whose largest values are maxima over concepts.
func NewCoverage(maxima []float32, concepts int, fractions []float64) *Coverage {
	t := len(fractions)
	c := &Coverage{Units: len(maxima), Concepts: concepts, Fractions: fractions, thresh: make([]float32, len(maxima)*t),
		tp: make([]int64, concepts*len(maxima)*t), pred: make([]int64, len(maxima)*t), actual: make([]int64, concepts)}
	for u, m := range maxima {
		for k, f := range fractions {
			c.thresh[u*t+k] = float32(f) * m
		}
	}
	return c
}

// Add counts one vector: the units' nonzero values (index, value) and the concepts' labels.
func (c *Coverage) Add(index []int32, value []float32, labels []bool) {
	t := len(c.Fractions)
	for q, l := range labels {
		if l {
			c.actual[q]++
		}
	}
	for a, u := range index {
		v := value[a]
		for k := range t {
			if !(v > c.thresh[int(u)*t+k]) {
				continue
			}
			c.pred[int(u)*t+k]++
			for q, l := range labels {
				if l {
					c.tp[(q*c.Units+int(u))*t+k]++
				}
			}
		}
	}
}

// Best returns concept q's best F1 = 2 TP / (predicted + actual), with its unit and threshold fraction.
func (c *Coverage) Best(q int) (f1 float64, unit int, fraction float64) {
	t := len(c.Fractions)
	unit = -1
	for u := range c.Units {
		for k := range t {
			tp := c.tp[(q*c.Units+u)*t+k]
			if d := c.pred[u*t+k] + c.actual[q]; d > 0 && tp > 0 {
				if f := 2 * float64(tp) / float64(d); f > f1 {
					f1, unit, fraction = f, u, c.Fractions[k]
				}
			}
		}
	}
	return f1, unit, fraction
}

// Positives is how many vectors concept q holds on.
func (c *Coverage) Positives(q int) int64 { return c.actual[q] }
