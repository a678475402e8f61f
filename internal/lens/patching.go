package lens

import (
	"fmt"
	"math"

	"github.com/lczerolens/lczerolens/internal/board"
	"github.com/lczerolens/lczerolens/internal/model"
)

// Patching measures how much of the difference between a clean and a corrupted position each module
// carries: the clean run is repeated with one module's activation taken from the corrupted run (the whole
// module, or one square at a time), through a graph where that module is an input (model.PatchPlan).
var Patching = &Lens{
	Name: "patching",
	Doc:  "Activation patching: effect on --target of replacing each module's clean activation by the corrupted position's (--corrupt-fen/--corrupt-moves, or corrupt_fen/corrupt_moves in JSONL).",
	Options: []Option{
		{Name: "target", Kind: String, Default: "value", Help: "what the effect is measured on: " + PatchTargetHelp, Check: checkTarget},
		{Name: "pattern", Kind: Regexp, Default: "", DefaultDoc: DefaultActivationPattern, Help: "Go regexp over module names to patch"},
		{Name: "per-square", Kind: Bool, Default: "false", Help: "patch one square's activation vector at a time: effects [modules,64], squares a1=0..h8=63 in the absolute frame (modules shaped [C,8,8], [64,C] or [batch*64,C]; the query square of attention modules [heads,64,X])"},
		{Name: "heads", Kind: String, Default: "", DefaultDoc: "all", Help: "attention heads to patch or ablate, in modules shaped [heads,64,X] (encoder0/mha/QK/softmax), e.g. 0,2", Check: checkIndexList},
	},
	Compatible: compatiblePatching,
	Prepare:    preparePatching,
}

// PatchTargetHelp documents what the patching target measures.
const PatchTargetHelp = "value (force_value), wdl:w|d|l (probability), mlh, policy:UCI (log-odds log(p/(1-p)) of that move's probability p among the clean position's legal moves), policy:best (the same for the clean run's best legal move)"

// patchRows caps the rows of one patched run, so per-square patching of a large batch stays in memory.
const patchRows = 256

func compatiblePatching(n *model.Network, v Values) error {
	t, err := ParseTarget(v.GetString("target"))
	if err != nil {
		return err
	}
	return t.Check(n)
}

func preparePatching(n *model.Network, v Values) (*Prep, error) {
	t, err := ParseTarget(v.GetString("target"))
	if err != nil {
		return nil, err
	}
	mods, err := patternModules(n, v)
	if err != nil {
		return nil, err
	}
	perSquare := v.GetBool("per-square")
	heads := selectionOf(v).Heads
	hooks := make([]string, len(mods))
	names := make([]string, len(mods))
	for i, m := range mods {
		if _, _, err := n.PatchPlan(m.Tensor); err != nil {
			return nil, err
		}
		if perSquare && m.Shape != nil && viewOf(m.Shape, 1).squares < 0 {
			return nil, fmt.Errorf("--per-square: module %s has shape %v, want [C,8,8], [64,C], [batch*64,C] or [heads,64,X]", m.Name, m.Shape)
		}
		if heads != nil && m.Shape != nil {
			if err := viewOf(m.Shape, 1).check(m, Selection{Heads: heads}); err != nil {
				return nil, err
			}
		}
		hooks[i], names[i] = m.Tensor, moduleKey(m.Tensor)
	}
	pt := &patcher{n: n, t: t, mods: mods, perSquare: perSquare, heads: heads}
	meta := map[string]any{"modules": names, "target": t.String(), "per_square": perSquare}
	if heads != nil {
		meta["heads"] = heads
	}
	return &Prep{
		Hooks:   hooks,
		Corrupt: true,
		Meta:    meta,
		Produce: pt.produce,
		Keys:    []string{"effects", "target_clean", "target_corrupted"},
	}, nil
}

// The ways an activation of a batch stores squares.
const (
	layoutNone    = iota
	layoutCHW     // [batch,C,8,8]: a square's vector is strided by 64
	layoutSquares // [batch,64,C]: contiguous per square
	layoutFolded  // [batch*64,C]: lc0's attention bodies fold the squares into the batch axis
)

// squareLayout tells how a tensor of the given shape, for a batch of n, stores squares.
func squareLayout(shape []int64, n int) int {
	switch {
	case len(shape) == 4 && shape[2] == 8 && shape[3] == 8:
		return layoutCHW
	case len(shape) == 3 && shape[1] == 64:
		return layoutSquares
	case len(shape) == 2 && shape[0] == 64*int64(n):
		return layoutFolded
	}
	return layoutNone
}

