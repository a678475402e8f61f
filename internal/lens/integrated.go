package lens

import (
	"fmt"
	"math"
	"strings"

	"github.com/lczerolens/lczerolens/internal/board"
	"github.com/lczerolens/lczerolens/internal/model"
)

// IntegratedGradients attributes a target along the straight path from a baseline x0 to the input x:
// ig = (x - x0) * integral_0^1 grad f(x0 + a (x - x0)) da, the integral taken by a quadrature rule whose
// nodes run batched (a fixed rule: one forward and backward pass per chunk of positions; the adaptive rule:
// one per round of refinement). Completeness says sum(ig) = f(x) - f(x0); the result ig_gap is what the
// quadrature leaves of it, and ig_steps the intervals (or nodes) it used.
var IntegratedGradients = &Lens{
	Name: "integrated-gradients",
	Doc:  "Integrated gradients of --target from --baseline to the input: ig ([112,8,8]), its per-square heatmap ([8,8], absolute frame), the completeness gap ig_gap and the steps used, ig_steps.",
	Options: []Option{
		targetOption,
		{Name: "baseline", Kind: String, Default: "zeros", Help: "path start: zeros (all planes 0), empty-board (piece and repetition planes 0, planes 104-111 kept), or fen:FEN (that position, encoded as the input)", Check: checkBaseline},
		{Name: "steps", Kind: Int, Default: "64", Help: "quadrature nodes along the path, 1 to 1024 (trapezoid: intervals, steps+1 nodes; adaptive: the intervals it starts from)", Check: checkSteps},
		{Name: "quadrature", Kind: Enum, Default: "adaptive", Choices: []string{"adaptive", "gauss-legendre", "trapezoid"}, Help: "rule for the path integral: adaptive (trapezoid from --steps intervals, halving those whose trapezoid misses f's change over them most until --max-gap holds), gauss-legendre (steps nodes on (0,1), exact for polynomials of degree 2*steps-1) or trapezoid (nodes k/steps, end weights halved); fixed rules leave gaps of 10-70% on maia-1100's value at 64 nodes"},
		{Name: "max-gap", Kind: Float, Default: "0.01", Help: "adaptive only: a position is done once |ig_gap| <= max-gap * |f(x) - f(x0)|", Check: checkMaxGap},
		{Name: "max-steps", Kind: Int, Default: "4096", Help: "adaptive only: most intervals per position (one gradient row each); ig_steps says how many were used", Check: checkMaxSteps},
		{Name: "planes", Kind: Enum, Default: "current", Choices: []string{"current", "all"}, Help: "planes summed per square: the current position's 12 piece planes, or all 104 history planes"},
		{Name: "normalize", Kind: Enum, Default: "none", Choices: []string{"none", "max-abs", "sum"}, Help: "heatmap normalisation: none, divide by the largest absolute value, or by the sum of absolute values"},
	},
	Compatible: compatibleIG,
	Prepare:    prepareIG,
}

// maxIGSteps bounds --steps: beyond it the quadrature error is far below float32 noise.
const maxIGSteps = 1024

// igRows caps the rows of one path run; a position's nodes always share a run.
const igRows = 512

func checkSteps(v any) error {
	if s, _ := v.(int); s < 1 || s > maxIGSteps {
		return fmt.Errorf("%d: want 1 to %d", s, maxIGSteps)
	}
	return nil
}

// maxAdaptiveSteps bounds --max-steps: 16,384 gradient rows of 28 KB is 470 MB held per position.
const maxAdaptiveSteps = 16384

func checkMaxSteps(v any) error {
	if s, _ := v.(int); s < 1 || s > maxAdaptiveSteps {
		return fmt.Errorf("%d: want 1 to %d", s, maxAdaptiveSteps)
	}
	return nil
}

func checkMaxGap(v any) error {
	if f, _ := v.(float64); !(f > 0) || math.IsInf(f, 0) {
		return fmt.Errorf("%g: want a fraction above 0 (0.01 is 1%%)", f)
	}
	return nil
}

