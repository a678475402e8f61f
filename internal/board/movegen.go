package board

import "math/bits"

// maxMoves bounds the number of legal moves in any chess position (218).
const maxMoves = 256

// LegalMoves returns the legal moves of the side to move, castling in UCI
// form (e1g1).
func (p *Position) LegalMoves() []Move {
	var buf [maxMoves]Move
	ms := p.genLegal(buf[:0])
	out := make([]Move, len(ms))
	copy(out, ms)
	return out
}

// genLegal appends the legal moves to dst (which needs capacity maxMoves to
// avoid allocation).
func (p *Position) genLegal(dst []Move) []Move {
	us, them := p.stm, p.stm.Other()
	own, opp := p.color[us], p.color[them]
	occ := own | opp
	ksq := p.kingSq(us)
	checkers := p.attackersTo(ksq, them, occ)
	pinned := p.pinned(ksq, us)
	start := len(dst)

	// Pawns.
	pawns := p.piece[Pawn] & own
	push, startRank, lastRank := 8, 1, 7
	if us == Black {
		push, startRank, lastRank = -8, 6, 0
	}
	for b := pawns; b != 0; b &= b - 1 {
		from := bits.TrailingZeros64(b)
		to := from + push
		if occ&(1<<uint(to)) == 0 {
			dst = addPawnMove(dst, from, to, to>>3 == lastRank)
			if from>>3 == startRank {
				to2 := to + push
				if occ&(1<<uint(to2)) == 0 {
					dst = append(dst, Move{Square(from), Square(to2), NoPieceType})
				}
			}
		}
		caps := pawnAttacks[us][from]
		for c := caps & opp; c != 0; c &= c - 1 {
			to := bits.TrailingZeros64(c)
			dst = addPawnMove(dst, from, to, to>>3 == lastRank)
		}
		if p.ep >= 0 && caps&sqBB(p.ep) != 0 {
			dst = append(dst, Move{Square(from), p.ep, NoPieceType})
		}
	}
	// Pieces.
	for b := own &^ pawns; b != 0; b &= b - 1 {
		from := bits.TrailingZeros64(b)
		var att uint64
		switch p.typeAt(1 << uint(from)) {
		case Knight:
			att = knightAttacks[from]
		case Bishop:
			att = bishopAttacks(from, occ)
		case Rook:
			att = rookAttacks(from, occ)
		case Queen:
			att = bishopAttacks(from, occ) | rookAttacks(from, occ)
		case King:
			att = kingAttacks[from]
		}
		for a := att &^ own; a != 0; a &= a - 1 {
			dst = append(dst, Move{Square(from), Square(bits.TrailingZeros64(a)), NoPieceType})
		}
	}

	// Keep the legal ones. Without check, only king moves, pinned pieces and
	// en-passant captures can expose the king.
	n := start
	for _, m := range dst[start:] {
		if checkers == 0 && m.From != ksq && pinned&sqBB(m.From) == 0 &&
			!(m.To == p.ep && p.piece[Pawn]&sqBB(m.From) != 0) {
			dst[n] = m
			n++
			continue
		}
		if p.legalAfter(m, ksq) {
			dst[n] = m
			n++
		}
	}
	dst = dst[:n]

	// Castling: rights imply king and rook on their squares.
	if checkers == 0 && ksq >= 0 {
		rights := p.castling >> (2 * uint(us)) & 3
		base := Square(0)
		if us == Black {
			base = 56
		}
		if rights&1 != 0 && occ&(sqBB(base+5)|sqBB(base+6)) == 0 &&
			p.attackersTo(base+5, them, occ) == 0 && p.attackersTo(base+6, them, occ) == 0 {
			dst = append(dst, Move{base + 4, base + 6, NoPieceType})
		}
		if rights&2 != 0 && occ&(sqBB(base+1)|sqBB(base+2)|sqBB(base+3)) == 0 &&
			p.attackersTo(base+3, them, occ) == 0 && p.attackersTo(base+2, them, occ) == 0 {
			dst = append(dst, Move{base + 4, base + 2, NoPieceType})
		}
	}
	return dst
}

func addPawnMove(dst []Move, from, to int, promo bool) []Move {
	if !promo {
		return append(dst, Move{Square(from), Square(to), NoPieceType})
	}
	return append(dst,
		Move{Square(from), Square(to), Queen},
		Move{Square(from), Square(to), Rook},
		Move{Square(from), Square(to), Bishop},
		Move{Square(from), Square(to), Knight})
}

// pinned returns our pieces pinned to our king on ksq.
func (p *Position) pinned(ksq Square, us Color) uint64 {
	if ksq < 0 {
		return 0
	}
	own, opp := p.color[us], p.color[us.Other()]
	occ := own | opp
	s := int(ksq)
	var pin uint64
	snipers := (rookAttacks(s, opp) & (p.piece[Rook] | p.piece[Queen]) & opp) |
		(bishopAttacks(s, opp) & (p.piece[Bishop] | p.piece[Queen]) & opp)
	for b := snipers; b != 0; b &= b - 1 {
		between := betweenBB(s, bits.TrailingZeros64(b)) & occ
		if between != 0 && between&(between-1) == 0 {
			pin |= between & own
		}
	}
	return pin
}

