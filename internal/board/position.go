package board

import (
	"fmt"
	"math/bits"
	"strconv"
	"strings"
)

// Castling-right bits of Position.castling.
const (
	castleWK uint8 = 1 << iota
	castleWQ
	castleBK
	castleBQ
)

// Position is a chess position: placement, side to move, castling rights,
// en-passant target and move counters. The zero value is not a valid
// position; use StartPosition, ParseFEN or ParseEPD. Positions are small
// values; Play returns a new one and never modifies its receiver.
type Position struct {
	color    [2]uint64 // by Color
	piece    [7]uint64 // by PieceType; [NoPieceType] unused
	stm      Color
	castling uint8
	// ep is the en-passant target square as lc0 keeps it: copied from a FEN
	// as given, and after a double pawn push set only when an enemy pawn
	// attacks the skipped square (lc0's ChessBoard::ApplyMove). It takes part
	// in repetition detection exactly like lc0's en-passant flag.
	ep       Square
	rule50   int
	fullmove int
}

// StartFEN is the standard starting position.
const StartFEN = "rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR w KQkq - 0 1"

var startPos = mustFEN(StartFEN)

func mustFEN(s string) Position {
	p, err := ParseFEN(s)
	if err != nil {
		panic(err) // only for the package's own constants
	}
	return *p
}

// StartPosition returns a new standard starting position.
func StartPosition() *Position {
	p := startPos
	return &p
}

var fenFieldNames = [...]string{"", "piece placement", "side to move", "castling", "en passant", "halfmove clock", "fullmove number"}

func fieldErr(n int, val, format string, args ...any) error {
	return fmt.Errorf("board: fen field %d (%s) %q: %s", n, fenFieldNames[n], val, fmt.Sprintf(format, args...))
}

// ParseFEN parses a FEN with 6 fields, or the first 4 fields alone (EPD
// style) with the counters defaulting to "0 1". Errors name the bad field.
// Castling rights whose king and rook are not on their original squares are
// dropped (standard chess only), unless the king is on its back rank off the
// e-file with a rook on that side: that is Chess960 castling (X-FEN), an
// error. An
// en-passant square without the pawn that just moved two squares is an
// error.
func ParseFEN(fen string) (*Position, error) {
	f := strings.Fields(fen)
	switch len(f) {
	case 6:
		return parseFields(f[:4], f[4], f[5])
	case 4:
		return parseFields(f, "0", "1")
	default:
		return nil, fmt.Errorf("board: fen %q: want 6 fields (or 4), got %d", fen, len(f))
	}
}

// ParseEPD parses an EPD line: the first 4 FEN fields, optionally followed by
// the two FEN counters; any EPD operations after them (`bm Qd1+; id "x";`)
// are ignored except hmvc and fmvn, which set the counters.
func ParseEPD(line string) (*Position, error) {
	f := strings.Fields(line)
	if len(f) < 4 {
		return nil, fmt.Errorf("board: epd %q: want at least 4 fields, got %d", line, len(f))
	}
	half, full := "0", "1"
	rest := f[4:]
	if len(rest) >= 2 && isUint(rest[0]) && isUint(rest[1]) {
		half, full = rest[0], rest[1]
	} else {
		for i := 0; i+1 < len(rest); i++ {
			v := strings.TrimSuffix(rest[i+1], ";")
			switch rest[i] {
			case "hmvc":
				if isUint(v) {
					half = v
				}
			case "fmvn":
				if isUint(v) {
					full = v
				}
			}
		}
	}
	return parseFields(f[:4], half, full)
}