func checkBaseline(v any) error {
	_, err := parseBaseline(v.(string))
	return err
}

// baseline is a parsed --baseline.
type baseline struct {
	kind string // zeros, empty-board, fen
	game *board.Game
}

func parseBaseline(s string) (baseline, error) {
	switch {
	case s == "zeros" || s == "empty-board":
		return baseline{kind: s}, nil
	case strings.HasPrefix(s, "fen:"):
		g, err := board.ParseGame(strings.TrimPrefix(s, "fen:"), "")
		if err != nil {
			return baseline{}, fmt.Errorf("%q: %w", s, err)
		}
		return baseline{kind: "fen", game: g}, nil
	}
	return baseline{}, fmt.Errorf("%q: want zeros, empty-board or fen:FEN", s)
}

// fill writes the baseline of one position (planes x, in the batch's encoding) into dst.
func (bl baseline) fill(dst, x []float32, b *Batch) {
	switch bl.kind {
	case "zeros":
		clear(dst)
	case "empty-board":
		// The 104 history planes hold pieces and repetitions; 104-111 (castling, side to move, rule 50,
		// the constant plane) describe no piece and stay, so the path only adds the pieces.
		clear(dst[:104*64])
		copy(dst[104*64:], x[104*64:])
	case "fen":
		b.Encode(bl.game, dst)
	}
}

// Quadrature returns the nodes and weights of a rule on [0,1] with steps nodes (gauss-legendre) or steps
// intervals (trapezoid).
func Quadrature(rule string, steps int) (nodes, weights []float64) {
	if rule == "trapezoid" {
		for k := 0; k <= steps; k++ {
			w := 1 / float64(steps)
			if k == 0 || k == steps {
				w /= 2
			}
			nodes, weights = append(nodes, float64(k)/float64(steps)), append(weights, w)
		}
		return nodes, weights
	}
	return gaussLegendre(steps)
}

// gaussLegendre returns the n-point Gauss-Legendre rule mapped to [0,1]: the roots of P_n by Newton's
// method from the usual cosine guesses, weights 2/((1-x^2) P_n'(x)^2).
func gaussLegendre(n int) (nodes, weights []float64) {
	nodes, weights = make([]float64, n), make([]float64, n)
	for i := 0; i < (n+1)/2; i++ {
		x := math.Cos(math.Pi * (float64(i) + 0.75) / (float64(n) + 0.5))
		var dp float64
		for iter := 0; iter < 100; iter++ {
			p1, p2 := 1.0, 0.0 // P_k and P_(k-1) by the three-term recurrence
			for k := 1; k <= n; k++ {
				p1, p2 = ((2*float64(k)-1)*x*p1-(float64(k)-1)*p2)/float64(k), p1
			}
			dp = float64(n) * (x*p1 - p2) / (x*x - 1)
			dx := p1 / dp
			x -= dx
			if math.Abs(dx) < 1e-15 {
				break
			}
		}
		w := 2 / ((1 - x*x) * dp * dp)
		// x is the i-th largest root; map both x and -x to [0,1], ascending.
		nodes[n-1-i], weights[n-1-i] = (1+x)/2, w/2
		nodes[i], weights[i] = (1-x)/2, w/2
	}
	return nodes, weights
}

func compatibleIG(n *model.Network, v Values) error {
	if _, err := parseBaseline(v.GetString("baseline")); err != nil {
		return err
	}
	return compatibleGradient(n, v)
}

