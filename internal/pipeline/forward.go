package pipeline

import (
	"github.com/lczerolens/lczerolens/internal/board"
	"github.com/lczerolens/lczerolens/internal/lens"
	"github.com/lczerolens/lczerolens/internal/model"
)

// Forward is the Engine of workflows that only read the network's heads (puzzles, compare): one plain
// forward pass per batch, no hooks, its heads in Batch.Outputs.
type Forward struct {
	Net *model.Network
	RT  *model.SessionCache
}

// Run runs the heads on the batch.
func (f Forward) Run(b *lens.Batch) (*lens.Outputs, []lens.BatchResult, error) {
	h, err := f.Net.Forward(f.RT, b.Planes, b.Len())
	if err != nil {
		return nil, nil, err
	}
	return &lens.Outputs{Heads: h}, nil, nil
}

// MovePolicy is a network's distribution over the legal moves of one position.
type MovePolicy struct {
	Moves []board.Move
	P     []float32 // softmax of the policy logits over the legal moves, in the order of Moves
}

// Policy returns row i's distribution over the legal moves of its position; ok is false when the network
// has no policy head.
func (b *Batch) Policy(i int) (MovePolicy, bool) {
	h := b.Outputs.Heads
	if h == nil || h.Policy == nil {
		return MovePolicy{}, false
	}
	moves, idx := board.LegalIndicesT(b.Input.Positions[i], b.Input.Transform(i))
	return MovePolicy{Moves: moves, P: model.LegalSoftmax(h.PolicyRow(i), idx)}, true
}

// Top returns the index of the most probable move (the first on ties), -1 when there is none.
func (m MovePolicy) Top() int {
	best := -1
	for k, p := range m.P {
		if best < 0 || p > m.P[best] {
			best = k
		}
	}
	return best
}

// Of returns the probability of the move written uci, and whether it is legal.
func (m MovePolicy) Of(uci string) (float32, bool) {
	for k, mv := range m.Moves {
		if mv.UCI() == uci {
			return m.P[k], true
		}
	}
	return 0, false
}
