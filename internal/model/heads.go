package model

import (
	"fmt"
	"math"
)

// HeadOutputs are the decoded heads for a batch, row-major; a head the network lacks is nil.
type HeadOutputs struct {
	Batch  int
	Policy []float32 // raw logits, Batch x 1858
	WDL    []float32 // softmaxed [W, D, L], Batch x 3
	Value  []float32 // tanh value, Batch
	MLH    []float32 // moves left, Batch
}

// Forward runs the heads on planes (batch x 112 x 8 x 8 values).
func (n *Network) Forward(r *SessionCache, planes []float32, batch int) (*HeadOutputs, error) {
	if batch < 1 || len(planes) != batch*Planes*64 {
		return nil, fmt.Errorf("model: forward: %d plane values for batch %d, want %d", len(planes), batch, batch*Planes*64)
	}
	p, err := n.HookPlan(nil)
	if err != nil {
		return nil, err
	}
	res, err := r.Run(p, map[string]Tensor{n.Input: {Shape: []int64{int64(batch), Planes, 8, 8}, Data: planes}}, nil)
	if err != nil {
		return nil, fmt.Errorf("model: forward %s: %w", n.Path, err)
	}
	return n.DecodeHeads(res, batch)
}

// DecodeHeads picks the head tensors out of a Run result, checking their sizes.
func (n *Network) DecodeHeads(res map[string]Tensor, batch int) (*HeadOutputs, error) {
	h := &HeadOutputs{Batch: batch}
	for _, head := range []struct {
		name string
		per  int
		dst  *[]float32
	}{
		{n.Heads.Policy, PolicySize, &h.Policy},
		{n.Heads.WDL, 3, &h.WDL},
		{n.Heads.Value, 1, &h.Value},
		{n.Heads.MLH, 1, &h.MLH},
	} {
		if head.name == "" {
			continue
		}
		t, ok := res[head.name]
		if !ok {
			return nil, fmt.Errorf("model: decode heads: output %q missing", head.name)
		}
		if len(t.Data) != batch*head.per {
			return nil, fmt.Errorf("model: decode heads: %q has %d values for batch %d, want %d", head.name, len(t.Data), batch, batch*head.per)
		}
		*head.dst = t.Data
	}
	return h, nil
}

// PolicyRow returns position i's 1858 policy logits.
func (h *HeadOutputs) PolicyRow(i int) []float32 {
	return h.Policy[i*PolicySize : (i+1)*PolicySize]
}

// ForceValue is position i's expected score in [-1, 1]: the value head when present, else W - L.
func (h *HeadOutputs) ForceValue(i int) float32 {
	switch {
	case h.Value != nil:
		return h.Value[i]
	case h.WDL != nil:
		return h.WDL[3*i] - h.WDL[3*i+2]
	}
	return 0
}

// LegalSoftmax is the move distribution: the softmax of logits over the given policy indices only, with the
// maximum subtracted and float64 accumulation (as lc0's exact path). Result i belongs to indices[i].
func LegalSoftmax(logits []float32, indices []int) []float32 {
	out := make([]float32, len(indices))
	if len(indices) == 0 {
		return out
	}
	m := math.Inf(-1)
	for _, i := range indices {
		m = math.Max(m, float64(logits[i]))
	}
	var sum float64
	exps := make([]float64, len(indices))
	for k, i := range indices {
		exps[k] = math.Exp(float64(logits[i]) - m)
		sum += exps[k]
	}
	for k := range exps {
		out[k] = float32(exps[k] / sum)
	}
	return out
}
