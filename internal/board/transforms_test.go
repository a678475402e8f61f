package board

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/lczerolens/lczerolens/internal/testutil"
)

// refdumpDirs are the lc0 dumps of canonical-format positions and the policy indexing their nn_index values
// follow: the planes-consistent rewrites are the default's truth, the untouched dumps lc0 v0.32's.
var refdumpDirs = []struct {
	pt  PolicyTranspose
	dir []string
}{
	{TransposePlanes, []string{"reference", "lc0", "planes-consistent", "transforms"}},
	{TransposePlanes, []string{"reference", "lc0", "planes-consistent", "synthetic"}},
	{TransposeLc0V032, []string{"reference", "lc0", "transforms"}},
	{TransposeLc0V032, []string{"reference", "lc0", "synthetic"}},
}

// dumpRecord is one record of a dump file, named by the file for messages.
type dumpRecord struct {
	file string
	testutil.RefRecord
}

// byTransform reads every dump of dir and groups the records lc0 produced by their transform; it also returns
// the records lc0 could not produce.
func byTransform(t *testing.T, dir []string) (map[int][]dumpRecord, []dumpRecord) {
	t.Helper()
	all := readDumps(t, "*.refdump*.jsonl.gz", dir...)
	files := make([]string, 0, len(all))
	for f := range all {
		files = append(files, f)
	}
	sort.Strings(files)
	groups := map[int][]dumpRecord{}
	var failed []dumpRecord
	for _, f := range files {
		for _, r := range all[f] {
			if r.Error != "" {
				failed = append(failed, dumpRecord{f, r})
				continue
			}
			groups[r.Transform] = append(groups[r.Transform], dumpRecord{f, r})
		}
	}
	return groups, failed
}

// TestCanonicalRefdumps is issue 22's acceptance 1 and 2 on the encoder: for every record of the canonical
// transform dumps, EncodeFormat with the record's input format and history fill gives lc0's transform and its
// planes bit for bit, and every legal move gets the record's nn_index under the policy indexing the dump
// follows (planes-consistent by default, lc0 v0.32's with TransposeLc0V032). One subtest per transform value,
// so that a failure names it; every value 0..7 must be present in the transform dumps.
func TestCanonicalRefdumps(t *testing.T) {
	for _, d := range refdumpDirs {
		t.Run(d.pt.String()+"/"+d.dir[len(d.dir)-1], func(t *testing.T) {
			groups, failed := byTransform(t, d.dir)
			if d.dir[len(d.dir)-1] == "transforms" {
				for tr := 0; tr < 8; tr++ {
					if len(groups[tr]) == 0 {
						t.Errorf("no record with transform %d", tr)
					}
				}
			}
			for tr := 0; tr < 8; tr++ {
				recs := groups[tr]
				if len(recs) == 0 {
					continue
				}
				t.Run(fmt.Sprintf("transform=%d", tr), func(t *testing.T) {
					moves, skipped := 0, 0
					for _, r := range recs {
						if chess960Castling[r.Name] {
							checkChess960Refused(t, r)
							skipped++
							continue
						}
						checkRecord(t, r, d.pt)
						moves += len(r.LegalMoves)
					}
					t.Logf("%d records, %d legal moves (%d with Chess960 castling refused)", len(recs)-skipped, moves, skipped)
				})
			}
			// What lc0 could not produce is checked against its fill-no dump (TestFormat5WhereLc0Crashes).
			for _, r := range failed {
				if !strings.Contains(r.Error, "SIGSEGV") || r.HistoryFill != "fen_only" {
					t.Errorf("%s %s: unexpected lc0 error %q", r.file, r.Name, r.Error)
				}
			}
		})
	}
}

// chess960Castling names the records whose FEN gives Chess960 castling rights (X-FEN: the king off the e-file
// with rooks to castle with), where lc0 castles b1a1 and b1h1. The board package plays standard chess only:
// such a FEN is refused with an error naming Chess960 rather than read as another position.
var chess960Castling = map[string]bool{"frc_castling_KQkq_w_00": true}

