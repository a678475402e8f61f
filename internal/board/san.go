package board

import (
	"errors"
	"fmt"
	"strings"
)

// Errors wrapped by ParseMove (and ParseGame, the PGN reader) so callers can
// tell why a move was rejected.
var (
	ErrIllegalMove   = errors.New("illegal move")
	ErrAmbiguousMove = errors.New("ambiguous move")
	ErrBadMove       = errors.New("unparsable move")
)

// MoveError reports a move that could not be parsed or is not legal. It
// wraps ErrIllegalMove, ErrAmbiguousMove, ErrBadMove or (ParseGame) ErrTooLong.
type MoveError struct {
	Ply    int    // 1-based ply within a move list, 0 for a single move
	Move   string // the text given
	Reason string // "illegal", "ambiguous", "not a move", ...
	FEN    string // the position the move was tried in
	Err    error
}

// Error formats the error as documented on the type.
func (e *MoveError) Error() string {
	if e.Ply > 0 {
		return fmt.Sprintf("board: move %d %q: %s in %s", e.Ply, e.Move, e.Reason, e.FEN)
	}
	return fmt.Sprintf("board: move %q: %s in %s", e.Move, e.Reason, e.FEN)
}

// Unwrap returns Err.
func (e *MoveError) Unwrap() error { return e.Err }

// ParseMove parses a move of p's side to move, in UCI ("e2e4", "e7e8q",
// castling "e1g1" or king-takes-rook "e1h1") or SAN ("Nf3", "exd5", "O-O",
// "0-0-0", "e8=Q+", with !?, +, # suffixes; also long algebraic such as
// "Ng1-f3"). The returned move is legal and in standard UCI form; errors are
// *MoveError.
func (p *Position) ParseMove(s string) (Move, error) {
	m, reason, err := p.parseMove(s)
	if err != nil {
		return Move{}, &MoveError{Move: s, Reason: reason, FEN: p.FEN(), Err: err}
	}
	return m, nil
}

// parseMove returns the move, or a short reason and the sentinel error.
func (p *Position) parseMove(s string) (Move, string, error) {
	var buf [maxMoves]Move
	legal := p.genLegal(buf[:0])
	t := strings.TrimSpace(s)
	t = strings.TrimSuffix(t, "e.p.")
	t = strings.TrimRight(t, "!?+#")
	if len(t) < 2 {
		return Move{}, "not a move", ErrBadMove
	}
	switch t {
	case "O-O", "0-0":
		return p.findCastle(legal, true)
	case "O-O-O", "0-0-0":
		return p.findCastle(legal, false)
	case "--", "Z0", "0000", "@@@@":
		return Move{}, "null moves are not supported", ErrBadMove
	}
	if m, ok := parseUCI(t); ok {
		// King takes own rook is lc0's castling notation.
		if c, pt, ok := p.PieceAt(m.From); ok && pt == King && c == p.stm {
			if c2, pt2, ok2 := p.PieceAt(m.To); ok2 && c2 == p.stm && pt2 == Rook && m.From.Rank() == m.To.Rank() {
				return p.findCastle(legal, m.To > m.From)
			}
		}
		for _, l := range legal {
			if l == m {
				return m, "", nil
			}
		}
		if m.Promo == NoPieceType {
			for _, l := range legal {
				if l.From == m.From && l.To == m.To {
					return Move{}, "promotion piece missing", ErrBadMove
				}
			}
		}
		return Move{}, "illegal", ErrIllegalMove
	}
	return p.parseSAN(t, legal)
}

func (p *Position) findCastle(legal []Move, kingside bool) (Move, string, error) {
	ksq := p.kingSq(p.stm)
	for _, m := range legal {
		if m.From == ksq && (m.To-m.From == 2 && kingside || m.From-m.To == 2 && !kingside) {
			return m, "", nil
		}
	}
	return Move{}, "illegal", ErrIllegalMove
}

func parseUCI(s string) (Move, bool) {
	if len(s) == 5 && (s[2] == '-' || s[2] == 'x') { // long algebraic pawn move "e2-e4"
		s = s[:2] + s[3:]
	} else if len(s) == 6 && (s[2] == '-' || s[2] == 'x') {
		s = s[:2] + s[3:]
	}
	if len(s) != 4 && len(s) != 5 {
		return Move{}, false
	}
	from, err1 := ParseSquare(s[0:2])
	to, err2 := ParseSquare(s[2:4])
	if err1 != nil || err2 != nil {
		return Move{}, false
	}
	m := Move{From: from, To: to}
	if len(s) == 5 {
		pt, _ := pieceFromChar(s[4])
		if pt < Knight || pt > Queen {
			return Move{}, false
		}
		m.Promo = pt
	}
	return m, true
}

