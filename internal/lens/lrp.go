package lens

import (
	"fmt"
	"math"
	"strings"

	"github.com/lczerolens/lczerolens/internal/board"
	"github.com/lczerolens/lczerolens/internal/model"
)

// DefaultLRPEpsilon is the epsilon rule's default stabiliser (Zennit's): small enough that relevance is
// conserved through every layer up to what biases absorb. Larger values (0.01 to 0.25 on the lc0 nets) damp
// the contributions of weakly activated units, giving smoother maps at the cost of more absorbed relevance.
const DefaultLRPEpsilon = 1e-6

// LRP is layer-wise relevance propagation of a target to the input planes.
//
// Relevance starts at the heads as the target's value (the value head, W - L, a WDL entry, a policy logit
// or moves left: seed coefficients times the outputs) and flows backwards through a modified backward graph
// (internal/model/autograd's LRP rules): the epsilon rule (or z+) for Conv/MatMul/Gemm and squeeze-excitation's
// mean, identity for activations (including the heads' tanh and softmax), the residual add split between the
// skip connection and the block in proportion to their contributions, and squeeze-excitation's sigmoid gate
// getting nothing (the gated signal takes all). The input relevance sums to the target minus what biases
// absorb: with biases zeroed the lc0 nets conserve it to 2e-5; with their real biases and epsilon 1e-6 the sum
// differs from the value target by several times the target (e.g. mean |target| 0.06, mean |target - sum|
// 0.38 on maia-1100), under z+ by 1-13% of it (see internal/model's TestRelevanceConservation).
//
// --composite assigns other rules by layer type, as zennit's composites do (epsilon-plus-flat,
// epsilon-gamma-box, ...): z+, gamma or alpha-beta for Conv layers, flat, w-square or box for the first layer
// (the one reading the input planes), epsilon for dense layers and sums. Per layer, biases aside, z+ passes
// on all relevance of units with a positive contribution, gamma and box all of it, flat and w-square all of
// it whatever the input, alpha-beta (alpha - beta) times it where a unit has contributions of both signs
// (autograd.LinearKind states each exactly). End to end on the SE-ResNets with biases zeroed, epsilon,
// gamma, flat and w-square conserve the target to 1e-5; alpha-beta (2,1) is off by up to 1.7e-3 on
// maia-1100 (internal/model's TestCompositeConservation). With flat or w-square the input relevance no
// longer depends on the input's values in the first layer, only on the relevance above it.
var LRP = &Lens{
	Name: "lrp",
	Doc:  "Layer-wise relevance propagation of --target: relevance on the input planes ([112,8,8]) and per square (heatmap, [8,8], absolute frame).",
	Options: []Option{
		targetOption,
		{Name: "rule", Kind: Enum, Default: "epsilon", Choices: []string{"epsilon", "zplus"}, Help: "LRP rule for Conv/MatMul/Gemm: epsilon (biases absorb their share), or zplus (positive contributions only, biases ignored)"},
		{Name: "epsilon", Kind: Float, Default: "1e-6", Help: "LRP stabiliser, > 0: z + eps*sign(z) in the epsilon rule's denominators, z + eps in z+'s", Check: checkEpsilon},
		{Name: "composite", Kind: Enum, Default: "none", Choices: CompositeNames(), Help: "rules per layer type with --rule epsilon, named epsilon-CONV[-FIRST]: dense layers (MatMul, Gemm) epsilon, Conv layers CONV (plus = z+, gamma, alpha-beta; left out: epsilon), the first layer FIRST (flat, wsquare, or box: z^B with bounds [min(x,0), max(x,1)]); conservation per rule in the docs"},
		{Name: "gamma", Kind: Float, Default: "0.25", Help: "gamma of the gamma rule (--composite epsilon-gamma...), >= 0", Check: checkNonNegative},
		{Name: "alpha", Kind: Float, Default: "2", Help: "alpha of the alpha-beta rule (--composite epsilon-alpha-beta...), >= 0; relevance is conserved when alpha - beta = 1", Check: checkNonNegative},
		{Name: "beta", Kind: Float, Default: "1", Help: "beta of the alpha-beta rule, >= 0", Check: checkNonNegative},
		{Name: "planes", Kind: Enum, Default: "current", Choices: []string{"current", "all"}, Help: "planes summed per square: the current position's 12 piece planes, or all 104 history planes"},
		{Name: "normalize", Kind: Enum, Default: "none", Choices: []string{"none", "max-abs", "sum"}, Help: "heatmap normalisation: none, divide by the largest absolute value, or by the sum of absolute values"},
	},
	Compatible: compatibleLRP,
	Prepare:    prepareLRP,
}

// checkEpsilon is the Check of --epsilon.
func checkEpsilon(v any) error {
	if eps, _ := v.(float64); !(eps > 0) || math.IsInf(eps, 1) {
		return fmt.Errorf("%g: want a finite number > 0", eps)
	}
	return nil
}

// checkNonNegative is the Check of --gamma, --alpha and --beta.
func checkNonNegative(v any) error {
	if x, _ := v.(float64); !(x >= 0) || math.IsInf(x, 1) {
		return fmt.Errorf("%g: want a finite number >= 0", x)
	}
	return nil
}

