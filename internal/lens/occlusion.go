package lens

import (
	"fmt"
	"math"
	"strings"

	"github.com/lczerolens/lczerolens/internal/board"
	"github.com/lczerolens/lczerolens/internal/model"
)

// Occlusion is perturbation saliency: the change of a target when the piece on a square is removed (or
// replaced), found by running the network on the edited positions rather than by gradients.
//
// For each occupied square, the edit (remove the piece, or with --replace put a piece of that type and the
// same colour there) is applied where the result is a legal position: kings are never edited, the side not
// to move must not be in check, no pawn may stand on the first or last rank, castling rights whose rook is
// gone are dropped and an en-passant square the edit invalidates is cleared. heatmap[sq] is target(original)
// - target(edited): positive where the piece helped the target. Squares with no edit are 0.
//
// The edited positions have no game history, so the original and every variant are encoded alike as fresh
// games from their FEN, with the batch's input format and history fill: the change is then due to the edit
// alone. For a position reached by moves, "target" (the original's value here) can therefore differ from the
// run's head outputs, which see the real history.
//
// A policy target reads the logit of its move; policy:best is the original position's best legal move,
// then followed through the variants. A variant where that move is illegal (the moving piece removed, a pawn
// capture with nothing left to capture, a newly exposed check) has no target: its heatmap entry is NaN and its
// variant's target null. All variants of a batch go through the network together, in runs of up to
// occlusionChunk rows (a position has at most 31: itself and 30 edits).
var Occlusion = &Lens{
	Name: "occlusion",
	Doc:  "Change of --target when the piece on each square is removed or replaced (heatmap, [8,8], absolute frame; original target; edited FENs and targets in JSON as variants).",
	Options: []Option{
		targetOption,
		{Name: "replace", Kind: Enum, Default: "none", Choices: []string{"none", "pawn", "knight", "bishop", "rook", "queen"}, Help: "edit of each occupied square: none removes the piece, otherwise it becomes this piece of the same colour"},
	},
	Compatible: func(n *model.Network, v Values) error {
		t, err := ParseTarget(v.GetString("target"))
		if err != nil {
			return err
		}
		return t.Check(n)
	},
	Prepare: prepareOcclusion,
}

// occlusionChunk bounds the rows of one occlusion model run.
const occlusionChunk = 256

// OccludedVariant is one edited position of the occlusion lens's "variants" JSON result.
type OccludedVariant struct {
	Square string   `json:"square"` // e.g. "e4"
	Piece  string   `json:"piece"`  // the piece removed or replaced, as a FEN letter
	FEN    string   `json:"fen"`
	Target *float64 `json:"target"` // null when the target's move is illegal in the variant
}

// UneditedSquares marks the occupied squares of pos that occlusion did not edit, given its variants for
// that position (a row of its "variants" result): kings, and pieces whose edit is no legal position. Their
// heatmap entries are 0 by definition, which a picture must not show as "no effect". It returns nil when
// variants is not occlusion's.
func UneditedSquares(pos *board.Position, variants any) []bool {
	vs, ok := variants.([]OccludedVariant)
	if !ok || pos == nil {
		return nil
	}
	edited := map[string]bool{}
	for _, v := range vs {
		edited[v.Square] = true
	}
	out := make([]bool, 64)
	for sq := range 64 {
		if _, _, occupied := pos.PieceAt(board.Square(sq)); occupied && !edited[board.Square(sq).String()] {
			out[sq] = true
		}
	}
	return out
}

// OcclusionKings marks the kings' squares of pos, which occlusion never edits: what a picture of a heatmap
// read back without its variants (NPY output) can still tell of its squares without a value.
func OcclusionKings(pos *board.Position) []bool {
	if pos == nil {
		return nil
	}
	out := make([]bool, 64)
	for sq := range 64 {
		if _, pt, ok := pos.PieceAt(board.Square(sq)); ok && pt == board.King {
			out[sq] = true
		}
	}
	return out
}

var replaceTypes = map[string]board.PieceType{"none": board.NoPieceType, "pawn": board.Pawn, "knight": board.Knight,
	"bishop": board.Bishop, "rook": board.Rook, "queen": board.Queen}

func prepareOcclusion(n *model.Network, v Values) (*Prep, error) {
	t, err := ParseTarget(v.GetString("target"))
	if err != nil {
		return nil, err
	}
	with, ok := replaceTypes[v.GetString("replace")]
	if !ok {
		return nil, fmt.Errorf("lens: --replace %q: want one of none, pawn, knight, bishop, rook, queen", v.GetString("replace"))
	}
	return &Prep{Produce: func(b *Batch, out *Outputs) ([]BatchResult, error) {
		return occlude(b, out.Runner, t, with)
	}, Check: t.Defined, Keys: []string{"heatmap", "target", "variants"}}, nil
}

// occRow is one encoded position of an occlusion run: a batch position (sq < 0) or one of its variants.
type occRow struct {
	pos       int
	sq        board.Square
	p         *board.Position
	transform int
	piece     string
}

