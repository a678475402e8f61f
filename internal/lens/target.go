package lens

import (
	"errors"
	"fmt"
	"strings"

	"github.com/lczerolens/lczerolens/internal/board"
	"github.com/lczerolens/lczerolens/internal/model"
)

// TargetKind says which network output a gradient is taken of.
type TargetKind int

// The target kinds.
const (
	TargetValue      TargetKind = iota // force_value: the value head, or W - L
	TargetWDL                          // one of W, D, L
	TargetPolicyMove                   // the logit of one move, the same UCI move for every position
	TargetPolicyBest                   // the logit of the network's best legal move, per position
	TargetMLH                          // moves left
)

// Target is a scalar per position that gradients are taken of.
type Target struct {
	Kind TargetKind
	WDL  int    // 0 = W, 1 = D, 2 = L
	Move string // UCI, for TargetPolicyMove
}

// TargetHelp documents the --target syntax.
const TargetHelp = "value (force_value: value head or W-L), wdl:w|d|l, policy:UCI (logit of that move), policy:best, mlh"

// ParseTarget parses the --target syntax.
func ParseTarget(s string) (Target, error) {
	t, err := parseTarget(s)
	if err != nil {
		return Target{}, fmt.Errorf("lens: target %w", err)
	}
	return t, nil
}

// parseTarget is ParseTarget with errors that start with the value, for option messages.
func parseTarget(s string) (Target, error) {
	switch {
	case s == "value":
		return Target{Kind: TargetValue}, nil
	case s == "mlh":
		return Target{Kind: TargetMLH}, nil
	case s == "policy:best":
		return Target{Kind: TargetPolicyBest}, nil
	case strings.HasPrefix(s, "wdl:"):
		i := strings.Index("wdl", strings.TrimPrefix(s, "wdl:"))
		if len(s) != 5 || i < 0 {
			return Target{}, fmt.Errorf("%q: want wdl:w, wdl:d or wdl:l", s)
		}
		return Target{Kind: TargetWDL, WDL: i}, nil
	case strings.HasPrefix(s, "policy:"):
		mv := strings.TrimPrefix(s, "policy:")
		if len(mv) < 4 || len(mv) > 5 {
			return Target{}, fmt.Errorf("%q: want policy:UCI (e.g. policy:e2e4) or policy:best", s)
		}
		return Target{Kind: TargetPolicyMove, Move: mv}, nil
	}
	return Target{}, fmt.Errorf("%q is not a target (want %s)", s, TargetHelp)
}

// checkTarget is the Check of --target options.
func checkTarget(v any) error {
	s, _ := v.(string)
	_, err := parseTarget(s)
	return err
}

// String is the --target form.
func (t Target) String() string {
	switch t.Kind {
	case TargetWDL:
		return "wdl:" + string("wdl"[t.WDL])
	case TargetPolicyMove:
		return "policy:" + t.Move
	case TargetPolicyBest:
		return "policy:best"
	case TargetMLH:
		return "mlh"
	}
	return "value"
}

// Check reports whether the network has the head the target needs.
func (t Target) Check(n *model.Network) error {
	switch t.Kind {
	case TargetValue:
		if n.Heads.Value == "" && n.Heads.WDL == "" {
			return errors.New("lens: target value: the network has neither a value nor a wdl head")
		}
	case TargetWDL:
		if n.Heads.WDL == "" {
			return fmt.Errorf("lens: target %s: the network has no wdl head (use --target value)", t)
		}
	case TargetPolicyMove, TargetPolicyBest:
		if n.Heads.Policy == "" {
			return fmt.Errorf("lens: target %s: the network has no policy head", t)
		}
	case TargetMLH:
		if n.Heads.MLH == "" {
			return errors.New("lens: target mlh: the network has no moves-left head")
		}
	}
	return nil
}

