package play

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/lczerolens/lczerolens/internal/board"
)

// Opening is a start position and book moves played from it before the players move.
type Opening struct {
	Name  string // the PGN's Opening tag, "line N" of a FEN list, or "game N" of a PGN
	Start *board.Position
	Moves []board.Move
}

// ReadOpenings reads a FEN/EPD list (one position a line; blank lines and # comments skipped) or, when pgn,
// a PGN whose games' main lines are played up to their end or bookPlies plies (bookPlies > 0). A bad line or
// game is an error naming it: a match on a silently shortened opening list would mislead.
func ReadOpenings(r io.Reader, pgn bool, bookPlies int) ([]Opening, error) {
	var out []Opening
	if pgn {
		pr := board.NewPGNReader(r)
		for {
			g, err := pr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("play: openings: %w", err)
			}
			moves := g.Moves
			if bookPlies > 0 && len(moves) > bookPlies {
				moves = moves[:bookPlies]
			}
			name := g.Tag("Opening")
			if v := g.Tag("Variation"); name != "" && v != "" {
				name += ", " + v
			}
			if name == "" {
				name = fmt.Sprintf("game %d", g.Index+1)
			}
			out = append(out, Opening{Name: name, Start: g.Start, Moves: moves})
		}
	} else {
		sc := bufio.NewScanner(r)
		line := 0
		for sc.Scan() {
			line++
			text := strings.TrimSpace(sc.Text())
			if text == "" || strings.HasPrefix(text, "#") {
				continue
			}
			p, err := board.ParseEPD(text)
			if err != nil {
				return nil, fmt.Errorf("play: openings line %d: %w", line, err)
			}
			out = append(out, Opening{Name: fmt.Sprintf("line %d", line), Start: p})
		}
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("play: openings: %w", err)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("play: openings: no position in the file")
	}
	return out, nil
}