type patcher struct {
	n         *model.Network
	t         Target
	mods      []model.Module
	perSquare bool
	heads     []int // nil: every head (and every module without heads)
}

// produce runs the corrupted batch once, then the patched graphs, and reports target(patched) -
// target(clean) per module (and square), with both unpatched targets.
func (pt *patcher) produce(b *Batch, out *Outputs) ([]BatchResult, error) {
	n, bn := pt.n, b.Len()
	bt, err := pt.targetMoves(b, out.Heads)
	if err != nil {
		return nil, err
	}
	hooks := make([]string, len(pt.mods))
	for i, m := range pt.mods {
		hooks[i] = m.Tensor
	}
	hp, err := n.HookPlan(hooks)
	if err != nil {
		return nil, err
	}
	fetch := appendUnique(headTensors(n), hooks...)
	corrupt, err := out.Runner.Run(hp, map[string]model.Tensor{n.Input: planesTensor(b.CorruptPlanes, bn)}, fetch)
	if err != nil {
		return nil, fmt.Errorf("corrupted run: %w", err)
	}
	corruptHeads, err := n.DecodeHeads(corrupt, bn)
	if err != nil {
		return nil, err
	}
	clean := make([]float32, bn)
	corrupted := make([]float32, bn)
	for i := range bn {
		clean[i] = pt.value(out.Heads, i, bt, i)
		corrupted[i] = pt.value(corruptHeads, i, bt, i)
	}
	per := 1
	if pt.perSquare {
		per = 64
	}
	effects := make([]float32, bn*len(pt.mods)*per)
	for k, m := range pt.mods {
		p, input, err := n.PatchPlan(m.Tensor)
		if err != nil {
			return nil, err
		}
		ca, ok := out.Tensors[m.Tensor]
		if !ok {
			return nil, fmt.Errorf("module %s was not returned by the run", m.Tensor)
		}
		xa := corrupt[m.Tensor]
		if !pt.perSquare && pt.heads != nil {
			xa = mix(ca, xa.Data, viewOf(ca.Shape, bn), Selection{Heads: pt.heads}, b)
		}
		if !pt.perSquare {
			h, err := pt.runPatched(out.Runner, p, input, b.Planes, xa)
			if err != nil {
				return nil, err
			}
			for i := range bn {
				effects[i*len(pt.mods)+k] = pt.value(h, i, bt, i) - clean[i]
			}
			continue
		}
		if err := pt.perSquareEffects(out.Runner, b, p, input, k, ca, xa, bt, clean, effects); err != nil {
			return nil, err
		}
	}
	shape := []int{len(pt.mods)}
	if pt.perSquare {
		shape = append(shape, 64)
	}
	return []BatchResult{
		{Key: "effects", Shape: shape, Data: effects},
		{Key: "target_clean", Shape: []int{1}, Data: clean},
		{Key: "target_corrupted", Shape: []int{1}, Data: corrupted},
	}, nil
}