// Defined reports why the target has no value at pos (its move is illegal there, or there is no legal
// move at all), or nil. Such a position cannot be analysed with this target, though others can.
func (t Target) Defined(pos *board.Position) error {
	switch t.Kind {
	case TargetPolicyMove:
		if _, err := pos.ParseMove(t.Move); err != nil {
			return fmt.Errorf("lens: target %s: %w", t, err)
		}
	case TargetPolicyBest:
		if len(pos.LegalMoves()) == 0 {
			return fmt.Errorf("lens: target policy:best: no legal move in %s", pos.FEN())
		}
	}
	return nil
}

// seedTensors are the head tensors the backward pass starts from.
func (t Target) seedTensors(n *model.Network) []string {
	switch t.Kind {
	case TargetValue:
		if n.Heads.Value != "" {
			return []string{n.Heads.Value}
		}
		return []string{n.Heads.WDL}
	case TargetWDL:
		return []string{n.Heads.WDL}
	case TargetMLH:
		return []string{n.Heads.MLH}
	}
	return []string{n.Heads.Policy}
}

// seeds builds the cotangent of each seed tensor so that the backward pass yields d target / d x per
// position; fwd holds forward outputs when the target depends on them (policy:best).
func (t Target) seeds(n *model.Network, b *Batch, fwd *model.HeadOutputs) (map[string]model.Tensor, error) {
	bn := int64(b.Len())
	switch t.Kind {
	case TargetValue:
		if n.Heads.Value != "" {
			return map[string]model.Tensor{n.Heads.Value: constRows(bn, []float32{1})}, nil
		}
		return map[string]model.Tensor{n.Heads.WDL: constRows(bn, []float32{1, 0, -1})}, nil
	case TargetWDL:
		row := []float32{0, 0, 0}
		row[t.WDL] = 1
		return map[string]model.Tensor{n.Heads.WDL: constRows(bn, row)}, nil
	case TargetMLH:
		return map[string]model.Tensor{n.Heads.MLH: constRows(bn, []float32{1})}, nil
	}
	seed := model.Tensor{Shape: []int64{bn, board.PolicySize}, Data: make([]float32, int(bn)*board.PolicySize)}
	for i, pos := range b.Positions {
		idx, err := t.policyIndex(pos, b.Transform(i), fwd, i)
		if err != nil {
			return nil, err
		}
		seed.Data[i*board.PolicySize+idx] = 1
	}
	return map[string]model.Tensor{n.Heads.Policy: seed}, nil
}

// policyIndex is the policy entry the target reads for one position under its canonical transform.
func (t Target) policyIndex(pos *board.Position, transform int, fwd *model.HeadOutputs, i int) (int, error) {
	if t.Kind == TargetPolicyMove {
		m, err := pos.ParseMove(t.Move)
		if err != nil {
			return 0, fmt.Errorf("lens: target %s: %w", t, err)
		}
		return board.PolicyIndexT(pos, m, transform)
	}
	_, idx := board.LegalIndicesT(pos, transform)
	if len(idx) == 0 {
		return 0, fmt.Errorf("lens: target policy:best: no legal move in %s", pos.FEN())
	}
	logits := fwd.Policy[i*board.PolicySize : (i+1)*board.PolicySize]
	best := idx[0]
	for _, j := range idx[1:] {
		if logits[j] > logits[best] {
			best = j
		}
	}
	return best, nil
}

// Value returns the target's value for position i (under its canonical transform) from the forward outputs.
func (t Target) Value(h *model.HeadOutputs, pos *board.Position, transform, i int) (float32, error) {
	switch t.Kind {
	case TargetValue:
		return h.ForceValue(i), nil
	case TargetWDL:
		return h.WDL[3*i+t.WDL], nil
	case TargetMLH:
		return h.MLH[i], nil
	}
	idx, err := t.policyIndex(pos, transform, h, i)
	if err != nil {
		return 0, err
	}
	return h.Policy[i*board.PolicySize+idx], nil
}

func constRows(n int64, row []float32) model.Tensor {
	data := make([]float32, int(n)*len(row))
	for i := range data {
		data[i] = row[i%len(row)]
	}
	return model.Tensor{Shape: []int64{n, int64(len(row))}, Data: data}
}