func isUint(s string) bool {
	if s == "" || len(s) > 9 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func parseFields(f []string, half, full string) (*Position, error) {
	var p Position
	p.ep = NoSquare
	// Field 1: placement, rank 8 first.
	rank, file := 7, 0
	for i := 0; i < len(f[0]); i++ {
		c := f[0][i]
		switch {
		case c == '/':
			if file != 8 {
				return nil, fieldErr(1, f[0], "rank %d has %d squares, want 8", rank+1, file)
			}
			rank--
			file = 0
			if rank < 0 {
				return nil, fieldErr(1, f[0], "more than 8 ranks")
			}
		case c >= '1' && c <= '8':
			file += int(c - '0')
			if file > 8 {
				return nil, fieldErr(1, f[0], "rank %d has more than 8 squares", rank+1)
			}
		default:
			pt, col := pieceFromChar(c)
			if pt == NoPieceType {
				return nil, fieldErr(1, f[0], "bad character %q", c)
			}
			if file > 7 {
				return nil, fieldErr(1, f[0], "rank %d has more than 8 squares", rank+1)
			}
			if pt == Pawn && (rank == 0 || rank == 7) {
				return nil, fieldErr(1, f[0], "pawn on rank %d", rank+1)
			}
			b := uint64(1) << uint(rank*8+file)
			p.color[col] |= b
			p.piece[pt] |= b
			file++
		}
	}
	if rank != 0 || file != 8 {
		return nil, fieldErr(1, f[0], "want 8 ranks of 8 squares")
	}
	for _, c := range []Color{White, Black} {
		if n := bits.OnesCount64(p.piece[King] & p.color[c]); n != 1 {
			return nil, fieldErr(1, f[0], "%s has %d kings, want 1", c, n)
		}
	}
	// Field 2: side to move.
	switch f[1] {
	case "w":
		p.stm = White
	case "b":
		p.stm = Black
	default:
		return nil, fieldErr(2, f[1], "want w or b")
	}
	// Field 3: castling.
	if f[2] != "-" {
		for i := 0; i < len(f[2]); i++ {
			switch f[2][i] {
			case 'K', 'H':
				p.castling |= castleWK
			case 'Q', 'A':
				p.castling |= castleWQ
			case 'k', 'h':
				p.castling |= castleBK
			case 'q', 'a':
				p.castling |= castleBQ
			default:
				return nil, fieldErr(3, f[2], "want - or letters of KQkq (Chess960 castling is not supported)")
			}
		}
		if c, k, ok := p.chess960Right(); ok {
			return nil, fieldErr(3, f[2], "the %s king on %s has a rook to castle with on its side of the back rank: Chess960 (X-FEN) castling is not supported", c, k)
		}
		p.castling &= p.possibleCastling()
	}
	// Field 4: en passant.
	if f[3] != "-" {
		sq, err := ParseSquare(f[3])
		if err != nil {
			return nil, fieldErr(4, f[3], "want - or a square")
		}
		wantRank, pawnSq, fromSq := 5, sq-8, sq+8
		if p.stm == Black {
			wantRank, pawnSq, fromSq = 2, sq+8, sq-8
		}
		if sq.Rank() != wantRank {
			return nil, fieldErr(4, f[3], "want a square on rank %d with %s to move", wantRank+1, p.stm)
		}
		them := p.stm.Other()
		if p.color[them]&p.piece[Pawn]&sqBB(pawnSq) == 0 || p.occupied()&(sqBB(sq)|sqBB(fromSq)) != 0 {
			return nil, fieldErr(4, f[3], "no %s pawn just moved two squares to %s", them, pawnSq)
		}
		p.ep = sq
	}
	// Fields 5 and 6: counters.
	n, err := strconv.Atoi(half)
	if err != nil || n < 0 {
		return nil, fieldErr(5, half, "want a non-negative integer")
	}
	p.rule50 = n
	n, err = strconv.Atoi(full)
	if err != nil || n < 0 {
		return nil, fieldErr(6, full, "want a non-negative integer")
	}
	p.fullmove = n
	// A position where the side not to move is in check cannot arise, and
	// allowing it would let a king be captured.
	if p.attackersTo(p.kingSq(p.stm.Other()), p.stm, p.occupied()) != 0 {
		return nil, fmt.Errorf("board: fen %q: side not to move (%s) is in check", strings.Join(append(f[:4:4], half, full), " "), p.stm.Other())
	}
	return &p, nil
}

// chess960Right reports a castling right that only Chess960 can give (as
// X-FEN reads it, and lc0 with it): the king is on its back rank but off the
// e-file, with a rook of its colour on that side of it. Standard chess drops
// rights whose men have moved (with the king on e1/e8 such a right is taken
// as stale, as real game records have them); for a king elsewhere dropping
// would encode another position than lc0 does.
func (p *Position) chess960Right() (Color, Square, bool) {
	possible := p.possibleCastling()
	for _, r := range []struct {
		bit      uint8
		c        Color
		kingSide bool
	}{{castleWK, White, true}, {castleWQ, White, false}, {castleBK, Black, true}, {castleBQ, Black, false}} {
		if p.castling&r.bit == 0 || possible&r.bit != 0 {
			continue
		}
		k := p.kingSq(r.c)
		back := 0
		if r.c == Black {
			back = 7
		}
		if k.Rank() != back || k.File() == 4 {
			continue
		}
		for f := 0; f < 8; f++ {
			if (f > k.File()) == r.kingSide && f != k.File() && p.color[r.c]&p.piece[Rook]&sqBB(NewSquare(f, back)) != 0 {
				return r.c, k, true
			}
		}
	}
	return 0, NoSquare, false
}

// possibleCastling returns the castling bits whose king and rook stand on
// their original squares.
func (p *Position) possibleCastling() uint8 {
	var m uint8
	wk := p.color[White] & p.piece[King]
	bk := p.color[Black] & p.piece[King]
	wr := p.color[White] & p.piece[Rook]
	br := p.color[Black] & p.piece[Rook]
	if wk == sqBB(E1) {
		if wr&sqBB(H1) != 0 {
			m |= castleWK
		}
		if wr&sqBB(A1) != 0 {
			m |= castleWQ
		}
	}
	if bk == sqBB(E8) {
		if br&sqBB(H8) != 0 {
			m |= castleBK
		}
		if br&sqBB(A8) != 0 {
			m |= castleBQ
		}
	}
	return m
}

func pieceFromChar(c byte) (PieceType, Color) {
	col := White
	if c >= 'a' && c <= 'z' {
		col = Black
		c -= 'a' - 'A'
	}
	switch c {
	case 'P':
		return Pawn, col
	case 'N':
		return Knight, col
	case 'B':
		return Bishop, col
	case 'R':
		return Rook, col
	case 'Q':
		return Queen, col
	case 'K':
		return King, col
	}
	return NoPieceType, col
}

func sqBB(s Square) uint64 { return 1 << uint(s&63) }

func (p *Position) occupied() uint64 { return p.color[White] | p.color[Black] }

// kingSq returns the king square of c, or NoSquare when c has no king (only
// possible after Play was given an illegal move).
func (p *Position) kingSq(c Color) Square {
	k := p.color[c] & p.piece[King]
	if k == 0 {
		return NoSquare
	}
	return Square(bits.TrailingZeros64(k))
}

// attackersTo returns the pieces of colour by attacking sq given occupancy
// occ. NoSquare has no attackers.
func (p *Position) attackersTo(sq Square, by Color, occ uint64) uint64 {
	if sq < 0 {
		return 0
	}
	s := int(sq)
	them := p.color[by]
	a := knightAttacks[s] & p.piece[Knight]
	a |= kingAttacks[s] & p.piece[King]
	a |= pawnAttacks[by.Other()][s] & p.piece[Pawn]
	a |= rookAttacks(s, occ) & (p.piece[Rook] | p.piece[Queen])
	a |= bishopAttacks(s, occ) & (p.piece[Bishop] | p.piece[Queen])
	return a & them & occ
}

// PieceAt returns the piece on sq, ok is false for an empty square.
func (p *Position) PieceAt(sq Square) (c Color, pt PieceType, ok bool) {
	if sq < 0 || sq > 63 {
		return White, NoPieceType, false
	}
	b := sqBB(sq)
	if p.occupied()&b == 0 {
		return White, NoPieceType, false
	}
	if p.color[Black]&b != 0 {
		c = Black
	}
	return c, p.typeAt(b), true
}

func (p *Position) typeAt(b uint64) PieceType {
	for pt := Pawn; pt <= King; pt++ {
		if p.piece[pt]&b != 0 {
			return pt
		}
	}
	return NoPieceType
}

// SideToMove returns the side to move.
func (p *Position) SideToMove() Color { return p.stm }

// HalfmoveClock returns the rule-50 counter: plies since the last capture or
// pawn move.
func (p *Position) HalfmoveClock() int { return p.rule50 }

// FullmoveNumber returns the FEN move number.
func (p *Position) FullmoveNumber() int { return p.fullmove }

// EnPassant returns the en-passant target square or NoSquare (see the note
// on lc0's convention in the Position documentation).
func (p *Position) EnPassant() Square { return p.ep }

// InCheck reports whether the side to move is in check.
func (p *Position) InCheck() bool {
	return p.attackersTo(p.kingSq(p.stm), p.stm.Other(), p.occupied()) != 0
}

// CanCastle reports the castling rights of c: kingside (O-O) and queenside
// (O-O-O).
func (p *Position) CanCastle(c Color) (kingside, queenside bool) {
	k, q := castleWK, castleWQ
	if c == Black {
		k, q = castleBK, castleBQ
	}
	return p.castling&k != 0, p.castling&q != 0
}

// FEN returns the position in Forsyth-Edwards notation.
func (p *Position) FEN() string {
	var sb strings.Builder
	sb.Grow(90)
	for r := 7; r >= 0; r-- {
		empty := 0
		for f := 0; f < 8; f++ {
			c, pt, ok := p.PieceAt(NewSquare(f, r))
			if !ok {
				empty++
				continue
			}
			if empty > 0 {
				sb.WriteByte(byte('0' + empty))
				empty = 0
			}
			ch := " PNBRQK"[pt]
			if c == Black {
				ch += 'a' - 'A'
			}
			sb.WriteByte(ch)
		}
		if empty > 0 {
			sb.WriteByte(byte('0' + empty))
		}
		if r > 0 {
			sb.WriteByte('/')
		}
	}
	if p.stm == White {
		sb.WriteString(" w ")
	} else {
		sb.WriteString(" b ")
	}
	if p.castling == 0 {
		sb.WriteByte('-')
	}
	for i, ch := range "KQkq" {
		if p.castling&(1<<uint(i)) != 0 {
			sb.WriteRune(ch)
		}
	}
	sb.WriteByte(' ')
	sb.WriteString(p.ep.String())
	sb.WriteByte(' ')
	sb.WriteString(strconv.Itoa(p.rule50))
	sb.WriteByte(' ')
	sb.WriteString(strconv.Itoa(p.fullmove))
	return sb.String()
}

// String is FEN.
func (p *Position) String() string { return p.FEN() }

// sameBoard is lc0's ChessBoard equality, used for repetitions: placement,
// side to move, castling rights and the en-passant flag.
func (p *Position) sameBoard(q *Position) bool {
	return p.color == q.color && p.piece == q.piece && p.stm == q.stm &&
		p.castling == q.castling && p.ep == q.ep
}
