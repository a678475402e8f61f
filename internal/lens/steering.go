package lens

import (
	"errors"
	"fmt"
	"math"
	"sort"

	"github.com/lczerolens/lczerolens/internal/board"
	"github.com/lczerolens/lczerolens/internal/model"
)

// directionKey holds, in the steering lens's Values, the direction vector the caller read from the file its
// "direction" option names (WithDirection): a lens reads no files.
const directionKey = "steering_direction"

// directionShapeKey holds the direction file's array shape, when it has one (a .npy), so that a direction
// of another module with as many values is refused rather than added.
const directionShapeKey = "steering_direction_shape"

// WithDirection gives the steering lens's values v the direction read from v's "direction" file: one
// position's activation of the module or one vector of its channels. shape is the file's array shape (nil
// when the file has none, as a probe's weights): more than one axis must be the module's own shape.
func WithDirection(v Values, dir []float32, shape []int) {
	v[directionKey] = dir
	if shape != nil {
		v[directionShapeKey] = shape
	}
}

// steeringTop is how many moves the before/after lists hold.
const steeringTop = 5

// Steering adds a direction to one module's activation and reports how the heads move: activation addition
// through the module's patch plan (model.PatchPlan), the clean activation plus alpha times the direction.
var Steering = &Lens{
	Name: "steering",
	Doc:  "Steering: add --alpha times a direction (--direction dir.npy, a probe file, or --sae SAEDIR --feature i, alpha then in units of the feature's activation) to --module's activation (all squares or --squares); policy and value before and after.",
	Options: []Option{
		{Name: "module", Kind: String, Default: "", Help: `module to steer (see "lczerolens model modules"); with --sae, the SAE's by default`},
		{Name: "direction", Kind: String, Default: "", Help: `direction: a .npy of the module's per-position shape or of its channels (from "lczerolens direction"), or a probe .json (its weights for --module)`},
		{Name: "sae", Kind: String, Default: "", Help: "SAE directory written by \"lczerolens sae train\" (steering: with --feature, instead of --direction)"},
		{Name: "feature", Kind: Int, Default: "-1", Help: "SAE feature (0 to F-1; -1: none) whose decoder row W_dec[i] divided by the SAE's input scale is the direction"},
		{Name: "alpha", Kind: Float, Default: "1", Help: "multiple of the direction added; with --sae, in units of the feature's activation"},
		{Name: "squares", Kind: String, Default: "", DefaultDoc: "all", Help: "absolute squares to ablate or steer, e.g. e4,d5", Check: checkSquareList},
	},
	Compatible: func(n *model.Network, v Values) error {
		_, _, err := steeringSetup(n, v)
		return err
	},
	Prepare: prepareSteering,
}

func steeringSetup(n *model.Network, v Values) (model.Module, []float32, error) {
	name, what := v.GetString("module"), v.GetString("direction")
	var dir []float32
	switch {
	case v.GetString("sae") != "" && what != "":
		return model.Module{}, nil, errors.New("steering: both --direction and --sae: pass one direction")
	case v.GetString("sae") != "":
		f, _, err := saeFor(n, v)
		if err != nil {
			return model.Module{}, nil, err
		}
		if name != "" && name != f.Module {
			return model.Module{}, nil, fmt.Errorf("sae: %s was trained on module %s, not %s: pass --module %s or leave it out", v.GetString("sae"), f.Module, name, f.Module)
		}
		name = f.Module
		j := v.GetInt("feature")
		switch {
		case j < 0:
			return model.Module{}, nil, fmt.Errorf("steering: no feature: pass --feature i with --sae (0 to %d)", f.SAE.F-1)
		case j >= f.SAE.F:
			return model.Module{}, nil, fmt.Errorf("steering: --feature %d: %s has %d features (0 to %d)", j, v.GetString("sae"), f.SAE.F, f.SAE.F-1)
		}
		// The decoder row over the input scale: alpha is then in units of the feature's activation z, as
		// x_hat = (z W_dec + b_dec)/scale adds alpha*W_dec[i]/scale when z_i grows by alpha.
		if dir, err = f.SAE.Direction(j); err != nil {
			return model.Module{}, nil, fmt.Errorf("steering: %w", err)
		}
		what = fmt.Sprintf("feature %d of %s", j, v.GetString("sae"))
	case v.GetInt("feature") >= 0:
		return model.Module{}, nil, errors.New("steering: --feature needs --sae SAEDIR (train one with `lczerolens sae train`)")
	}
	if name == "" {
		return model.Module{}, nil, errors.New("no module: pass --module NAME (see `lczerolens model modules`)")
	}
	m, ok := n.Module(name)
	if !ok {
		return m, nil, fmt.Errorf("module %s not in the network; list them with `lczerolens model modules --model %s`", name, n.Path)
	}
	if _, _, err := n.PatchPlan(m.Tensor); err != nil {
		return m, nil, err
	}
	if what == "" {
		return m, nil, errors.New("no direction: pass --direction dir.npy (make one with `lczerolens direction A B --module M -o dir.npy`), a probe file, or --sae SAEDIR --feature i")
	}
	if dir == nil {
		dir, _ = v[directionKey].([]float32)
	}
	if dir == nil {
		return m, nil, fmt.Errorf("direction %s was not loaded: the caller must read it and pass it with WithDirection", what)
	}
	if m.Shape != nil {
		w := viewOf(m.Shape, 1)
		row := 1
		for _, d := range m.Shape {
			row *= int(d)
		}
		if len(dir) != row && len(dir) != w.channels {
			return m, nil, fmt.Errorf("direction %s has %d values; module %s (shape %v) wants %d (one activation) or %d (its channels)", what, len(dir), m.Name, m.Shape, row, w.channels)
		}
		if shape, _ := v[directionShapeKey].([]int); len(shape) > 1 && fmt.Sprint(shape) != fmt.Sprint(rowShape(m.Shape, 1)) {
			return m, nil, fmt.Errorf("direction %s has shape %v; module %s wants %v (one activation) or [%d] (its channels)", what, shape, m.Name, rowShape(m.Shape, 1), w.channels)
		}
		if err := w.check(m, Selection{Squares: selectionOf(v).Squares}); err != nil {
			return m, nil, err
		}
	}
	return m, dir, nil
}