// compositeConv and compositeFirst are the parts of a composite's name: epsilon-CONV[-FIRST].
var (
	compositeConv  = []string{"plus", "gamma", "alpha-beta", "epsilon"}
	compositeFirst = []string{"", "flat", "wsquare", "box"}
)

// CompositeNames lists the --composite choices: none, then epsilon-CONV[-FIRST] for every pair.
func CompositeNames() []string {
	out := []string{"none"}
	for _, c := range compositeConv {
		for _, f := range compositeFirst {
			name := "epsilon-" + c
			switch {
			case c == "epsilon" && f == "":
				continue // that is plain epsilon: none
			case c == "epsilon":
				name = "epsilon-" + f // Conv layers keep epsilon too
			case f != "":
				name += "-" + f
			}
			out = append(out, name)
		}
	}
	return out
}

// ParseComposite turns a --composite name into per-layer-type rules (dense layers keep epsilon).
func ParseComposite(name string, gamma, alpha, beta float64) (model.Composite, error) {
	var c model.Composite
	if name == "none" || name == "" {
		return c, nil
	}
	rest, ok := strings.CutPrefix(name, "epsilon-")
	if !ok {
		return c, fmt.Errorf("lens: --composite %q: want none or epsilon-CONV[-FIRST]", name)
	}
	for _, f := range compositeFirst[1:] {
		r, ok := strings.CutSuffix(rest, "-"+f)
		if rest == f {
			r, ok = "epsilon", true
		}
		if ok {
			rest = r
			c.First.Kind = map[string]model.LinearKind{"flat": model.LinearFlat, "wsquare": model.LinearWSquare, "box": model.LinearBox}[f]
			break
		}
	}
	switch rest {
	case "plus":
		c.Conv.Kind = model.LinearZPlus
	case "gamma":
		c.Conv = model.LinearRule{Kind: model.LinearGamma, Gamma: gamma}
	case "alpha-beta":
		c.Conv = model.LinearRule{Kind: model.LinearAlphaBeta, Alpha: alpha, Beta: beta}
	case "epsilon":
		if c.First.Kind == 0 {
			return c, fmt.Errorf("lens: --composite %q: want none or epsilon-CONV[-FIRST]", name)
		}
	default:
		return c, fmt.Errorf("lens: --composite %q: want none or epsilon-CONV[-FIRST], CONV one of %s", name, strings.Join(compositeConv, ", "))
	}
	return c, nil
}

// lrpNeed reads the lens's options.
func lrpNeed(n *model.Network, v Values) (*RelevanceNeed, error) {
	t, err := ParseTarget(v.GetString("target"))
	if err != nil {
		return nil, err
	}
	eps := v.GetFloat("epsilon")
	if !(eps > 0) || math.IsInf(eps, 1) {
		return nil, fmt.Errorf("lens: --epsilon %g: want a finite number > 0", eps)
	}
	rule := model.Rule{Kind: model.RuleLRPEpsilon, Epsilon: eps}
	if rule.Composite, err = ParseComposite(v.GetString("composite"), v.GetFloat("gamma"), v.GetFloat("alpha"), v.GetFloat("beta")); err != nil {
		return nil, err
	}
	if v.GetString("rule") == "zplus" {
		if rule.Composite != (model.Composite{}) {
			return nil, fmt.Errorf("lens: --composite %s needs --rule epsilon (dense layers and sums keep the epsilon rule)", v.GetString("composite"))
		}
		rule.Kind = model.RuleLRPZPlus
	}
	return &RelevanceNeed{Target: t, Rule: rule, Wrt: []string{n.Input}}, nil
}

func compatibleLRP(n *model.Network, v Values) error {
	need, err := lrpNeed(n, v)
	if err != nil {
		return err
	}
	if err := need.Target.Check(n); err != nil {
		return err
	}
	return model.CheckBackward(n, model.Backward{Seeds: need.Target.seedTensors(n), Wrt: need.Wrt, Rule: need.Rule})
}

func prepareLRP(n *model.Network, v Values) (*Prep, error) {
	need, err := lrpNeed(n, v)
	if err != nil {
		return nil, err
	}
	planes, normalize := v.GetString("planes"), v.GetString("normalize")
	return &Prep{
		Relevance: need,
		Keys:      []string{"relevance", "heatmap"},
		Produce: func(b *Batch, out *Outputs) ([]BatchResult, error) {
			r, ok := out.Relevance[n.Input]
			if !ok {
				return nil, fmt.Errorf("the run returned no relevance for %s", n.Input)
			}
			heat := make([]float32, b.Len()*64)
			per := board.NumPlanes * 64
			for i, pos := range b.Positions {
				off := i * per
				// Relevance is already an attribution per plane value: sum it as it is.
				Heatmap(heat[i*64:(i+1)*64], r.Data[off:off+per], b.Planes[off:off+per], pos.SideToMove() == board.Black, b.Transform(i), "grad", planes, normalize)
			}
			return []BatchResult{
				{Key: "relevance", Shape: []int{board.NumPlanes, 8, 8}, Data: r.Data},
				{Key: "heatmap", Shape: []int{8, 8}, Data: heat},
			}, nil
		},
	}, nil
}
