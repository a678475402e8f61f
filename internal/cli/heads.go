package cli

import (
	"sort"

	"github.com/lczerolens/lczerolens/internal/board"
	"github.com/lczerolens/lczerolens/internal/model"
)

// moveJSON is one move of a network's policy: probability over legal moves and raw logit.
type moveJSON struct {
	UCI   string  `json:"uci"`
	P     float32 `json:"p"`
	Logit float32 `json:"logit"`
}

// headsJSON summarises a network's outputs for one position.
type headsJSON struct {
	Moves []moveJSON `json:"moves"`
	WDL   []float32  `json:"wdl,omitempty"`
	Value float32    `json:"value"`
	MLH   *float32   `json:"mlh,omitempty"`
}

// summarizeHeads decodes position i of h (planes made with the given canonical transform, as the board
// package's policy functions take it: see encoding.policy): the top legal moves by probability (top <= 0: all),
// W/D/L when the net has it, the value (q) and moves-left when present.
func summarizeHeads(pos *board.Position, transform int, h *model.HeadOutputs, i, top int) headsJSON {
	out := headsJSON{Value: h.ForceValue(i)}
	if h.Policy != nil {
		moves, idx := board.LegalIndicesT(pos, transform)
		logits := h.PolicyRow(i)
		probs := model.LegalSoftmax(logits, idx)
		for k, m := range moves {
			out.Moves = append(out.Moves, moveJSON{UCI: m.UCI(), P: probs[k], Logit: logits[idx[k]]})
		}
		sort.SliceStable(out.Moves, func(a, b int) bool { return out.Moves[a].P > out.Moves[b].P })
		if top > 0 && len(out.Moves) > top {
			out.Moves = out.Moves[:top]
		}
	}
	if out.Moves == nil {
		out.Moves = []moveJSON{}
	}
	if h.WDL != nil {
		out.WDL = h.WDL[3*i : 3*i+3]
	}
	if h.MLH != nil {
		m := h.MLH[i]
		out.MLH = &m
	}
	return out
}
