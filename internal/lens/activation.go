package lens

import (
	"fmt"

	"github.com/lczerolens/lczerolens/internal/model"
)

// DefaultActivationPattern selects the output of every residual block (SE-ResNet bodies) or encoder layer
// (attention bodies), the places interpretability work usually reads.
const DefaultActivationPattern = `^block\d+/conv2/relu$|^block\d+/conv2/mish$|^encoder\d+/ln2$`

// patternModules selects the modules option "pattern" matches: every block output when it is empty.
func patternModules(n *model.Network, v Values) ([]model.Module, error) {
	pattern := v.GetString("pattern")
	if pattern == "" {
		pattern = DefaultActivationPattern
	}
	return n.Select(pattern)
}

// Activation captures module outputs (and optionally inputs) selected by a pattern.
var Activation = &Lens{
	Name: "activation",
	Doc:  "Capture the activations of modules selected by --pattern (default: every residual block or encoder layer output).",
	Options: []Option{
		{Name: "pattern", Kind: Regexp, Default: "", DefaultDoc: DefaultActivationPattern, Help: `Go regexp over module names (see "lczerolens model modules")`},
		{Name: "save-inputs", Kind: Bool, Default: "false", Help: "also return each module's input tensors as <module>_input"},
	},
	Prepare: prepareActivation,
}

func prepareActivation(n *model.Network, v Values) (*Prep, error) {
	mods, err := patternModules(n, v)
	if err != nil {
		return nil, err
	}
	type capture struct{ key, tensor string }
	var caps []capture
	var hooks []string
	for _, m := range mods {
		caps = append(caps, capture{moduleKey(m.Tensor) + "_output", m.Tensor})
		hooks = append(hooks, m.Tensor)
		if v.GetBool("save-inputs") {
			ins := n.ModuleInputs(m)
			for i, in := range ins {
				key := moduleKey(m.Tensor) + "_input"
				if len(ins) > 1 {
					key += fmt.Sprint(i)
				}
				caps = append(caps, capture{key, in})
				hooks = append(hooks, in)
			}
		}
	}
	keys := make([]string, len(caps))
	for i, c := range caps {
		keys[i] = c.key
	}
	return &Prep{
		Hooks: hooks,
		Keys:  keys,
		Produce: func(b *Batch, out *Outputs) ([]BatchResult, error) {
			rs := make([]BatchResult, 0, len(caps))
			for _, c := range caps {
				t, ok := out.Tensors[c.tensor]
				if !ok {
					return nil, fmt.Errorf("module %s was not returned by the run", c.tensor)
				}
				rs = append(rs, BatchResult{Key: c.key, Shape: rowShape(t.Shape, b.Len()), Data: t.Data})
			}
			return rs, nil
		},
	}, nil
}

// rowShape is one position's shape in a batch tensor. The leading axis is the batch, or, in attention
// bodies that fold the squares into it ([batch*64, emb]), batch times a per-position count that stays.
func rowShape(shape []int64, batch int) []int {
	out := make([]int, 0, len(shape))
	if len(shape) > 0 && int(shape[0]) != batch {
		out = append(out, int(shape[0])/batch)
	}
	for _, d := range shape[1:] {
		out = append(out, int(d))
	}
	return out
}
