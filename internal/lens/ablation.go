package lens

import (
	"errors"
	"fmt"

	"github.com/lczerolens/lczerolens/internal/board"
	"github.com/lczerolens/lczerolens/internal/model"
)

// ablationMeansKey holds, in the ablation lens's Values, the mean activations over the --mean-from reference
// set, computed by the caller (WithAblationMeans): a lens reads no files, and the mean needs a stream of
// positions through the network, which the command layer runs.
const ablationMeansKey = "ablation_means"

// WithAblationMeans gives the ablation lens's values v the mean activation row (one position's shape) of
// each module AblationModules returns, keyed by module tensor name.
func WithAblationMeans(v Values, means map[string][]float32) { v[ablationMeansKey] = means }

// Ablation is patching with a fixed replacement instead of a corrupted position: zero, the mean over a
// reference set, or one resampled position's activation, for the whole module or a selection of it.
var Ablation = &Lens{
	Name: "ablation",
	Doc:  "Ablation: effect on --target of replacing each module's activation (or its --channels, --squares, --heads) by zero, the mean over --mean-from FILE, or --resample-fen's.",
	Options: []Option{
		{Name: "target", Kind: String, Default: "value", Help: "what the effect is measured on: " + PatchTargetHelp, Check: checkTarget},
		{Name: "pattern", Kind: Regexp, Default: "", DefaultDoc: DefaultActivationPattern, Help: "Go regexp over module names to ablate"},
		{Name: "channels", Kind: String, Default: "", DefaultDoc: "all", Help: "channels to ablate, e.g. 0,5-7", Check: checkIndexList},
		{Name: "squares", Kind: String, Default: "", DefaultDoc: "all", Help: "absolute squares to ablate or steer, e.g. e4,d5", Check: checkSquareList},
		{Name: "heads", Kind: String, Default: "", DefaultDoc: "all", Help: "attention heads to patch or ablate, in modules shaped [heads,64,X] (encoder0/mha/QK/softmax), e.g. 0,2", Check: checkIndexList},
		{Name: "mean-from", Kind: String, Default: "", Help: "replace by the mean activation over the positions of this file (PGN, FEN/EPD or JSONL, read once, streaming) instead of zero"},
		{Name: "resample-fen", Kind: String, Default: "", Help: "replace by this position's activation instead of zero", Check: checkFEN},
	},
	Compatible: func(n *model.Network, v Values) error {
		_, err := ablationSetup(n, v)
		return err
	},
	Prepare: prepareAblation,
}

func checkFEN(v any) error {
	if s := v.(string); s != "" {
		if _, err := board.ParseGame(s, ""); err != nil {
			return err
		}
	}
	return nil
}

// AblationModules are the modules the ablation lens with values v ablates, in graph order.
func AblationModules(n *model.Network, v Values) ([]model.Module, error) {
	return patternModules(n, v)
}

type ablationPlan struct {
	t     Target
	mods  []model.Module
	sel   Selection
	means map[string][]float32
}

func ablationSetup(n *model.Network, v Values) (*ablationPlan, error) {
	t, err := ParseTarget(v.GetString("target"))
	if err != nil {
		return nil, err
	}
	if err := t.Check(n); err != nil {
		return nil, err
	}
	mean, fen := v.GetString("mean-from"), v.GetString("resample-fen")
	if mean != "" && fen != "" {
		return nil, errors.New("--mean-from and --resample-fen both given: pick one replacement")
	}
	mods, err := AblationModules(n, v)
	if err != nil {
		return nil, err
	}
	ap := &ablationPlan{t: t, mods: mods, sel: selectionOf(v)}
	if mean != "" {
		ap.means, _ = v[ablationMeansKey].(map[string][]float32)
		if ap.means == nil {
			return nil, fmt.Errorf("--mean-from %s: the mean activations were not computed: the caller must pass them with WithAblationMeans", mean)
		}
	}
	for _, m := range mods {
		if _, _, err := n.PatchPlan(m.Tensor); err != nil {
			return nil, err
		}
		if m.Shape != nil {
			if err := viewOf(m.Shape, 1).check(m, ap.sel); err != nil {
				return nil, err
			}
		}
		if ap.means != nil && ap.means[m.Tensor] == nil {
			return nil, fmt.Errorf("--mean-from %s: no mean for module %s", mean, m.Name)
		}
	}
	return ap, nil
}