func (p *Position) parseSAN(t string, legal []Move) (Move, string, error) {
	pt := Pawn
	promo := NoPieceType
	// Promotion suffix: "=Q", "Q", "(Q)", "/Q".
	if n := len(t); n >= 3 {
		last := t[n-1]
		if last == ')' && n >= 4 && t[n-3] == '(' {
			last = t[n-2]
			t = t[:n-3]
		} else if last >= 'A' && last <= 'Z' || (t[n-2] == '=' || t[n-2] == '/') && last >= 'a' && last <= 'z' {
			t = t[:n-1]
			t = strings.TrimRight(t, "=/")
		} else {
			last = 0
		}
		if last != 0 {
			pp, _ := pieceFromChar(last)
			if pp < Knight || pp > Queen {
				return Move{}, "bad promotion piece", ErrBadMove
			}
			promo = pp
		}
	}
	if len(t) > 0 && t[0] >= 'A' && t[0] <= 'Z' {
		pp, _ := pieceFromChar(t[0])
		if pp == NoPieceType {
			return Move{}, "bad piece letter", ErrBadMove
		}
		pt = pp
		t = t[1:]
	}
	if len(t) < 2 {
		return Move{}, "not a move", ErrBadMove
	}
	to, err := ParseSquare(t[len(t)-2:])
	if err != nil {
		return Move{}, "not a move", ErrBadMove
	}
	t = t[:len(t)-2]
	t = strings.TrimRight(t, "x:-")
	fromFile, fromRank := -1, -1
	for i := 0; i < len(t); i++ {
		switch c := t[i]; {
		case c >= 'a' && c <= 'h' && fromFile < 0:
			fromFile = int(c - 'a')
		case c >= '1' && c <= '8' && fromRank < 0:
			fromRank = int(c - '1')
		default:
			return Move{}, "not a move", ErrBadMove
		}
	}
	if promo != NoPieceType && pt != Pawn {
		return Move{}, "only pawns promote", ErrBadMove
	}
	var found Move
	n := 0
	missingPromo := false
	for _, m := range legal {
		if m.To != to || p.piece[pt]&sqBB(m.From) == 0 {
			continue
		}
		if fromFile >= 0 && m.From.File() != fromFile || fromRank >= 0 && m.From.Rank() != fromRank {
			continue
		}
		if m.Promo != promo {
			if promo == NoPieceType {
				missingPromo = true
			}
			continue
		}
		if pt == King && (m.To-m.From == 2 || m.From-m.To == 2) {
			// "Kg1" for castling is not SAN; only O-O is.
			continue
		}
		found = m
		n++
	}
	switch {
	case n == 1:
		return found, "", nil
	case n > 1:
		return Move{}, "ambiguous", ErrAmbiguousMove
	case missingPromo:
		return Move{}, "promotion piece missing", ErrBadMove
	}
	return Move{}, "illegal", ErrIllegalMove
}

// SAN returns m in standard algebraic notation with + or # suffix. m must be
// legal in p; for a move that is not, SAN returns its UCI form.
func (p *Position) SAN(m Move) string {
	var buf [maxMoves]Move
	legal := p.genLegal(buf[:0])
	ok := false
	for _, l := range legal {
		if l == m {
			ok = true
			break
		}
	}
	if !ok {
		return m.UCI()
	}
	pt := p.typeAt(sqBB(m.From))
	var b []byte
	switch {
	case pt == King && m.To-m.From == 2:
		b = append(b, "O-O"...)
	case pt == King && m.From-m.To == 2:
		b = append(b, "O-O-O"...)
	case pt == Pawn:
		capture := m.From.File() != m.To.File()
		if capture {
			b = append(b, byte('a'+m.From.File()), 'x')
		}
		b = append(b, m.To.String()...)
		if m.Promo != NoPieceType {
			b = append(b, '=', " PNBRQK"[m.Promo])
		}
	default:
		b = append(b, " PNBRQK"[pt])
		sameFile, sameRank, others := false, false, false
		for _, l := range legal {
			if l.To == m.To && l.From != m.From && p.piece[pt]&sqBB(l.From) != 0 {
				others = true
				sameFile = sameFile || l.From.File() == m.From.File()
				sameRank = sameRank || l.From.Rank() == m.From.Rank()
			}
		}
		if others {
			switch {
			case !sameFile:
				b = append(b, byte('a'+m.From.File()))
			case !sameRank:
				b = append(b, byte('1'+m.From.Rank()))
			default:
				b = append(b, m.From.String()...)
			}
		}
		if p.occupied()&sqBB(m.To) != 0 {
			b = append(b, 'x')
		}
		b = append(b, m.To.String()...)
	}
	q := p.Play(m)
	if q.InCheck() {
		var buf2 [maxMoves]Move
		if len(q.genLegal(buf2[:0])) == 0 {
			b = append(b, '#')
		} else {
			b = append(b, '+')
		}
	}
	return string(b)
}