// betweenBB returns the squares strictly between a and b on a line, or 0.
func betweenBB(a, b int) uint64 {
	for d := 0; d < 8; d++ {
		if rays[d][a]&(1<<uint(b)) != 0 {
			return rays[d][a] &^ rays[d][b] &^ (1 << uint(b))
		}
	}
	return 0
}

// legalAfter reports whether m (pseudo-legal, not castling) leaves our king
// safe.
func (p *Position) legalAfter(m Move, ksq Square) bool {
	if ksq < 0 {
		return true
	}
	us, them := p.stm, p.stm.Other()
	fb, tb := sqBB(m.From), sqBB(m.To)
	occ := (p.occupied() &^ fb) | tb
	capMask := tb
	if m.To == p.ep && p.piece[Pawn]&fb != 0 && m.From.File() != m.To.File() {
		capSq := m.To - 8
		if us == Black {
			capSq = m.To + 8
		}
		occ &^= sqBB(capSq)
		capMask |= sqBB(capSq)
	}
	if m.From == ksq {
		ksq = m.To
	}
	s := int(ksq)
	opp := p.color[them] &^ capMask
	a := knightAttacks[s] & p.piece[Knight]
	a |= kingAttacks[s] & p.piece[King]
	a |= pawnAttacks[us][s] & p.piece[Pawn]
	a |= rookAttacks(s, occ) & (p.piece[Rook] | p.piece[Queen])
	a |= bishopAttacks(s, occ) & (p.piece[Bishop] | p.piece[Queen])
	return a&opp == 0
}

// Play returns the position after m. It does not check legality (validate
// moves with ParseMove or LegalMoves); castling may be given as e1g1 or as
// king-takes-rook e1h1, and a pawn reaching the last rank without Promo
// becomes a queen.
func (p *Position) Play(m Move) *Position {
	q := *p
	q.play(m)
	return &q
}

func (p *Position) play(m Move) {
	us, them := p.stm, p.stm.Other()
	prevEP := p.ep
	p.ep = NoSquare
	p.rule50++
	if us == Black {
		p.fullmove++
	}
	p.stm = them
	if m.From < 0 || m.From > 63 || m.To < 0 || m.To > 63 || m.From == m.To {
		return
	}
	fb, tb := sqBB(m.From), sqBB(m.To)
	pt := p.typeAt(fb)
	if pt == NoPieceType || p.color[us]&fb == 0 {
		return
	}
	// Castling, as e1g1/e1c1 or king-takes-own-rook.
	if pt == King && m.From.Rank() == m.To.Rank() &&
		(m.To-m.From == 2 || m.From-m.To == 2 || p.color[us]&p.piece[Rook]&tb != 0) {
		base := m.From &^ 7
		kTo, rFrom, rTo := base+6, base+7, base+5
		if m.To < m.From {
			kTo, rFrom, rTo = base+2, base, base+3
		}
		p.color[us] &^= fb | sqBB(rFrom)
		p.piece[King] &^= fb
		p.piece[Rook] &^= sqBB(rFrom)
		p.color[us] |= sqBB(kTo) | sqBB(rTo)
		p.piece[King] |= sqBB(kTo)
		p.piece[Rook] |= sqBB(rTo)
		p.castling &^= (castleWK | castleWQ) << (2 * uint(us))
		return
	}
	if p.color[them]&tb != 0 {
		p.piece[p.typeAt(tb)] &^= tb
		p.color[them] &^= tb
		p.rule50 = 0
	}
	p.color[us] ^= fb | tb
	p.piece[pt] ^= fb | tb
	if pt == Pawn {
		p.rule50 = 0
		switch {
		case m.To == prevEP && m.From.File() != m.To.File():
			capSq := m.To - 8
			if us == Black {
				capSq = m.To + 8
			}
			p.color[them] &^= sqBB(capSq)
			p.piece[Pawn] &^= sqBB(capSq)
		case m.To.Rank() == 0 || m.To.Rank() == 7:
			promo := m.Promo
			if promo < Knight || promo > Queen {
				promo = Queen
			}
			p.piece[Pawn] &^= tb
			p.piece[promo] |= tb
		case m.To-m.From == 16 || m.From-m.To == 16:
			epSq := (m.From + m.To) / 2
			if pawnAttacks[us][epSq]&p.piece[Pawn]&p.color[them] != 0 {
				p.ep = epSq
			}
		}
	}
	p.castling &^= cornerRights(m.From) | cornerRights(m.To)
	if pt == King {
		p.castling &^= (castleWK | castleWQ) << (2 * uint(us))
	}
}

// cornerRights returns the castling rights lost when a piece leaves or
// arrives on sq.
func cornerRights(sq Square) uint8 {
	switch sq {
	case H1:
		return castleWK
	case A1:
		return castleWQ
	case H8:
		return castleBK
	case A8:
		return castleBQ
	}
	return 0
}