// checkChess960Refused checks that a Chess960-castling record's FEN is refused with an error saying so.
func checkChess960Refused(t *testing.T, r dumpRecord) {
	t.Helper()
	if _, err := ParseGame(r.FENStart, strings.Join(r.MovesFromFEN, " ")); err == nil || !strings.Contains(err.Error(), "Chess960") {
		t.Errorf("%s %s: ParseGame(%q) = %v, want an error naming Chess960", r.file, r.Name, r.FENStart, err)
	}
}

// checkRecord encodes one record's game and compares the transform, the planes and the legal moves' indices
// under pt with the record.
func checkRecord(t *testing.T, r dumpRecord, pt PolicyTranspose) {
	t.Helper()
	tag := r.file + " " + r.Name
	f, err := ParseInputFormat(strconv.Itoa(r.InputFormat))
	if err != nil {
		t.Errorf("%s: %v", tag, err)
		return
	}
	fill, err := ParseHistoryFill(strings.ReplaceAll(r.HistoryFill, "_", "-"))
	if err != nil {
		t.Errorf("%s: %v", tag, err)
		return
	}
	g, err := ParseGame(r.FENStart, strings.Join(r.MovesFromFEN, " "))
	if err != nil {
		t.Errorf("%s: %v", tag, err)
		return
	}
	if got := g.Current().FEN(); fenHead(got) != fenHead(r.FENAfter) {
		t.Errorf("%s: fen after %q, want %q", tag, got, r.FENAfter)
	}
	want := testutil.DecodePlanes(t, r.RefRecord)
	got := make([]float32, NumPlanes*64)
	tr := g.EncodeFormat(f, fill, got)
	if tr != r.Transform {
		t.Errorf("%s: transform %d, want %d", tag, tr, r.Transform)
	}
	if tt := Transform(g, f); tt != r.Transform {
		t.Errorf("%s: Transform() = %d, want %d", tag, tt, r.Transform)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Errorf("%s: format %s fill %s: plane %d square %s: got %v, want %v", tag, f, fill, i/64, Square(i%64), got[i], want[i])
			break
		}
	}
	checkLegal(t, tag, g.Current(), r.RefRecord, pt.Apply(r.Transform))
}

// TestFormat5WhereLc0Crashes covers every position of the dumps where lc0 crashes: format 5 with the default
// history fill, a FEN whose halfmove clock is not 0 and no irreversible move in the played line, where lc0's
// history walk never ends. EncodeFormat must return, and what it encodes there is documented as the planes
// of history fill no: lc0's own fill-no dump of the same position, bit for bit, with the same transform and
// move indices.
func TestFormat5WhereLc0Crashes(t *testing.T) {
	for _, d := range refdumpDirs {
		t.Run(d.pt.String()+"/"+d.dir[len(d.dir)-1], func(t *testing.T) {
			all := readDumps(t, "ab_mh_dense_v2.refdump*.jsonl.gz", d.dir...)
			fenOnly, no := all["ab_mh_dense_v2.refdump.jsonl.gz"], all["ab_mh_dense_v2.refdump.histfill-no.jsonl.gz"]
			if len(fenOnly) == 0 || len(no) != len(fenOnly) {
				t.Fatalf("format-5 dumps: %d fen_only and %d fill-no records", len(fenOnly), len(no))
			}
			groups := map[int][]dumpRecord{}
			for i, r := range fenOnly {
				if r.Error == "" {
					continue
				}
				alt := no[i]
				if alt.Name != r.Name || alt.Error != "" {
					t.Fatalf("%s: fill-no record %d is %q (error %q)", r.Name, i, alt.Name, alt.Error)
				}
				// The record as lc0 would give it with fill fen_only, had it not crashed.
				alt.HistoryFill = r.HistoryFill
				groups[alt.Transform] = append(groups[alt.Transform], dumpRecord{"ab_mh_dense_v2 (lc0 crashed; fill-no planes)", alt})
			}
			n := 0
			for tr := 0; tr < 8; tr++ {
				if len(groups[tr]) == 0 {
					continue
				}
				t.Run(fmt.Sprintf("transform=%d", tr), func(t *testing.T) {
					for _, r := range groups[tr] {
						checkRecord(t, r, d.pt)
					}
				})
				n += len(groups[tr])
			}
			if n == 0 {
				t.Fatal("no record where lc0 crashed")
			}
			t.Logf("%d positions where lc0 crashes, by transform %v", n, countsOf(groups))
		})
	}
}

