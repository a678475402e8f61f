package lens

import (
	"fmt"

	"github.com/lczerolens/lczerolens/internal/board"
	"github.com/lczerolens/lczerolens/internal/model"
)

// GradCAM is Grad-CAM (Selvaraju et al.) on the board: for a module with C channels per square, each
// channel's weight is the mean over the 64 squares of the target's gradient, and the map is
// ReLU(sum_c weight_c * activation_c) per square. Activations and gradients come from the shared run.
var GradCAM = &Lens{
	Name: "gradcam",
	Doc:  "Grad-CAM of --target for each module matched by --pattern (shaped [C,8,8], [64,C] or [batch*64,C]): <module>_gradcam ([8,8], absolute frame).",
	Options: []Option{
		targetOption,
		{Name: "pattern", Kind: Regexp, Default: "", DefaultDoc: DefaultActivationPattern, Help: `Go regexp over module names (see "lczerolens model modules")`},
	},
	Compatible: compatibleGradCAM,
	Prepare:    prepareGradCAM,
}

// gradcamModules selects the modules and refuses those without a square axis.
func gradcamModules(n *model.Network, v Values) ([]model.Module, error) {
	mods, err := patternModules(n, v)
	if err != nil {
		return nil, err
	}
	for _, m := range mods {
		if m.Shape != nil && squareLayout(m.Shape, 1) == layoutNone {
			return nil, fmt.Errorf("lens: gradcam: module %s has shape %v, want [C,8,8], [64,C] or [batch*64,C] (choose others with --pattern)", moduleKey(m.Tensor), m.Shape)
		}
	}
	return mods, nil
}

func compatibleGradCAM(n *model.Network, v Values) error {
	t, err := ParseTarget(v.GetString("target"))
	if err != nil {
		return err
	}
	if err := t.Check(n); err != nil {
		return err
	}
	mods, err := gradcamModules(n, v)
	if err != nil {
		return err
	}
	wrt := make([]string, len(mods))
	for i, m := range mods {
		wrt[i] = m.Tensor
	}
	return model.CheckGradient(n, t.seedTensors(n), wrt)
}

func prepareGradCAM(n *model.Network, v Values) (*Prep, error) {
	t, err := ParseTarget(v.GetString("target"))
	if err != nil {
		return nil, err
	}
	mods, err := gradcamModules(n, v)
	if err != nil {
		return nil, err
	}
	tensors := make([]string, len(mods))
	keys := make([]string, len(mods))
	for i, m := range mods {
		tensors[i], keys[i] = m.Tensor, moduleKey(m.Tensor)+"_gradcam"
	}
	return &Prep{
		Hooks:    tensors,
		Gradient: &GradientNeed{Target: t, Wrt: tensors},
		Keys:     keys,
		Produce: func(b *Batch, out *Outputs) ([]BatchResult, error) {
			rs := make([]BatchResult, len(mods))
			for k, tensor := range tensors {
				a, ok := out.Tensors[tensor]
				g, gok := out.Grads[tensor]
				if !ok || !gok {
					return nil, fmt.Errorf("module %s: the run returned no activation or gradient", tensor)
				}
				m, err := GradCAMMaps(b, a, g)
				if err != nil {
					return nil, fmt.Errorf("module %s: %w", moduleKey(tensor), err)
				}
				rs[k] = BatchResult{Key: keys[k], Shape: []int{8, 8}, Data: m}
			}
			return rs, nil
		},
	}, nil
}

// GradCAMMaps computes the batch's Grad-CAM maps ([len,8,8], absolute frame) from a module's activation
// and the target's gradient at it (same shape).
func GradCAMMaps(b *Batch, act, grad model.Tensor) ([]float32, error) {
	bn := b.Len()
	layout := squareLayout(act.Shape, bn)
	if layout == layoutNone || len(act.Data) != len(grad.Data) || len(act.Data)%(bn*64) != 0 {
		return nil, fmt.Errorf("activation shaped %v (gradient %v), want [C,8,8], [64,C] or [batch*64,C] per position", act.Shape, grad.Shape)
	}
	row := len(act.Data) / bn
	channels := row / 64
	at := func(c, sq int) int {
		if layout == layoutCHW {
			return c*64 + sq
		}
		return sq*channels + c
	}
	out := make([]float32, bn*64)
	weights := make([]float64, channels)
	for i := range bn {
		a, g := act.Data[i*row:(i+1)*row], grad.Data[i*row:(i+1)*row]
		for c := range channels {
			var s float64
			for sq := range 64 {
				s += float64(g[at(c, sq)])
			}
			weights[c] = s / 64
		}
		for sq := range 64 {
			var s float64
			for c := range channels {
				s += weights[c] * float64(a[at(c, sq)])
			}
			// Squares are in the planes' frame: undo the canonical transform, then the rank mirror for black.
			abs := int(board.UntransformSquare(board.Square(sq), b.Transform(i)))
			if b.Positions[i].SideToMove() == board.Black {
				abs ^= 56
			}
			out[i*64+abs] = float32(max(s, 0))
		}
	}
	return out, nil
}