func prepareIG(n *model.Network, v Values) (*Prep, error) {
	t, err := ParseTarget(v.GetString("target"))
	if err != nil {
		return nil, err
	}
	bl, err := parseBaseline(v.GetString("baseline"))
	if err != nil {
		return nil, err
	}
	if err := checkSteps(v.GetInt("steps")); err != nil {
		return nil, fmt.Errorf("lens: --steps %w", err)
	}
	rule, steps := v.GetString("quadrature"), v.GetInt("steps")
	if rule == "adaptive" && v.GetInt("max-steps") < steps {
		return nil, fmt.Errorf("lens: --max-steps %d is below --steps %d, where the adaptive rule starts", v.GetInt("max-steps"), steps)
	}
	plan, io, err := model.GradientPlan(n, nil, t.seedTensors(n), []string{n.Input})
	if err != nil {
		return nil, err
	}
	ig := &integrator{n: n, t: t, bl: bl, plan: plan, io: io, steps: steps, planes: v.GetString("planes"), normalize: v.GetString("normalize")}
	meta := map[string]any{"baseline": v.GetString("baseline"), "quadrature": rule}
	produce := ig.produce
	var maxBatch int
	if rule == "adaptive" {
		ig.maxSteps, ig.maxGap = v.GetInt("max-steps"), v.GetFloat("max-gap")
		meta["steps"], meta["max_steps"], meta["max_gap"] = steps, ig.maxSteps, ig.maxGap
		produce = ig.produceAdaptive
		// maia-1100 uses ~700 rows a position on average: 8 positions is a few seconds a batch.
		maxBatch = 8
	} else {
		ig.nodes, ig.weights = Quadrature(rule, steps)
		meta["nodes"] = len(ig.nodes)
		maxBatch = max(1, igRows/(len(ig.nodes)+2)) // one path run a batch
	}
	return &Prep{
		Keys:     []string{"ig", "heatmap", "ig_gap", "target_delta", "ig_steps"},
		Produce:  produce,
		Check:    t.Defined,
		Meta:     meta,
		MaxBatch: maxBatch,
	}, nil
}

// integrator runs the path of integrated gradients.
type integrator struct {
	n                 *model.Network
	t                 Target
	bl                baseline
	plan              *model.Plan
	io                *model.GradientIO
	nodes, weights    []float64
	planes, normalize string
	// steps is --steps: the nodes (gauss-legendre) or intervals (trapezoid; adaptive: to start from).
	steps int
	// The adaptive rule: at most maxSteps intervals, done at |gap| <= maxGap |f(x) - f(x0)|.
	maxSteps int
	maxGap   float64
}

func (ig *integrator) produce(b *Batch, out *Outputs) ([]BatchResult, error) {
	const per = board.NumPlanes * 64
	bn := b.Len()
	o := newIGOut(bn)
	res, heat, gap, delta, used := o.ig, o.heat, o.gap, o.delta, o.steps
	// Rows of one position: its nodes, then the baseline (a=0) and the input (a=1) for f's values.
	rowsPer := len(ig.nodes) + 2
	chunk := max(1, igRows/rowsPer)
	base := make([]float32, per)
	for lo := 0; lo < bn; lo += chunk {
		hi := min(bn, lo+chunk)
		rows := (hi - lo) * rowsPer
		in := make([]float32, rows*per)
		bases := make([][]float32, hi-lo)
		for i := lo; i < hi; i++ {
			x := b.Planes[i*per : (i+1)*per]
			ig.bl.fill(base, x, b)
			bases[i-lo] = append([]float32(nil), base...)
			r0 := (i - lo) * rowsPer
			for k, a := range append(append([]float64(nil), ig.nodes...), 0, 1) {
				row := in[(r0+k)*per : (r0+k+1)*per]
				for j := range row {
					row[j] = float32(float64(base[j]) + a*(float64(x[j])-float64(base[j])))
				}
			}
		}
		rowPos := make([]int, 0, rows)
		for i := lo; i < hi; i++ {
			for range rowsPer {
				rowPos = append(rowPos, i)
			}
		}
		seeds, idx, err := ig.seeds(b, out.Heads, rowPos)
		if err != nil {
			return nil, err
		}
		inputs := map[string]model.Tensor{ig.n.Input: {Shape: []int64{int64(rows), board.NumPlanes, 8, 8}, Data: in}}
		for tensor, s := range seeds {
			inputs[ig.io.SeedInputs[tensor]] = s
		}
		gradOut := ig.io.Grads[ig.n.Input]
		raw, err := out.Runner.Run(ig.plan, inputs, append(headTensors(ig.n), gradOut))
		if err != nil {
			return nil, err
		}
		heads, err := ig.n.DecodeHeads(raw, rows)
		if err != nil {
			return nil, err
		}
		g := raw[gradOut].Data
		for i := lo; i < hi; i++ {
			x, x0 := b.Planes[i*per:(i+1)*per], bases[i-lo]
			r0 := (i - lo) * rowsPer
			dst := res[i*per : (i+1)*per]
			var sum float64
			for j := range dst {
				var acc float64
				for k, w := range ig.weights {
					acc += w * float64(g[(r0+k)*per+j])
				}
				v := (float64(x[j]) - float64(x0[j])) * acc
				dst[j] = float32(v)
				sum += v
			}
			fb, err := ig.value(heads, b, i, idx, r0+len(ig.nodes))
			if err != nil {
				return nil, err
			}
			fx, err := ig.value(heads, b, i, idx, r0+len(ig.nodes)+1)
			if err != nil {
				return nil, err
			}
			delta[i] = float32(fx - fb)
			gap[i] = float32(sum - (fx - fb))
			used[i] = float32(ig.steps)
			Heatmap(heat[i*64:(i+1)*64], dst, x, b.Positions[i].SideToMove() == board.Black, b.Transform(i), "grad", ig.planes, ig.normalize)
		}
	}
	return o.results(), nil
}

