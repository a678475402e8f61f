package lens

import (
	"fmt"
	"sort"

	"github.com/lczerolens/lczerolens/internal/model"
)

// DefaultAttentionPattern selects the attention weights (softmax over keys) of every encoder layer, of the
// body and of an attention policy's encoder.
const DefaultAttentionPattern = `mha/QK/softmax$`

// Attention reads attention patterns out of attention bodies and policy encoders, with query and key
// squares moved to the absolute board frame.
var Attention = &Lens{
	Name: "attention",
	Doc:  "Attention patterns [heads,64,64] (query, key; a1=0..h8=63, absolute frame) per attention module; --attribution grad adds attention times its gradient of --target.",
	Options: []Option{
		{Name: "pattern", Kind: Regexp, Default: "", DefaultDoc: DefaultAttentionPattern, Help: "Go regexp over module names, shaped [heads,64,64] or [64,64] (an attention policy's policy/scale: logits)"},
		{Name: "attribution", Kind: Enum, Default: "none", Choices: []string{"none", "grad"}, Help: "none, or grad: also <module>_attribution, attention times d target / d attention"},
		{Name: "target", Kind: String, Default: "value", Help: "what --attribution grad differentiates: " + PatchTargetHelp, Check: checkTarget},
		{Name: "top-pairs", Kind: Int, Default: "0", Help: "list the K strongest (query, key) pairs per head in JSON as <module>_top (by attribution when asked, else attention)", Check: checkNonNegativeInt},
	},
	Compatible: func(n *model.Network, v Values) error {
		_, err := attentionModules(n, v)
		return err
	},
	Prepare: prepareAttention,
}

func checkNonNegativeInt(v any) error {
	if v.(int) < 0 {
		return fmt.Errorf("%d: want 0 or more", v.(int))
	}
	return nil
}

func attentionModules(n *model.Network, v Values) ([]model.Module, error) {
	pattern := v.GetString("pattern")
	if pattern == "" {
		pattern = DefaultAttentionPattern
	}
	mods, err := n.Select(pattern)
	if err != nil {
		return nil, fmt.Errorf("no attention module (a network with an attention body or policy encoder has %s): %w", DefaultAttentionPattern, err)
	}
	for _, m := range mods {
		if attentionHeads(m.Shape) == 0 {
			return nil, fmt.Errorf("module %s has shape %v, want [1,heads,64,64] or [1,64,64]", m.Name, m.Shape)
		}
	}
	return mods, nil
}

// attentionHeads is the number of heads of an attention tensor of the given batch-1 shape, 0 if it is none.
func attentionHeads(shape []int64) int {
	switch {
	case len(shape) == 4 && shape[2] == 64 && shape[3] == 64:
		return int(shape[1])
	case len(shape) == 3 && shape[1] == 64 && shape[2] == 64:
		return 1
	}
	return 0
}

// PairWeight is one (query, key) pair of a head, squares in the absolute frame.
type PairWeight struct {
	Query  string  `json:"query"`
	Key    string  `json:"key"`
	Weight float32 `json:"weight"`
}

func prepareAttention(n *model.Network, v Values) (*Prep, error) {
	mods, err := attentionModules(n, v)
	if err != nil {
		return nil, err
	}
	grad := v.GetString("attribution") == "grad"
	top := v.GetInt("top-pairs")
	hooks := make([]string, len(mods))
	names := make([]string, len(mods))
	for i, m := range mods {
		hooks[i], names[i] = m.Tensor, moduleKey(m.Tensor)
	}
	prep := &Prep{Hooks: hooks, Meta: map[string]any{"modules": names, "axes": "head, query square, key square (a1=0..h8=63)"}}
	if grad {
		t, err := ParseTarget(v.GetString("target"))
		if err != nil {
			return nil, err
		}
		if err := t.Check(n); err != nil {
			return nil, err
		}
		prep.Gradient = &GradientNeed{Target: t, Wrt: hooks}
		prep.Meta["target"] = t.String()
	}
	for _, name := range names {
		prep.Keys = append(prep.Keys, name+"_attention")
		if grad {
			prep.Keys = append(prep.Keys, name+"_attribution")
		}
		if top > 0 {
			prep.Keys = append(prep.Keys, name+"_top")
		}
	}
	prep.Produce = func(b *Batch, out *Outputs) ([]BatchResult, error) {
		bn := b.Len()
		var rs []BatchResult
		for k, m := range mods {
			a, ok := out.Tensors[m.Tensor]
			if !ok {
				return nil, fmt.Errorf("module %s was not returned by the run", m.Tensor)
			}
			heads := attentionHeads(m.Shape)
			att := absoluteAttention(a.Data, heads, b)
			rs = append(rs, BatchResult{Key: names[k] + "_attention", Shape: []int{heads, 64, 64}, Data: att})
			rank := att
			if grad {
				g, ok := out.Grads[m.Tensor]
				if !ok || len(g.Data) != len(a.Data) {
					return nil, fmt.Errorf("no gradient of module %s", m.Tensor)
				}
				attr := make([]float32, len(a.Data))
				for j := range attr {
					attr[j] = a.Data[j] * g.Data[j]
				}
				attr = absoluteAttention(attr, heads, b)
				rs = append(rs, BatchResult{Key: names[k] + "_attribution", Shape: []int{heads, 64, 64}, Data: attr})
				rank = attr
			}
			if top > 0 {
				js := make([]any, bn)
				for i := range bn {
					js[i] = topPairs(rank[i*heads*4096:(i+1)*heads*4096], heads, top)
				}
				rs = append(rs, BatchResult{Key: names[k] + "_top", JSON: js})
			}
		}
		return rs, nil
	}
	return prep, nil
}

// absoluteAttention moves the query and key axes of each position's [heads,64,64] block from the planes'
// frame (the token order of the body) to absolute squares.
func absoluteAttention(data []float32, heads int, b *Batch) []float32 {
	out := make([]float32, len(data))
	per := heads * 4096
	abs := make([]int, 64)
	for i := range b.Len() {
		for sq := range 64 {
			abs[sq] = absSquare(b, i, sq)
		}
		src, dst := data[i*per:(i+1)*per], out[i*per:(i+1)*per]
		for h := range heads {
			for q := range 64 {
				for k := range 64 {
					dst[h*4096+abs[q]*64+abs[k]] = src[h*4096+q*64+k]
				}
			}
		}
	}
	return out
}

// topPairs lists, per head, the k pairs of largest absolute weight.
func topPairs(w []float32, heads, k int) [][]PairWeight {
	out := make([][]PairWeight, heads)
	idx := make([]int, 4096)
	for h := range heads {
		hw := w[h*4096 : (h+1)*4096]
		for j := range idx {
			idx[j] = j
		}
		sort.SliceStable(idx, func(a, b int) bool { return abs32(hw[idx[a]]) > abs32(hw[idx[b]]) })
		for _, j := range idx[:min(k, 4096)] {
			out[h] = append(out[h], PairWeight{Query: squareName(j / 64), Key: squareName(j % 64), Weight: hw[j]})
		}
	}
	return out
}

func abs32(x float32) float32 {
	if x < 0 {
		return -x
	}
	return x
}

func squareName(sq int) string { return string(rune('a'+sq%8)) + string(rune('1'+sq/8)) }