func countsOf(groups map[int][]dumpRecord) map[int]int {
	out := map[int]int{}
	for tr, rs := range groups {
		out[tr] = len(rs)
	}
	return out
}

// randomPawnless builds a legal pawnless position from seed: two kings and up to five other men placed at
// random, either side to move, the side not to move not in check, and (when the men stand on their home
// squares) castling rights in about half the cases; then up to six random legal moves, so that
// positions of any transform come out, and some with our king on the transpose diagonal.
func randomPawnless(seed uint64) *Position {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	for {
		var p Position
		p.ep = NoSquare
		p.fullmove = 1
		p.stm = Color(rng.IntN(2))
		occ := uint64(0)
		place := func(c Color, pt PieceType, sq Square) {
			occ |= sqBB(sq)
			p.color[c] |= sqBB(sq)
			p.piece[pt] |= sqBB(sq)
		}
		free := func() Square {
			for {
				if sq := Square(rng.IntN(64)); occ&sqBB(sq) == 0 {
					return sq
				}
			}
		}
		castle := rng.IntN(4) == 0
		if castle {
			place(White, King, E1)
			place(White, Rook, H1)
			place(Black, King, E8)
			place(Black, Rook, A8)
		} else {
			place(White, King, free())
			place(Black, King, free())
		}
		for i := rng.IntN(6); i > 0; i-- {
			place(Color(rng.IntN(2)), PieceType(int(Knight)+rng.IntN(4)), free())
		}
		if castle {
			p.castling = castleWK | castleBQ
		}
		if p.attackersTo(p.kingSq(p.stm.Other()), p.stm, p.occupied()) != 0 {
			continue
		}
		for i := rng.IntN(7); i > 0; i-- {
			ms := p.LegalMoves()
			if len(ms) == 0 {
				break
			}
			p.play(ms[rng.IntN(len(ms))])
		}
		return &p
	}
}

// checkPolicyDecode is the property of issue 22's acceptance 4 for one position: under the position's own
// transform, with either policy indexing, every legal move's index decodes back to the move, both through
// MoveFromIndexT and independently through lc0's move name at that index with the indexing undone by hand.
// Under the default indexing the decoded from-square also holds the moving piece in the encoded planes, which
// is what "planes-consistent" means. It returns the transform.
func checkPolicyDecode(t *testing.T, p *Position) int {
	t.Helper()
	g := NewGame(p)
	planes := make([]float32, NumPlanes*64)
	tr := g.EncodeFormat(InputCanonical, FillNo, planes)
	if want := canonicalTransform(p); tr != want {
		t.Fatalf("%s: EncodeFormat transform %d, ChooseTransform %d", p.FEN(), tr, want)
	}
	names := PolicyNames()
	for _, pt := range []PolicyTranspose{TransposePlanes, TransposeLc0V032} {
		seen := map[int]Move{}
		for _, m := range p.LegalMoves() {
			tag := fmt.Sprintf("%s: %s under transform %d, %s indexing", p.FEN(), m, tr, pt)
			idx, err := PolicyIndexT(p, m, pt.Apply(tr))
			if err != nil {
				t.Fatalf("%s: %v", tag, err)
			}
			if other, dup := seen[idx]; dup {
				t.Fatalf("%s: index %d also taken by %s", tag, idx, other)
			}
			seen[idx] = m
			if back, err := MoveFromIndexT(p, idx, pt.Apply(tr)); err != nil || back != m {
				t.Fatalf("%s: index %d decodes to %v, %v", tag, idx, back, err)
			}
			name := names[idx]
			from, err1 := ParseSquare(name[0:2])
			to, err2 := ParseSquare(name[2:4])
			if err1 != nil || err2 != nil || len(name) != 4 {
				t.Fatalf("%s: index %d is %q, not a plain move", tag, idx, name)
			}
			if pt == TransposePlanes {
				piece := -1
				for k := 0; k < 6; k++ {
					if planes[k*64+int(from)] == 1 {
						piece = k
					}
				}
				if _, mover, _ := p.PieceAt(m.From); piece < 0 || PieceType(piece+1) != mover {
					t.Fatalf("%s: index %d (%s) starts on %s, where the planes hold our plane %d", tag, idx, name, from, piece)
				}
			}
			from, to = undoPolicyFrame(from, tr, pt), undoPolicyFrame(to, tr, pt)
			if p.stm == Black {
				from, to = from.Mirror(), to.Mirror()
			}
			// Castling is king-takes-rook in lc0's policy.
			if k := p.color[p.stm] & p.piece[King]; k&sqBB(from) != 0 && p.color[p.stm]&p.piece[Rook]&sqBB(to) != 0 {
				to = NewSquare(map[int]int{0: 2, 7: 6}[to.File()], to.Rank())
			}
			if from != m.From || to != m.To {
				t.Fatalf("%s: index %d (%s) decodes to %s%s", tag, idx, name, from, to)
			}
		}
	}
	return tr
}

