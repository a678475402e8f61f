package lens

import (
	"fmt"
	"math"

	"github.com/lczerolens/lczerolens/internal/board"
	"github.com/lczerolens/lczerolens/internal/model"
)

// LogitLens decodes the policy and value from the residual stream after every block: block k's output is fed
// to the network's own heads in place of the last block's output (a patched graph, model.PatchPlan), so the
// last layer reproduces the network's output exactly.
var LogitLens = &Lens{
	Name: "logit-lens",
	Doc:  "Logit lens: the heads read after every residual block or encoder layer: per layer the top move, p(final top move), value and KL to the final policy.",
	Options: []Option{
		{Name: "pattern", Kind: Regexp, Default: "", DefaultDoc: DefaultActivationPattern, Help: "Go regexp over module names to decode; the last match is the one the heads read"},
	},
	Compatible: func(n *model.Network, v Values) error {
		_, err := logitLensModules(n, v)
		return err
	},
	Prepare: prepareLogitLens,
}

// logitLensModules are the layers to decode, in body order; the last is the tensor the heads read, which
// each layer's activation replaces, so every layer must have its shape.
func logitLensModules(n *model.Network, v Values) ([]model.Module, error) {
	mods, err := patternModules(n, v)
	if err != nil {
		return nil, err
	}
	last := mods[len(mods)-1]
	if _, _, err := n.PatchPlan(last.Tensor); err != nil {
		return nil, err
	}
	for _, m := range mods {
		if fmt.Sprint(m.Shape) != fmt.Sprint(last.Shape) {
			return nil, fmt.Errorf("module %s has shape %v, the last layer %s %v: the heads read only the last layer's shape", m.Name, m.Shape, last.Name, last.Shape)
		}
	}
	return mods, nil
}

// LayerReading is one layer of the logit lens for one position (the JSON-only result "layers").
type LayerReading struct {
	Module  string  `json:"module"`
	TopMove string  `json:"top_move"`
	TopP    float32 `json:"top_p"`
}

func prepareLogitLens(n *model.Network, v Values) (*Prep, error) {
	mods, err := logitLensModules(n, v)
	if err != nil {
		return nil, err
	}
	hooks := make([]string, len(mods))
	names := make([]string, len(mods))
	for i, m := range mods {
		hooks[i], names[i] = m.Tensor, m.Name
	}
	last := mods[len(mods)-1].Tensor
	produce := func(b *Batch, out *Outputs) ([]BatchResult, error) {
		p, input, err := n.PatchPlan(last)
		if err != nil {
			return nil, err
		}
		bn, L := b.Len(), len(mods)
		heads := make([]*model.HeadOutputs, L)
		for k, m := range mods {
			act, ok := out.Tensors[m.Tensor]
			if !ok {
				return nil, fmt.Errorf("module %s was not returned by the run", m.Tensor)
			}
			res, err := out.Runner.Run(p, map[string]model.Tensor{n.Input: planesTensor(b.Planes, bn), input: act}, headTensors(n))
			if err != nil {
				return nil, fmt.Errorf("decode layer %s: %w", m.Name, err)
			}
			if heads[k], err = n.DecodeHeads(res, bn); err != nil {
				return nil, err
			}
		}
		finalP := make([]float32, bn*L)
		value := make([]float32, bn*L)
		kl := make([]float32, bn*L)
		layers := make([]any, bn)
		for i, pos := range b.Positions {
			moves, legal := board.LegalIndicesT(pos, b.Transform(i))
			final := model.LegalSoftmax(heads[L-1].PolicyRow(i), legal)
			best := argmax(final)
			readings := make([]LayerReading, L)
			for k := range mods {
				q := model.LegalSoftmax(heads[k].PolicyRow(i), legal)
				value[i*L+k] = heads[k].ForceValue(i)
				r := LayerReading{Module: names[k]}
				if best < 0 {
					finalP[i*L+k], kl[i*L+k] = float32(math.NaN()), float32(math.NaN())
				} else {
					finalP[i*L+k] = q[best]
					kl[i*L+k] = float32(klDivergence(final, q))
					top := argmax(q)
					r.TopMove, r.TopP = moves[top].UCI(), q[top]
				}
				readings[k] = r
			}
			layers[i] = readings
		}
		return []BatchResult{
			{Key: "layer_final_move_p", Shape: []int{L}, Data: finalP},
			{Key: "layer_value", Shape: []int{L}, Data: value},
			{Key: "layer_kl", Shape: []int{L}, Data: kl},
			{Key: "layers", JSON: layers},
		}, nil
	}
	return &Prep{Hooks: hooks, Produce: produce, Keys: []string{"layer_final_move_p", "layer_value", "layer_kl", "layers"}, Meta: map[string]any{"modules": names}}, nil
}

// argmax is the index of the largest value, -1 for none.
func argmax(xs []float32) int {
	best := -1
	for i, x := range xs {
		if best < 0 || x > xs[best] {
			best = i
		}
	}
	return best
}

// klDivergence is KL(p || q) in nats, in float64; terms with p = 0 count nothing.
func klDivergence(p, q []float32) float64 {
	var s float64
	for i := range p {
		if p[i] > 0 {
			s += float64(p[i]) * (math.Log(float64(p[i])) - math.Log(float64(q[i])))
		}
	}
	return s
}
