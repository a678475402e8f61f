package lens

import (
	"math"

	"github.com/lczerolens/lczerolens/internal/board"
	"github.com/lczerolens/lczerolens/internal/model"
)

var targetOption = Option{Name: "target", Kind: String, Default: "value", Help: "what to differentiate: " + TargetHelp, Check: checkTarget}

// Gradient returns the gradient of a target w.r.t. the input planes and selected modules.
var Gradient = &Lens{
	Name: "gradient",
	Doc:  "Gradient of --target w.r.t. the input planes (input_grad) and modules matched by --pattern (<module>_output_grad).",
	Options: []Option{
		targetOption,
		{Name: "pattern", Kind: Regexp, Default: "", DefaultDoc: "none", Help: "Go regexp over module names whose output gradients to return"},
	},
	Compatible: compatibleGradient,
	Prepare:    prepareGradient,
}

// Saliency turns the input gradient into a per-square heatmap.
var Saliency = &Lens{
	Name: "saliency",
	Doc:  "Per-square saliency heatmap ([8,8], a1 at [0][0], absolute board orientation) from the input gradient of --target.",
	Options: []Option{
		targetOption,
		{Name: "attribution", Kind: Enum, Default: "grad-x-input", Choices: []string{"grad", "grad-x-input", "abs-grad"}, Help: "per-plane attribution: the gradient, gradient times input, or absolute gradient"},
		{Name: "planes", Kind: Enum, Default: "current", Choices: []string{"current", "all"}, Help: "planes summed per square: the current position's 12 piece planes, or all 104 history planes"},
		{Name: "normalize", Kind: Enum, Default: "none", Choices: []string{"none", "max-abs", "sum"}, Help: "heatmap normalisation: none, divide by the largest absolute value, or by the sum of absolute values"},
	},
	Compatible: compatibleGradient,
	Prepare:    prepareSaliency,
}

func compatibleGradient(n *model.Network, v Values) error {
	t, err := ParseTarget(v.GetString("target"))
	if err != nil {
		return err
	}
	if err := t.Check(n); err != nil {
		return err
	}
	return model.CheckGradient(n, t.seedTensors(n), []string{n.Input})
}

func prepareGradient(n *model.Network, v Values) (*Prep, error) {
	t, err := ParseTarget(v.GetString("target"))
	if err != nil {
		return nil, err
	}
	wrt := []string{n.Input}
	keys := []string{"input_grad"}
	var mods []model.Module
	if p := v.GetString("pattern"); p != "" {
		if mods, err = n.Select(p); err != nil {
			return nil, err
		}
		for _, m := range mods {
			wrt = append(wrt, m.Tensor)
			keys = append(keys, moduleKey(m.Tensor)+"_output_grad")
		}
	}
	return &Prep{
		Gradient: &GradientNeed{Target: t, Wrt: wrt},
		Keys:     keys,
		Produce: func(b *Batch, out *Outputs) ([]BatchResult, error) {
			g := out.Grads[n.Input]
			rs := []BatchResult{{Key: "input_grad", Shape: []int{board.NumPlanes, 8, 8}, Data: g.Data}}
			for _, m := range mods {
				mg := out.Grads[m.Tensor]
				rs = append(rs, BatchResult{Key: moduleKey(m.Tensor) + "_output_grad", Shape: rowShape(mg.Shape, b.Len()), Data: mg.Data})
			}
			return rs, nil
		},
	}, nil
}

func prepareSaliency(n *model.Network, v Values) (*Prep, error) {
	t, err := ParseTarget(v.GetString("target"))
	if err != nil {
		return nil, err
	}
	attribution, planes, normalize := v.GetString("attribution"), v.GetString("planes"), v.GetString("normalize")
	return &Prep{
		Gradient: &GradientNeed{Target: t, Wrt: []string{n.Input}},
		Keys:     []string{"saliency", "input_grad"},
		Produce: func(b *Batch, out *Outputs) ([]BatchResult, error) {
			g := out.Grads[n.Input].Data
			heat := make([]float32, b.Len()*64)
			for i, pos := range b.Positions {
				off := i * board.NumPlanes * 64
				Heatmap(heat[i*64:(i+1)*64], g[off:off+board.NumPlanes*64], b.Planes[off:off+board.NumPlanes*64], pos.SideToMove() == board.Black, b.Transform(i), attribution, planes, normalize)
			}
			return []BatchResult{
				{Key: "saliency", Shape: []int{8, 8}, Data: heat},
				{Key: "input_grad", Shape: []int{board.NumPlanes, 8, 8}, Data: g},
			}, nil
		},
	}, nil
}

// Heatmap reduces one position's input gradient (in the planes' frame) to an [8,8] map in the absolute
// frame (a1 at index 0): attribution per plane value, summed over the chosen planes per square, the
// canonical transform undone, ranks un-mirrored when black is to move, then normalised.
func Heatmap(dst, grad, planes []float32, blackToMove bool, transform int, attribution, which, normalize string) {
	last := 12 // current position: our and their six piece planes
	if which == "all" {
		last = 104 // all eight history slots (13 planes each)
	}
	var acc [64]float64
	for p := 0; p < last; p++ {
		for sq := 0; sq < 64; sq++ {
			gv := float64(grad[p*64+sq])
			switch attribution {
			case "grad-x-input":
				gv *= float64(planes[p*64+sq])
			case "abs-grad":
				gv = math.Abs(gv)
			}
			acc[sq] += gv
		}
	}
	var scale float64 = 1
	switch normalize {
	case "max-abs":
		m := 0.0
		for _, x := range acc {
			m = math.Max(m, math.Abs(x))
		}
		if m > 0 {
			scale = 1 / m
		}
	case "sum":
		s := 0.0
		for _, x := range acc {
			s += math.Abs(x)
		}
		if s > 0 {
			scale = 1 / s
		}
	}
	for sq := 0; sq < 64; sq++ {
		abs := int(board.UntransformSquare(board.Square(sq), transform))
		if blackToMove {
			abs ^= 56 // the planes mirror ranks for black; undo it
		}
		dst[abs] = float32(acc[sq] * scale)
	}
}