func prepareAblation(n *model.Network, v Values) (*Prep, error) {
	ap, err := ablationSetup(n, v)
	if err != nil {
		return nil, err
	}
	hooks := make([]string, len(ap.mods))
	names := make([]string, len(ap.mods))
	for i, m := range ap.mods {
		hooks[i], names[i] = m.Tensor, moduleKey(m.Tensor)
	}
	mode := "zero"
	switch {
	case ap.means != nil:
		mode = "mean"
	case v.GetString("resample-fen") != "":
		mode = "resample"
	}
	fen := v.GetString("resample-fen")
	pt := &patcher{n: n, t: ap.t, mods: ap.mods}
	produce := func(b *Batch, out *Outputs) ([]BatchResult, error) {
		bn := b.Len()
		bt, err := pt.targetMoves(b, out.Heads)
		if err != nil {
			return nil, err
		}
		var resampled map[string]model.Tensor
		if mode == "resample" {
			if resampled, err = runResample(n, out.Runner, b, fen, hooks); err != nil {
				return nil, err
			}
		}
		clean := make([]float32, bn)
		for i := range bn {
			clean[i] = pt.value(out.Heads, i, bt, i)
		}
		effects := make([]float32, bn*len(ap.mods))
		for k, m := range ap.mods {
			ca, ok := out.Tensors[m.Tensor]
			if !ok {
				return nil, fmt.Errorf("module %s was not returned by the run", m.Tensor)
			}
			row := len(ca.Data) / bn
			var ref []float32
			switch mode {
			case "zero":
				ref = make([]float32, row)
			case "mean":
				ref = ap.means[m.Tensor]
			case "resample":
				ref = resampled[m.Tensor].Data
			}
			if len(ref) != row {
				return nil, fmt.Errorf("module %s: replacement of %d values for rows of %d", m.Name, len(ref), row)
			}
			p, input, err := n.PatchPlan(m.Tensor)
			if err != nil {
				return nil, err
			}
			h, err := pt.runPatched(out.Runner, p, input, b.Planes, mix(ca, ref, viewOf(ca.Shape, bn), ap.sel, b))
			if err != nil {
				return nil, err
			}
			for i := range bn {
				effects[i*len(ap.mods)+k] = pt.value(h, i, bt, i) - clean[i]
			}
		}
		return []BatchResult{
			{Key: "effects", Shape: []int{len(ap.mods)}, Data: effects},
			{Key: "target_clean", Shape: []int{1}, Data: clean},
		}, nil
	}
	return &Prep{
		Hooks:   hooks,
		Produce: produce,
		Keys:    []string{"effects", "target_clean"},
		Meta:    map[string]any{"modules": names, "target": ap.t.String(), "replacement": mode},
	}, nil
}

// runResample encodes fen as the batch's positions are encoded and returns its hooked activations (one row).
func runResample(n *model.Network, r *Runner, b *Batch, fen string, hooks []string) (map[string]model.Tensor, error) {
	g, err := board.ParseGame(fen, "")
	if err != nil {
		return nil, fmt.Errorf("--resample-fen: %w", err)
	}
	planes := make([]float32, board.NumPlanes*64)
	b.Encode(g, planes)
	hp, err := n.HookPlan(hooks)
	if err != nil {
		return nil, err
	}
	res, err := r.Run(hp, map[string]model.Tensor{n.Input: planesTensor(planes, 1)}, hooks)
	if err != nil {
		return nil, fmt.Errorf("resampled run: %w", err)
	}
	return res, nil
}