// undoPolicyFrame maps a square of the policy frame back to the side-to-move frame, written out apart from
// the package's own mappings: the planes' transform undone step by step (transpose a1<->h8, mirror ranks,
// flip files), or lc0 v0.32's, which reverses files and ranks for every transposing transform.
func undoPolicyFrame(sq Square, tr int, pt PolicyTranspose) Square {
	f, r := sq.File(), sq.Rank()
	if pt == TransposeLc0V032 && tr&TransformTranspose != 0 {
		return NewSquare(7-f, 7-r)
	}
	if tr&TransformTranspose != 0 {
		f, r = 7-r, 7-f
	}
	if tr&TransformMirror != 0 {
		r = 7 - r
	}
	if tr&TransformFlip != 0 {
		f = 7 - f
	}
	return NewSquare(f, r)
}

// TestPolicyDecodeRandomPawnless runs the fuzz property on 3000 seeded positions and checks that they cover
// every transform 0..7.
func TestPolicyDecodeRandomPawnless(t *testing.T) {
	count := map[int]int{}
	for seed := uint64(0); seed < 3000; seed++ {
		count[checkPolicyDecode(t, randomPawnless(seed))]++
	}
	for tr := 0; tr < 8; tr++ {
		if count[tr] == 0 {
			t.Errorf("no position with transform %d", tr)
		}
	}
	t.Logf("positions by transform: %v", count)
}

// FuzzPolicyTranspose is issue 22's acceptance 4: for random legal pawnless positions, every legal move's
// policy index under the position's transform decodes back to the move, with either indexing.
func FuzzPolicyTranspose(f *testing.F) {
	for _, s := range []uint64{0, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, seed uint64) {
		checkPolicyDecode(t, randomPawnless(seed))
	})
}

// TestStartBoardBlackToMoveFilled pins, against lc0's dumps, that the standard start board given as a FEN
// with black to move gets its history filled under the default fill (lc0's ChessBoard equality includes the
// side to move), in the classical format and the canonical ones, while the same board with white to move
// does not.
func TestStartBoardBlackToMoveFilled(t *testing.T) {
	groups, _ := byTransform(t, []string{"reference", "lc0", "planes-consistent", "transforms"})
	n := 0
	for _, r := range groups[0] {
		if !strings.HasPrefix(r.Name, "startboard_") || r.HistoryFill != "fen_only" {
			continue
		}
		t.Run(r.file+"/"+r.Name, func(t *testing.T) {
			checkRecord(t, r, TransposePlanes)
			g, err := ParseGame(r.FENStart, strings.Join(r.MovesFromFEN, " "))
			if err != nil {
				t.Fatal(err)
			}
			f, _ := ParseInputFormat(strconv.Itoa(r.InputFormat))
			planes := make([]float32, NumPlanes*64)
			g.EncodeFormat(f, FillFENOnly, planes)
			last := planes[(HistorySlots-1)*PlanesPerSlot*64 : AuxPlaneBase*64]
			filled := !allZero(last)
			// Canonical formats stop the history at a rule-50 count of 0, so the fill shows only with a clock.
			visible := f == InputClassical || strings.Contains(r.Name, "halfmove4")
			black := strings.Fields(r.FENStart)[1] == "b"
			if visible && filled != black {
				t.Errorf("slot 7 filled = %v with %s to move", filled, map[bool]string{true: "black", false: "white"}[black])
			}
		})
		n++
	}
	if n == 0 {
		t.Fatal("no start-board records")
	}
}
