package board

import (
	"fmt"
	"strings"
)

// Game is a start position plus the moves played from it, with lc0's
// history and repetition bookkeeping (PositionHistory in lc0). Create one
// with NewGame or ParseGame; the zero value is not usable.
type Game struct {
	pos   []Position // pos[0] is the start, pos[i] the position after i moves
	reps  []int      // lc0's repetition count of each position
	moves []Move
}

// NewGame starts a game from start (a copy is kept); nil means the standard
// starting position.
func NewGame(start *Position) *Game {
	g := &Game{pos: make([]Position, 1, 64), reps: make([]int, 1, 64), moves: make([]Move, 0, 64)}
	if start == nil {
		g.pos[0] = startPos
	} else {
		g.pos[0] = *start
	}
	return g
}

// ParseGame builds a game from start ("startpos", or a FEN with 6 or 4
// fields) and space-separated moves in UCI or SAN (move numbers such as
// "12." or "12..." are skipped; "" means no moves). An unparsable or illegal
// move yields an error naming the move and its 1-based ply, e.g.
// `board: move 3 "e2e5": illegal in <fen>`, as a *MoveError wrapping
// ErrIllegalMove, ErrAmbiguousMove or ErrBadMove; more than MaxPlies moves
// are refused the same way, wrapping ErrTooLong.
func ParseGame(start string, moves string) (*Game, error) {
	start = strings.TrimSpace(start)
	var g *Game
	if start == "" || strings.EqualFold(start, "startpos") {
		g = NewGame(nil)
	} else {
		p, err := ParseFEN(start)
		if err != nil {
			return nil, err
		}
		g = NewGame(p)
	}
	ply := 0
	for _, tok := range strings.Fields(moves) {
		if isMoveNumber(tok) {
			continue
		}
		ply++
		if ply > MaxPlies {
			return nil, &MoveError{Ply: ply, Move: tok, Reason: fmt.Sprintf("beyond %d plies, more than any legal game", MaxPlies), FEN: g.Current().FEN(), Err: ErrTooLong}
		}
		cur := g.Current()
		m, reason, err := cur.parseMove(tok)
		if err != nil {
			return nil, &MoveError{Ply: ply, Move: tok, Reason: reason, FEN: cur.FEN(), Err: err}
		}
		g.Play(m)
	}
	return g, nil
}

// isMoveNumber reports tokens like "12." or "12...".
func isMoveNumber(s string) bool {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 0 || i == len(s) {
		return false
	}
	for ; i < len(s); i++ {
		if s[i] != '.' {
			return false
		}
	}
	return true
}

// Play appends m (which must be legal; see Position.ParseMove) and updates
// the repetition count of the new position.
func (g *Game) Play(m Move) {
	next := g.pos[len(g.pos)-1]
	next.play(m)
	g.pos = append(g.pos, next)
	g.moves = append(g.moves, m)
	g.reps = append(g.reps, g.lastMoveRepetitions())
}

// lastMoveRepetitions is lc0's PositionHistory::ComputeLastMoveRepetitions:
// scan back two plies at a time while no capture or pawn move intervenes.
func (g *Game) lastMoveRepetitions() int {
	n := len(g.pos)
	last := &g.pos[n-1]
	if last.rule50 < 4 {
		return 0
	}
	for idx := n - 3; idx >= 0; idx -= 2 {
		p := &g.pos[idx]
		if p.sameBoard(last) {
			return 1 + g.reps[idx]
		}
		if p.rule50 < 2 {
			return 0
		}
	}
	return 0
}

// Current returns the current position. Positions are immutable through
// their API, so the pointer stays valid after further moves.
func (g *Game) Current() *Position { return &g.pos[len(g.pos)-1] }

// Start returns the start position.
func (g *Game) Start() *Position { return &g.pos[0] }

// Position returns the position after ply moves (0 = start), or nil when ply
// is out of range.
func (g *Game) Position(ply int) *Position {
	if ply < 0 || ply >= len(g.pos) {
		return nil
	}
	return &g.pos[ply]
}

// Ply returns the number of moves played from the start position.
func (g *Game) Ply() int { return len(g.moves) }

// Moves returns the moves played; the slice must not be modified.
func (g *Game) Moves() []Move { return g.moves[:len(g.moves):len(g.moves)] }

// Repetitions returns lc0's repetition count of the current position: how
// many times it occurred before (0 = first time).
func (g *Game) Repetitions() int { return g.reps[len(g.reps)-1] }

// Clone returns an independent copy of g.
func (g *Game) Clone() *Game {
	return &Game{
		pos:   append(make([]Position, 0, cap(g.pos)), g.pos...),
		reps:  append(make([]int, 0, cap(g.reps)), g.reps...),
		moves: append(make([]Move, 0, cap(g.moves)), g.moves...),
	}
}

// Truncate drops the moves after ply (0 <= ply <= Ply()), so a game can be
// rewound and replayed without copying. Positions returned earlier for the
// dropped plies are overwritten by later moves.
func (g *Game) Truncate(ply int) {
	if ply < 0 || ply > len(g.moves) {
		return
	}
	g.pos = g.pos[:ply+1]
	g.reps = g.reps[:ply+1]
	g.moves = g.moves[:ply]
}