// igOut is a batch's results, filled in position by position.
type igOut struct {
	ig, heat, gap, delta, steps []float32
}

func newIGOut(bn int) *igOut {
	return &igOut{ig: make([]float32, bn*board.NumPlanes*64), heat: make([]float32, bn*64),
		gap: make([]float32, bn), delta: make([]float32, bn), steps: make([]float32, bn)}
}

func (o *igOut) results() []BatchResult {
	return []BatchResult{
		{Key: "ig", Shape: []int{board.NumPlanes, 8, 8}, Data: o.ig},
		{Key: "heatmap", Shape: []int{8, 8}, Data: o.heat},
		{Key: "ig_gap", Shape: []int{}, Data: o.gap},
		{Key: "target_delta", Shape: []int{}, Data: o.delta},
		{Key: "ig_steps", Shape: []int{}, Data: o.steps},
	}
}

// seeds builds the cotangents of path rows, row r belonging to position rowPos[r]. A policy target is read
// at the input's move (policy:best: the input's best legal move) all along the path, so idx holds each
// position's policy index (nil for other targets; -1 for positions without rows).
func (ig *integrator) seeds(b *Batch, fwd *model.HeadOutputs, rowPos []int) (map[string]model.Tensor, []int, error) {
	rows := len(rowPos)
	t := ig.t
	if t.Kind != TargetPolicyMove && t.Kind != TargetPolicyBest {
		s, err := t.seeds(ig.n, &Batch{Positions: make([]*board.Position, rows)}, nil)
		return s, nil, err
	}
	idx := make([]int, b.Len())
	for i := range idx {
		idx[i] = -1
	}
	seed := model.Tensor{Shape: []int64{int64(rows), board.PolicySize}, Data: make([]float32, rows*board.PolicySize)}
	for r, i := range rowPos {
		if idx[i] < 0 {
			j, err := t.policyIndex(b.Positions[i], b.Transform(i), fwd, i)
			if err != nil {
				return nil, nil, err
			}
			idx[i] = j
		}
		seed.Data[r*board.PolicySize+idx[i]] = 1
	}
	return map[string]model.Tensor{ig.n.Heads.Policy: seed}, idx, nil
}

// value is the target at a path row of position i.
func (ig *integrator) value(h *model.HeadOutputs, b *Batch, i int, idx []int, row int) (float64, error) {
	if idx != nil {
		return float64(h.Policy[row*board.PolicySize+idx[i]]), nil
	}
	v, err := ig.t.Value(h, b.Positions[i], b.Transform(i), row)
	return float64(v), err
}
