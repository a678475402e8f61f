package pipeline

import "context"

// MeanSink accumulates, in float64, the mean row of every tensor result over all consumed positions: the
// streaming mean a reference set needs (mean ablation, steering directions) in memory of one row per key.
type MeanSink struct {
	sums map[string][]float64
	n    int
}

// Consume adds the batch's rows.
func (s *MeanSink) Consume(_ context.Context, b *Batch) error {
	if s.sums == nil {
		s.sums = map[string][]float64{}
	}
	for _, r := range b.Results {
		if r.JSONOnly() {
			continue
		}
		row := r.RowSize()
		sum := s.sums[r.Key]
		if sum == nil {
			sum = make([]float64, row)
			s.sums[r.Key] = sum
		}
		for i := range b.Len() {
			for k, x := range r.Data[i*row : (i+1)*row] {
				sum[k] += float64(x)
			}
		}
	}
	s.n += b.Len()
	return nil
}

// Close keeps nothing beyond the sums: the caller reads Mean.
func (s *MeanSink) Close(Summary, error) error { return nil }

// Count is the number of positions averaged.
func (s *MeanSink) Count() int { return s.n }

// Mean returns the mean row of result key, nil when no position had it.
func (s *MeanSink) Mean(key string) []float32 {
	sum := s.sums[key]
	if sum == nil || s.n == 0 {
		return nil
	}
	out := make([]float32, len(sum))
	for k, x := range sum {
		out[k] = float32(x / float64(s.n))
	}
	return out
}
