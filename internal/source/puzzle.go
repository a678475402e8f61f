package source

import (
	"encoding/csv"
	"fmt"
	"strconv"
	"strings"

	"github.com/lczerolens/lczerolens/internal/board"
)

// PuzzleColumns are the columns of lichess's puzzle CSV, in order; the file starts with them as its header.
var PuzzleColumns = []string{"PuzzleId", "FEN", "Moves", "Rating", "RatingDeviation", "Popularity", "NbPlays", "Themes", "GameUrl", "OpeningTags"}

// Puzzle is one lichess puzzle. FEN is the position before the opponent's move Moves[0]; the puzzle position
// is the one after it, and Moves[1:] is the solution, the solver's moves and the opponent's replies in turn.
type Puzzle struct {
	ID     string
	FEN    string
	Moves  []string // UCI, as in the file
	Rating int
	Themes []string
	// Columns are the record's fields as read (at least the first three of PuzzleColumns), so that a
	// selection of puzzles is written back unchanged.
	Columns []string
}

// Solution returns the moves after the opponent's first one.
func (p *Puzzle) Solution() []string { return p.Moves[1:] }

// puzzleHeader reports whether a line is the puzzle header. The first line of a file may be another CSV's
// header, which is an error: a CSV that is not lichess's puzzle file would otherwise read as one bad record
// per line.
func puzzleHeader(text string, first bool) (bool, error) {
	if !strings.HasPrefix(text, "PuzzleId,") {
		if first && !looksLikePuzzle(text) {
			return false, fmt.Errorf("not a lichess puzzle CSV: the first line %q is no puzzle and no header %s", clip(text, 80), strings.Join(PuzzleColumns, ","))
		}
		return false, nil
	}
	if !strings.HasPrefix(text, strings.Join(PuzzleColumns[:3], ",")) {
		return false, fmt.Errorf("puzzle CSV header %q: want %s", clip(text, 120), strings.Join(PuzzleColumns, ","))
	}
	return true, nil
}

// looksLikePuzzle tells a headerless puzzle file (lichess's older dumps) from another CSV: its second
// column is a FEN.
func looksLikePuzzle(text string) bool {
	cols := strings.Split(text, ",")
	return len(cols) >= 3 && strings.Count(cols[1], "/") == 7
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// parsePuzzle reads one CSV record into a puzzle and its game: from the FEN through every move, checked
// legal. A puzzle needs the opponent's move and at least one solution move.
func parsePuzzle(text string) (*Puzzle, *board.Game, error) {
	cr := csv.NewReader(strings.NewReader(text))
	cr.FieldsPerRecord = -1
	cols, err := cr.Read()
	if err != nil {
		return nil, nil, fmt.Errorf("source: puzzle: invalid csv: %w", err)
	}
	if len(cols) < 3 {
		return nil, nil, fmt.Errorf("source: puzzle: %d columns: want at least PuzzleId,FEN,Moves", len(cols))
	}
	p := &Puzzle{ID: cols[0], FEN: cols[1], Moves: strings.Fields(cols[2]), Columns: cols}
	if p.ID == "" {
		return nil, nil, fmt.Errorf("source: puzzle: empty PuzzleId")
	}
	if len(p.Moves) < 2 {
		return nil, nil, fmt.Errorf("source: puzzle %s: Moves %q: want the opponent's move and at least one solution move", p.ID, cols[2])
	}
	if len(cols) > 3 && cols[3] != "" {
		if p.Rating, err = strconv.Atoi(cols[3]); err != nil {
			return nil, nil, fmt.Errorf("source: puzzle %s: Rating %q is not an integer", p.ID, cols[3])
		}
	}
	if len(cols) > 7 {
		p.Themes = strings.Fields(cols[7])
	}
	if p.Themes == nil {
		p.Themes = []string{}
	}
	g, err := board.ParseGame(p.FEN, cols[2])
	if err != nil {
		return nil, nil, fmt.Errorf("source: puzzle %s: %w", p.ID, err)
	}
	return p, g, nil
}

// walkPuzzle reports the puzzle position of one record, or with solution every position of its line.
func walkPuzzle(text string, line, record int, name string, solution bool, item func(*Item) error, bad func(*Bad) error) error {
	p, full, err := parsePuzzle(text)
	if err != nil {
		return bad(&Bad{Record: record, Game: -1, Line: line, Reason: reason(err)})
	}
	moves := full.Moves()
	last := 1
	if solution {
		last = len(moves) - 1
	}
	// The positions are replayed on a fresh game so that each item's History ends at its own ply.
	g := board.NewGame(full.Start())
	g.Play(moves[0])
	for ply := 1; ply <= last; ply++ {
		pos := *g.Current()
		next := moves[ply]
		if err := item(&Item{Record: record, Game: -1, Ply: ply, Source: name, History: g, Pos: &pos, Next: &next, Puzzle: p}); err != nil {
			return err
		}
		g.Play(moves[ply])
	}
	return nil
}