func occlude(b *Batch, r *Runner, t Target, with board.PieceType) ([]BatchResult, error) {
	if r == nil {
		return nil, fmt.Errorf("occlusion needs a runner to run the edited positions")
	}
	var rows []occRow
	for i, pos := range b.Positions {
		rows = append(rows, occRow{pos: i, sq: -1, p: pos})
		for sq := board.Square(0); sq < 64; sq++ {
			c, pt, ok := pos.PieceAt(sq)
			if !ok || pt == board.King || pt == with {
				continue
			}
			edited, err := EditSquare(pos, sq, with)
			if err != nil {
				continue // not a legal position: not applicable
			}
			rows = append(rows, occRow{pos: i, sq: sq, p: edited, piece: pieceLetter(c, pt)})
		}
	}
	// Run the rows in chunks; heads[k] and idx[k] locate row k's outputs.
	heads := make([]*model.HeadOutputs, len(rows))
	idx := make([]int, len(rows))
	planes := make([]float32, 0, min(len(rows), occlusionChunk)*board.NumPlanes*64)
	for start := 0; start < len(rows); start += occlusionChunk {
		end := min(start+occlusionChunk, len(rows))
		planes = planes[:(end-start)*board.NumPlanes*64]
		for k := start; k < end; k++ {
			dst := planes[(k-start)*board.NumPlanes*64 : (k-start+1)*board.NumPlanes*64]
			rows[k].transform = b.Encode(board.NewGame(rows[k].p), dst)
		}
		h, err := r.Forward(planes, end-start)
		if err != nil {
			return nil, fmt.Errorf("occlusion run: %w", err)
		}
		for k := start; k < end; k++ {
			heads[k], idx[k] = h, k-start
		}
	}

	heat := make([]float32, b.Len()*64)
	base := make([]float32, b.Len())
	variants := make([]any, b.Len())
	var bt Target // the target followed through the variants of the current position
	for k, row := range rows {
		if row.sq < 0 {
			v, err := t.Value(heads[k], row.p, row.transform, idx[k])
			if err != nil {
				return nil, err
			}
			base[row.pos] = v
			variants[row.pos] = []OccludedVariant{}
			bt = t
			if t.Kind == TargetPolicyBest {
				pi, err := t.policyIndex(row.p, row.transform, heads[k], idx[k])
				if err != nil {
					return nil, err
				}
				m, err := board.MoveFromIndexT(row.p, pi, row.transform)
				if err != nil {
					return nil, fmt.Errorf("lens: target policy:best: %w", err)
				}
				bt = Target{Kind: TargetPolicyMove, Move: m.UCI()}
			}
			continue
		}
		ov := OccludedVariant{Square: row.sq.String(), Piece: row.piece, FEN: row.p.FEN()}
		d := float32(math.NaN())
		if v, err := bt.Value(heads[k], row.p, row.transform, idx[k]); err == nil {
			d = base[row.pos] - v
			f := float64(v)
			ov.Target = &f
		}
		heat[row.pos*64+int(row.sq)] = d
		variants[row.pos] = append(variants[row.pos].([]OccludedVariant), ov)
	}
	return []BatchResult{
		{Key: "heatmap", Shape: []int{8, 8}, Data: heat},
		{Key: "target", Shape: []int{}, Data: base},
		{Key: "variants", JSON: variants},
	}, nil
}

func pieceLetter(c board.Color, pt board.PieceType) string {
	if c == board.White {
		return strings.ToUpper(pt.String())
	}
	return pt.String()
}

// EditSquare returns pos with the piece on sq removed (with = board.NoPieceType) or replaced by a piece of
// type with and the same colour, or an error when there is no piece or the result is not a legal position.
// Castling rights that lose their rook are dropped, and so is an en-passant square the edit invalidates.
func EditSquare(pos *board.Position, sq board.Square, with board.PieceType) (*board.Position, error) {
	c, _, ok := pos.PieceAt(sq)
	if !ok {
		return nil, fmt.Errorf("lens: edit %s: empty square", sq)
	}
	var grid [64]string
	for s := board.Square(0); s < 64; s++ {
		if pc, pt, ok := pos.PieceAt(s); ok {
			grid[s] = pieceLetter(pc, pt)
		}
	}
	grid[sq] = ""
	if with != board.NoPieceType {
		grid[sq] = pieceLetter(c, with)
	}
	var pl strings.Builder
	for rank := 7; rank >= 0; rank-- {
		empty := 0
		for file := range 8 {
			s := grid[rank*8+file]
			if s == "" {
				empty++
				continue
			}
			if empty > 0 {
				fmt.Fprint(&pl, empty)
				empty = 0
			}
			pl.WriteString(s)
		}
		if empty > 0 {
			fmt.Fprint(&pl, empty)
		}
		if rank > 0 {
			pl.WriteByte('/')
		}
	}
	f := strings.Fields(pos.FEN())
	if len(f) != 6 {
		return nil, fmt.Errorf("lens: edit %s: unexpected fen %q", sq, pos.FEN())
	}
	f[0] = pl.String()
	p, err := board.ParseFEN(strings.Join(f, " "))
	if err != nil && f[3] != "-" {
		f[3] = "-" // the edit may have removed the pawn that just moved two squares, or blocked its path
		if q, err2 := board.ParseFEN(strings.Join(f, " ")); err2 == nil {
			return q, nil
		}
	}
	return p, err
}