// MoveP is one move and its probability among the legal moves.
type MoveP struct {
	UCI string  `json:"uci"`
	P   float32 `json:"p"`
}

func prepareSteering(n *model.Network, v Values) (*Prep, error) {
	m, dir, err := steeringSetup(n, v)
	if err != nil {
		return nil, err
	}
	alpha := float32(v.GetFloat("alpha"))
	sel := Selection{Squares: selectionOf(v).Squares}
	produce := func(b *Batch, out *Outputs) ([]BatchResult, error) {
		bn := b.Len()
		ca, ok := out.Tensors[m.Tensor]
		if !ok {
			return nil, fmt.Errorf("module %s was not returned by the run", m.Tensor)
		}
		steered := steer(ca, dir, alpha, viewOf(ca.Shape, bn), sel, b)
		p, input, err := n.PatchPlan(m.Tensor)
		if err != nil {
			return nil, err
		}
		res, err := out.Runner.Run(p, map[string]model.Tensor{n.Input: planesTensor(b.Planes, bn), input: steered}, headTensors(n))
		if err != nil {
			return nil, fmt.Errorf("steered run: %w", err)
		}
		after, err := n.DecodeHeads(res, bn)
		if err != nil {
			return nil, err
		}
		before := out.Heads
		vb, va, dv, kl := make([]float32, bn), make([]float32, bn), make([]float32, bn), make([]float32, bn)
		movesBefore, movesAfter := make([]any, bn), make([]any, bn)
		for i, pos := range b.Positions {
			vb[i], va[i] = before.ForceValue(i), after.ForceValue(i)
			dv[i] = va[i] - vb[i]
			moves, legal := board.LegalIndicesT(pos, b.Transform(i))
			pb := model.LegalSoftmax(before.PolicyRow(i), legal)
			pa := model.LegalSoftmax(after.PolicyRow(i), legal)
			kl[i] = float32(klDivergence(pb, pa))
			if len(legal) == 0 {
				kl[i] = float32(math.NaN())
			}
			movesBefore[i], movesAfter[i] = topMoves(moves, pb, steeringTop), topMoves(moves, pa, steeringTop)
		}
		return []BatchResult{
			{Key: "value_before", Shape: []int{1}, Data: vb},
			{Key: "value_after", Shape: []int{1}, Data: va},
			{Key: "delta_value", Shape: []int{1}, Data: dv},
			{Key: "kl", Shape: []int{1}, Data: kl},
			{Key: "moves_before", JSON: movesBefore},
			{Key: "moves_after", JSON: movesAfter},
		}, nil
	}
	return &Prep{
		Hooks:   []string{m.Tensor},
		Produce: produce,
		Keys:    []string{"value_before", "value_after", "delta_value", "kl", "moves_before", "moves_after"},
		Meta:    steeringMeta(m, v),
	}, nil
}

// steer returns clean plus alpha times dir on the selected squares of every position: dir is one
// position's row, or one value per channel added at every selected square (and head).
func steer(clean model.Tensor, dir []float32, alpha float32, w view, sel Selection, b *Batch) model.Tensor {
	bn := b.Len()
	row := len(clean.Data) / bn
	out := model.Tensor{Shape: clean.Shape, Data: append([]float32(nil), clean.Data...)}
	for i := range bn {
		dst := out.Data[i*row : (i+1)*row]
		if len(dir) == row {
			if sel.Squares == nil {
				for k, d := range dir {
					dst[k] += alpha * d
				}
				continue
			}
			for _, k := range w.indices(sel, b, i) {
				dst[k] += alpha * dir[k]
			}
			continue
		}
		// A channel vector: w.indices lists offsets channel-fastest, so the channel is the count modulo.
		for j, k := range w.indices(sel, b, i) {
			dst[k] += alpha * dir[j%w.channels]
		}
	}
	return out
}

// topMoves lists the k most probable moves.
func topMoves(moves []board.Move, p []float32, k int) []MoveP {
	order := make([]int, len(p))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return p[order[a]] > p[order[b]] })
	out := make([]MoveP, 0, k)
	for _, i := range order[:min(k, len(order))] {
		out = append(out, MoveP{UCI: moves[i].UCI(), P: p[i]})
	}
	return out
}

// steeringMeta records where the direction came from: a file, or an SAE feature.
func steeringMeta(m model.Module, v Values) map[string]any {
	meta := map[string]any{"module": m.Name, "alpha": v.GetFloat("alpha"), "direction": v.GetString("direction")}
	if v.GetString("sae") != "" {
		meta["direction"] = fmt.Sprintf("sae %s feature %d", v.GetString("sae"), v.GetInt("feature"))
		meta["sae"], meta["feature"] = v.GetString("sae"), v.GetInt("feature")
	}
	return meta
}
