package play

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/lczerolens/lczerolens/internal/board"
)

// PGNHeader holds the tags every game of a match shares.
type PGNHeader struct {
	Event string
	Date  time.Time
	Names [2]string // players[0], players[1]
}

// WritePGN writes one game: the seven standard tags, FEN and SetUp for a start other than the standard one,
// Opening, PlyCount and Termination ("normal" for the rules' endings, "adjudication" at the ply limit), the
// book moves bare, each player's move with a comment {p=0.41 v=0.12} (policy probability of the move,
// value before it for the mover), and a last comment saying why the game ended.
func WritePGN(w io.Writer, h PGNHeader, r *Record) error {
	var b strings.Builder
	white, black := h.Names[0], h.Names[1]
	if !r.WhiteIsA {
		white, black = black, white
	}
	tag := func(k, v string) {
		v = strings.ReplaceAll(strings.ReplaceAll(v, `\`, `\\`), `"`, `\"`)
		fmt.Fprintf(&b, "[%s \"%s\"]\n", k, v)
	}
	tag("Event", h.Event)
	tag("Site", "?")
	tag("Date", h.Date.Format("2006.01.02"))
	tag("Round", fmt.Sprint(r.Index+1))
	tag("White", white)
	tag("Black", black)
	tag("Result", r.Result)
	if fen := r.Game.Start().FEN(); fen != board.StartFEN {
		tag("SetUp", "1")
		tag("FEN", fen)
	}
	tag("Opening", r.Opening.Name)
	tag("PlyCount", fmt.Sprint(r.Game.Ply()))
	term, why := "normal", r.Termination.String()
	if r.MaxPlies {
		term, why = "adjudication", "ply limit"
	}
	tag("Termination", term)
	b.WriteString("\n")

	var line strings.Builder
	var toks []string
	flush := func(tok string) { toks = append(toks, tok) }
	moves := r.Game.Moves()
	for i, m := range moves {
		pos := r.Game.Position(i)
		if pos.SideToMove() == board.White {
			flush(fmt.Sprintf("%d.", pos.FullmoveNumber()))
		} else if i == 0 || i == r.Book {
			flush(fmt.Sprintf("%d...", pos.FullmoveNumber()))
		}
		flush(pos.SAN(m))
		if i >= r.Book {
			n := r.Notes[i-r.Book]
			flush(fmt.Sprintf("{p=%.2f v=%.2f}", n.P, n.V))
		}
	}
	flush("{" + why + "}")
	flush(r.Result)
	// Lines of at most 80 columns, as the PGN standard asks; comments never hold spaces that could
	// break them in awkward places, only the one between p and v.
	for _, t := range toks {
		if line.Len() > 0 && line.Len()+1+len(t) > 80 {
			b.WriteString(line.String() + "\n")
			line.Reset()
		}
		if line.Len() > 0 {
			line.WriteByte(' ')
		}
		line.WriteString(t)
	}
	b.WriteString(line.String() + "\n\n")
	_, err := io.WriteString(w, b.String())
	return err
}
