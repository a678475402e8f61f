package sae

import (
	"container/heap"
	"sort"
)

// Example is one position where a feature fires: its largest value over the position's vectors, the vector
// (square) where it is, the feature's value on every vector of the position, and the caller's Meta.
type Example struct {
	Value  float32
	Vector int
	Values []float32
	Meta   any
}

// FeatureStats gathers, over a stream of positions, each feature's density (fraction of vectors where it is
// active) and its top examples, in bounded memory: a min-heap of at most N examples per feature, one per
// position.
type FeatureStats struct {
	F, N    int
	Count   []int64
	Vectors int64
	heaps   []exampleHeap
	best    []float32
	at      []int
	touched []int32
}

// NewFeatureStats keeps the top n examples of each of f features.
func NewFeatureStats(f, n int) *FeatureStats {
	return &FeatureStats{F: f, N: n, Count: make([]int64, f), heaps: make([]exampleHeap, f), best: make([]float32, f), at: make([]int, f)}
}

// AddPosition adds one position's codes (one per vector); meta is asked for only when one of its examples
// enters a top list.
func (s *FeatureStats) AddPosition(codes []Code, meta func() any) {
	s.Vectors += int64(len(codes))
	s.touched = s.touched[:0]
	for v, c := range codes {
		for a, j := range c.Index {
			val := c.Value[a]
			if val <= 0 {
				continue
			}
			s.Count[j]++
			if s.best[j] == 0 {
				s.touched = append(s.touched, j)
			}
			if val > s.best[j] {
				s.best[j], s.at[j] = val, v
			}
		}
	}
	var m any
	got := false
	for _, j := range s.touched {
		h := &s.heaps[j]
		v := s.best[j]
		s.best[j] = 0
		if len(*h) == s.N && v <= (*h)[0].Value {
			continue
		}
		if !got {
			m, got = meta(), true
		}
		values := make([]float32, len(codes))
		for q, c := range codes {
			for a, i := range c.Index {
				if i == j {
					values[q] = c.Value[a]
				}
			}
		}
		e := Example{Value: v, Vector: s.at[j], Values: values, Meta: m}
		if len(*h) < s.N {
			heap.Push(h, e)
		} else {
			(*h)[0] = e
			heap.Fix(h, 0)
		}
	}
}

// Density is the fraction of vectors where feature j is active.
func (s *FeatureStats) Density(j int) float64 {
	if s.Vectors == 0 {
		return 0
	}
	return float64(s.Count[j]) / float64(s.Vectors)
}

// Top returns feature j's examples, largest value first.
func (s *FeatureStats) Top(j int) []Example {
	out := append([]Example(nil), s.heaps[j]...)
	sort.SliceStable(out, func(a, b int) bool { return out[a].Value > out[b].Value })
	return out
}

type exampleHeap []Example

func (h exampleHeap) Len() int           { return len(h) }
func (h exampleHeap) Less(i, j int) bool { return h[i].Value < h[j].Value }
func (h exampleHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *exampleHeap) Push(x any)        { *h = append(*h, x.(Example)) }
func (h *exampleHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
