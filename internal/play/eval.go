// Package play runs games between networks: move samplers over a network's heads (argmax, temperature
// sampling, lczerolens 0.3.3's one-ply utility), many games advanced together so that each ply is one
// batched run per network, adjudication by the rules, PGN records and match statistics. It also holds the
// batched evaluator that turns games (positions with history) into move probabilities and values, which
// other commands that score many positions (corrupt) share.
package play

import (
	"context"
	"fmt"

	"github.com/lczerolens/lczerolens/internal/board"
	"github.com/lczerolens/lczerolens/internal/model"
)

// Eval is a network's reading of one position, from the side to move's point of view.
type Eval struct {
	Moves []board.Move // the legal moves
	P     []float32    // the policy's probability of each (softmax over legal moves)
	Q     float32      // expected score in [-1, 1]: the value head, else W - L
	WDL   []float32    // [W, D, L], nil when the network has no WDL head
	MLH   float32      // moves left
	HasML bool         // whether MLH comes from a moves-left head
}

// Evaluator reads many games' current positions (each with its history) in batched network runs.
type Evaluator interface {
	Evaluate(ctx context.Context, games []*board.Game) ([]Eval, error)
}

// NetEvaluator runs one network over positions encoded as it expects.
type NetEvaluator struct {
	Net    *model.Network
	RT     *model.SessionCache
	Format board.InputFormat
	Fill   board.HistoryFill
	Policy board.PolicyTranspose
	Batch  int // positions per run; <= 0 means 256
}

// Evaluate implements Evaluator.
func (e *NetEvaluator) Evaluate(ctx context.Context, games []*board.Game) ([]Eval, error) {
	size := e.Batch
	if size <= 0 {
		size = 256
	}
	out := make([]Eval, 0, len(games))
	planes := make([]float32, 0, min(size, len(games))*board.NumPlanes*64)
	for lo := 0; lo < len(games); lo += size {
		if err := ctx.Err(); err != nil {
			return nil, context.Cause(ctx)
		}
		chunk := games[lo:min(lo+size, len(games))]
		planes = planes[:len(chunk)*board.NumPlanes*64]
		transforms := make([]int, len(chunk))
		for i, g := range chunk {
			transforms[i] = g.EncodeFormat(e.Format, e.Fill, planes[i*board.NumPlanes*64:(i+1)*board.NumPlanes*64])
		}
		h, err := e.Net.Forward(e.RT, planes, len(chunk))
		if err != nil {
			return nil, fmt.Errorf("play: %w", err)
		}
		if h.Policy == nil {
			return nil, fmt.Errorf("play: %s has no policy head", e.Net.Path)
		}
		for i, g := range chunk {
			moves, idx := board.LegalIndicesT(g.Current(), e.Policy.Apply(transforms[i]))
			ev := Eval{Moves: moves, P: model.LegalSoftmax(h.PolicyRow(i), idx), Q: h.ForceValue(i)}
			if h.WDL != nil {
				ev.WDL = append([]float32(nil), h.WDL[3*i:3*i+3]...)
			}
			if h.MLH != nil {
				ev.MLH, ev.HasML = h.MLH[i], true
			}
			out = append(out, ev)
		}
	}
	return out, nil
}