// perSquareEffects fills module k's [64] effects of every position, patching one square's activation
// vector per row, in runs of at most patchRows rows.
func (pt *patcher) perSquareEffects(r *Runner, b *Batch, p *model.Plan, input string, k int, ca, xa model.Tensor, bt *batchTarget, clean, effects []float32) error {
	bn := b.Len()
	layout := squareLayout(ca.Shape, bn)
	w := viewOf(ca.Shape, bn)
	if w.squares < 0 {
		return fmt.Errorf("--per-square: module %s has shape %v, want [C,8,8], [64,C], [batch*64,C] or [heads,64,X]", pt.mods[k].Name, ca.Shape)
	}
	row := len(ca.Data) / bn
	heads := pt.heads
	if heads == nil {
		for h := range w.heads {
			heads = append(heads, h)
		}
	}
	const plane = board.NumPlanes * 64
	type job struct{ pos, sq int }
	var jobs []job
	flush := func() error {
		if len(jobs) == 0 {
			return nil
		}
		planes := make([]float32, 0, len(jobs)*plane)
		acts := make([]float32, 0, len(jobs)*row)
		for _, j := range jobs {
			planes = append(planes, b.Planes[j.pos*plane:(j.pos+1)*plane]...)
			a := append([]float32(nil), ca.Data[j.pos*row:(j.pos+1)*row]...)
			x := xa.Data[j.pos*row : (j.pos+1)*row]
			for _, h := range heads {
				for c := range w.channels {
					idx := h*w.hStride + j.sq*w.sStride + c*w.cStride
					a[idx] = x[idx]
				}
			}
			acts = append(acts, a...)
		}
		shape := append([]int64{int64(len(jobs))}, ca.Shape[1:]...)
		if layout == layoutFolded {
			shape[0] *= 64
		}
		h, err := pt.runPatchedShape(r, p, input, planes, model.Tensor{Shape: shape, Data: acts}, len(jobs))
		if err != nil {
			return err
		}
		for ri, j := range jobs {
			// Activations are in the planes' frame: undo the canonical transform, then the rank mirror for black.
			abs := int(board.UntransformSquare(board.Square(j.sq), b.Transform(j.pos)))
			if b.Positions[j.pos].SideToMove() == board.Black {
				abs ^= 56
			}
			effects[(j.pos*len(pt.mods)+k)*64+abs] = pt.value(h, ri, bt, j.pos) - clean[j.pos]
		}
		jobs = jobs[:0]
		return nil
	}
	for i := range bn {
		for sq := range 64 {
			jobs = append(jobs, job{i, sq})
			if len(jobs) == patchRows {
				if err := flush(); err != nil {
					return err
				}
			}
		}
	}
	return flush()
}

func (pt *patcher) runPatched(r *Runner, p *model.Plan, input string, planes []float32, act model.Tensor) (*model.HeadOutputs, error) {
	return pt.runPatchedShape(r, p, input, planes, act, len(planes)/(board.NumPlanes*64))
}

func (pt *patcher) runPatchedShape(r *Runner, p *model.Plan, input string, planes []float32, act model.Tensor, rows int) (*model.HeadOutputs, error) {
	res, err := r.Run(p, map[string]model.Tensor{pt.n.Input: planesTensor(planes, rows), input: act}, headTensors(pt.n))
	if err != nil {
		return nil, fmt.Errorf("patched run of %s: %w", input, err)
	}
	return pt.n.DecodeHeads(res, rows)
}

func planesTensor(planes []float32, rows int) model.Tensor {
	return model.Tensor{Shape: []int64{int64(rows), board.NumPlanes, 8, 8}, Data: planes}
}

// batchTarget is what policy targets read per position: the policy index of the target move (for
// policy:best, the clean run's best legal move) and the clean position's legal indices.
type batchTarget struct {
	moves []int
	legal [][]int
}

func (pt *patcher) targetMoves(b *Batch, clean *model.HeadOutputs) (*batchTarget, error) {
	bt := &batchTarget{}
	if pt.t.Kind != TargetPolicyMove && pt.t.Kind != TargetPolicyBest {
		return bt, nil
	}
	for i, pos := range b.Positions {
		idx, err := pt.t.policyIndex(pos, b.Transform(i), clean, i)
		if err != nil {
			return nil, err
		}
		_, legal := board.LegalIndicesT(pos, b.Transform(i))
		bt.moves = append(bt.moves, idx)
		bt.legal = append(bt.legal, legal)
	}
	return bt, nil
}

// value is the target read from row of h for batch position pos.
func (pt *patcher) value(h *model.HeadOutputs, row int, bt *batchTarget, pos int) float32 {
	switch pt.t.Kind {
	case TargetValue:
		return h.ForceValue(row)
	case TargetWDL:
		return h.WDL[3*row+pt.t.WDL]
	case TargetMLH:
		return h.MLH[row]
	}
	return float32(LogOdds(h.PolicyRow(row), bt.legal[pos], bt.moves[pos]))
}

// LogOdds is log(p/(1-p)) for the probability p of policy index idx under the softmax of logits over the
// legal indices: the move's logit minus the log-sum-exp of the other legal moves' logits, +Inf when idx is
// the only legal move.
func LogOdds(logits []float32, legal []int, idx int) float64 {
	m := math.Inf(-1)
	for _, j := range legal {
		if j != idx {
			m = math.Max(m, float64(logits[j]))
		}
	}
	if math.IsInf(m, -1) {
		return math.Inf(1)
	}
	var s float64
	for _, j := range legal {
		if j != idx {
			s += math.Exp(float64(logits[j]) - m)
		}
	}
	return float64(logits[idx]) - (m + math.Log(s))
}
