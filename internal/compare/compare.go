// Package compare puts the same positions through two networks and measures how they differ: whether their
// top moves agree, how much each gives the other's choice, the Jensen-Shannon divergence of their
// distributions over the legal moves, and their values. Running the networks is the pipeline's; Pair is the
// engine that runs both on one batch.
package compare

import (
	"container/heap"
	"math"
	"sync"

	"github.com/lczerolens/lczerolens/internal/lens"
	"github.com/lczerolens/lczerolens/internal/model"
	"github.com/lczerolens/lczerolens/internal/pipeline"
)

// JSD is the Jensen-Shannon divergence of p and q (distributions over the same outcomes) in bits: 0 for
// equal distributions, 1 for disjoint ones.
func JSD(p, q []float64) float64 {
	var d float64
	for i := range p {
		m := (p[i] + q[i]) / 2
		if p[i] > 0 {
			d += p[i] * math.Log2(p[i]/m)
		}
		if q[i] > 0 {
			d += q[i] * math.Log2(q[i]/m)
		}
	}
	return max(d/2, 0) // rounding can make an exact 0 slightly negative
}

// Pair runs network A and network B on every batch. The pipeline hands A's heads on in the batch's
// Outputs; B's are kept for the sink to take with Other (the engine runs one batch ahead of the sink).
type Pair struct {
	A, B pipeline.Forward
	mu   sync.Mutex
	b    map[*lens.Batch]*model.HeadOutputs
}

// Run runs both networks.
func (p *Pair) Run(b *lens.Batch) (*lens.Outputs, []lens.BatchResult, error) {
	out, _, err := p.A.Run(b)
	if err != nil {
		return nil, nil, err
	}
	ob, _, err := p.B.Run(b)
	if err != nil {
		return nil, nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.b == nil {
		p.b = map[*lens.Batch]*model.HeadOutputs{}
	}
	p.b[b] = ob.Heads
	return out, nil, nil
}

// Other returns (and forgets) B's heads for batch b.
func (p *Pair) Other(b *lens.Batch) *model.HeadOutputs {
	p.mu.Lock()
	defer p.mu.Unlock()
	h := p.b[b]
	delete(p.b, b)
	return h
}

// Record is one position compared: a line of compare.jsonl.
type Record struct {
	Source string `json:"source"`
	Record int    `json:"record"`
	Ply    int    `json:"ply"`
	FEN    string `json:"fen"`
	TopA   string `json:"top_a"`
	TopB   string `json:"top_b"`
	Agree  bool   `json:"agree"`
	// PA is A's probability of B's top move, PB is B's probability of A's top move: how much each net gives
	// the other's choice. PTopA and PTopB are each net's probability of its own top move.
	PA    float64 `json:"p_a"`
	PB    float64 `json:"p_b"`
	PTopA float64 `json:"p_top_a"`
	PTopB float64 `json:"p_top_b"`
	JSD   float64 `json:"jsd"` // bits
	A     Value   `json:"a"`
	B     Value   `json:"b"`
	Legal int     `json:"legal"`
}

// Value is a network's evaluation of the position, from the side to move.
type Value struct {
	Q   float64   `json:"value"`
	WDL []float64 `json:"wdl"` // nil without a WDL head
}

// Compare builds the record of one position from both networks' distributions over its legal moves (same
// moves, same order) and their values. With no legal move the tops are empty and JSD is 0.
func Compare(moves []string, pa, pb []float64, va, vb Value) Record {
	r := Record{A: va, B: vb, Legal: len(moves)}
	ta, tb := argmax(pa), argmax(pb)
	if ta >= 0 {
		r.TopA, r.TopB = moves[ta], moves[tb]
		r.PTopA, r.PTopB = pa[ta], pb[tb]
		r.PA, r.PB = pa[tb], pb[ta]
	}
	r.Agree = ta == tb
	r.JSD = JSD(pa, pb)
	return r
}

func argmax(p []float64) int {
	best := -1
	for i, x := range p {
		if best < 0 || x > p[best] {
			best = i
		}
	}
	return best
}

// Disagreement is a position where the networks differ most.
type Disagreement struct {
	FEN  string  `json:"fen"`
	TopA string  `json:"top_a"`
	TopB string  `json:"top_b"`
	JSD  float64 `json:"jsd"`
}

// Summary accumulates records: agreement rate, mean JSD, the Pearson correlation of the values, and the
// Keep positions of largest JSD.
type Summary struct {
	Positions int            `json:"positions"`
	Agreement float64        `json:"agreement"`
	MeanJSD   float64        `json:"mean_jsd"`
	ValueCorr *float64       `json:"value_correlation"` // nil when a value is constant (undefined)
	Largest   []Disagreement `json:"largest_disagreements"`
	Keep      int            `json:"-"`
	agree     int
	sumJSD    float64
	sa, sb    float64
	saa, sbb  float64
	sab       float64
	top       disHeap
}

// Add counts one record.
func (s *Summary) Add(r Record) {
	s.Positions++
	if r.Agree {
		s.agree++
	}
	s.sumJSD += r.JSD
	a, b := r.A.Q, r.B.Q
	s.sa, s.sb, s.saa, s.sbb, s.sab = s.sa+a, s.sb+b, s.saa+a*a, s.sbb+b*b, s.sab+a*b
	if s.Keep > 0 && r.JSD > 0 {
		heap.Push(&s.top, Disagreement{FEN: r.FEN, TopA: r.TopA, TopB: r.TopB, JSD: r.JSD})
		if s.top.Len() > s.Keep {
			heap.Pop(&s.top)
		}
	}
}

// Finish computes the rates and lists the largest disagreements, largest first.
func (s *Summary) Finish() {
	if s.Positions == 0 {
		return
	}
	n := float64(s.Positions)
	s.Agreement, s.MeanJSD = float64(s.agree)/n, s.sumJSD/n
	va, vb := s.saa-s.sa*s.sa/n, s.sbb-s.sb*s.sb/n
	if va > 1e-12 && vb > 1e-12 {
		c := (s.sab - s.sa*s.sb/n) / math.Sqrt(va*vb)
		s.ValueCorr = &c
	}
	s.Largest = make([]Disagreement, s.top.Len())
	for i := len(s.Largest) - 1; i >= 0; i-- {
		s.Largest[i] = heap.Pop(&s.top).(Disagreement)
	}
}

// disHeap is a min-heap by JSD: the smallest of the kept is dropped first.
type disHeap []Disagreement

func (h disHeap) Len() int           { return len(h) }
func (h disHeap) Less(i, j int) bool { return h[i].JSD < h[j].JSD }
func (h disHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *disHeap) Push(x any)        { *h = append(*h, x.(Disagreement)) }
func (h *disHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
