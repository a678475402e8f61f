package board

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/lczerolens/lczerolens/internal/testutil"
)

// pgnOutcome is everything a reader reports for one game, comparable across readers.
type pgnOutcome struct {
	Index, Line int
	Tags        [][2]string
	StartFEN    string
	Moves       []Move
	Result      string
	Err         string
}

// readOutcomes reads r with pieces of size bytes (0: the default reader).
func readOutcomes(t testing.TB, r io.Reader, size int) []pgnOutcome {
	t.Helper()
	pr := NewPGNReader(r)
	if size > 0 {
		pr = newPGNReaderSize(r, size)
	}
	var out []pgnOutcome
	for i := 0; ; i++ {
		if i > 1_000_000 {
			t.Fatal("reader does not reach EOF")
		}
		g, err := pr.Next()
		if err == io.EOF {
			return out
		}
		var ge *GameError
		if errors.As(err, &ge) {
			out = append(out, pgnOutcome{Index: ge.Game - 1, Line: ge.Line, Err: ge.Error()})
			continue
		}
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		out = append(out, pgnOutcome{g.Index, g.Line, g.Tags, g.StartFEN, g.Moves, g.Result, ""})
	}
}

// TestPGNPiecesMatchWholeLines reads real files and hand-made edge cases with a 16-byte read buffer, which
// cuts nearly every line into pieces (tags, tokens, comments, NAGs, stray brackets, CRLF), and wants exactly
// what the default reader, holding those lines whole, reports.
func TestPGNPiecesMatchWholeLines(t *testing.T) {
	inputs := map[string]string{
		"cut tokens":      "[Event \"a long event name that spans pieces\"]\r\n[Result \"1-0\"]\r\n\r\n1. e4 e5 2. Nf3 Nc6 3. Bb5 a6 4. Ba4 Nf6 5. O-O Be7 1-0\r\n",
		"nag digits":      "1. e4 $1234567890123456 e5 $12 2. Nf3 *\n",
		"nag then move":   "1. e4 $123456789012345e5 *\n",
		"stray bracket":   "1. e4 [%clk 0:00:01 and some more text here] e5 [unclosed bracket runs to the end of the line e4\n2. Nf3 *\n",
		"semicolon":       "1. e4 ; a comment with moves d4 d5 that runs on and on\ne5 *\n",
		"spaces then tag": "                                      [Event \"x\"]\n1. e4 *\n                                  [Event \"y\"]\n1. d4 *\n",
		"percent":         "% escape line with [Event \"no\"] inside it, long enough to cut\n1. e4 *\n",
		"long token":      "1. e4 " + strings.Repeat("x", 1000) + " e5 *\n1. " + strings.Repeat("9", 300) + ".e4 *\n",
		"bom":             "\xef\xbb\xbf[Event \"bom\"]\n1. e4 *\n",
		"no final eol":    "1. e4 e5 2. Nf3",
	}
	for name, in := range inputs {
		t.Run(name, func(t *testing.T) {
			want := readOutcomes(t, strings.NewReader(in), 0)
			got := readOutcomes(t, strings.NewReader(in), 16)
			if len(want) == 0 || !reflect.DeepEqual(got, want) {
				t.Errorf("16-byte pieces:\n%+v\nwhole lines:\n%+v", got, want)
			}
		})
	}
	for _, name := range []string{"pgn/educhess-Morphy.pgn", "pgn/tcec-S1-Division_1.pgn", "edge-cases/pychess-utf8-bom.pgn", "edge-cases/fastchess-corrupted.pgn"} {
		t.Run(filepath.Base(name), func(t *testing.T) {
			data, err := os.ReadFile(testutil.Shared(t, "data", name))
			if err != nil {
				t.Skipf("%s: %v", name, err)
			}
			want := readOutcomes(t, strings.NewReader(string(data)), 0)
			got := readOutcomes(t, strings.NewReader(string(data)), 16)
			if len(want) == 0 || !reflect.DeepEqual(got, want) {
				t.Errorf("16-byte pieces give %d games, whole lines %d; first difference at %d", len(got), len(want), firstDiff(got, want))
			}
		})
	}
}

func firstDiff(a, b []pgnOutcome) int {
	for i := range min(len(a), len(b)) {
		if !reflect.DeepEqual(a[i], b[i]) {
			return i
		}
	}
	return min(len(a), len(b))
}

// shuffle returns plies knight moves that go back and forth from the start position ("1. Nf3 Nf6 2. Ng1
// Ng8 ..."), all legal; repetitions are a draw to claim, not an end of the game.
func shuffle(plies int) string {
	moves := [4]string{"Nf3", "Nf6", "Ng1", "Ng8"}
	var b strings.Builder
	for i := range plies {
		if i%2 == 0 {
			fmt.Fprintf(&b, "%d. ", i/2+1)
		}
		b.WriteString(moves[i%4])
		b.WriteByte(' ')
	}
	return b.String()
}

func TestPGNMaxPlies(t *testing.T) {
	next := "\n\n[Event \"next\"]\n\n1. e4 e5 *\n"
	games, errs := readAll(t, strings.NewReader(shuffle(MaxPlies)+"*"+next))
	if len(errs) != 0 || len(games) != 2 || len(games[0].Moves) != MaxPlies {
		t.Fatalf("a game of MaxPlies plies: %d games, errors %v", len(games), errs)
	}
	games, errs = readAll(t, strings.NewReader(shuffle(MaxPlies+1)+"*"+next))
	if len(errs) != 1 || !errors.Is(errs[0], ErrTooLong) || errs[0].Game != 1 || !strings.Contains(errs[0].Reason, fmt.Sprint(MaxPlies)) {
		t.Fatalf("a game of MaxPlies+1 plies: errors %v, want one wrapping ErrTooLong and naming the bound", errs)
	}
	if len(games) != 1 || games[0].Tag("Event") != "next" || len(games[0].Moves) != 2 {
		t.Fatalf("the game after a too long one: %+v", games)
	}
}

func TestPGNMaxTags(t *testing.T) {
	tags := func(n int) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, "[T%d \"v\"]\n", i)
		}
		return b.String()
	}
	games, errs := readAll(t, strings.NewReader(tags(MaxTags)+"\n1. e4 *\n"))
	if len(errs) != 0 || len(games) != 1 || len(games[0].Tags) != MaxTags {
		t.Fatalf("MaxTags tags: %d games, errors %v", len(games), errs)
	}
	games, errs = readAll(t, strings.NewReader(tags(MaxTags+1)+"\n1. e4 *\n[Event \"next\"]\n1. d4 *\n"))
	if len(errs) != 1 || !errors.Is(errs[0], ErrTooLong) || len(games) != 1 || games[0].Tag("Event") != "next" {
		t.Fatalf("MaxTags+1 tags: games %d, errors %v; want one error wrapping ErrTooLong, then the next game", len(games), errs)
	}
}

// TestPGNLongLineHeldInPieces reads a game written on one 2 MB line and wants the reader never to have held
// more than a piece of it, and the game read in full.
func TestPGNLongLineHeldInPieces(t *testing.T) {
	in := "[Event \"one line\"]\n" + shuffle(10_000) + "{" + strings.Repeat("a comment ", 100_000) + "} *\n"
	pr := NewPGNReader(strings.NewReader(in))
	g, err := pr.Next()
	if err != nil || len(g.Moves) != 10_000 {
		t.Fatalf("got %v, %v; want a game of 10000 plies", g, err)
	}
	if c := cap(pr.line); c > 2*(64<<10) { // a piece plus a carried token, rounded up by append
		t.Errorf("line buffer grew to %d bytes for a %d-byte line; want it bounded by twice the read buffer", c, len(in))
	}
}

func TestPGNLongTokenQuotedShort(t *testing.T) {
	_, errs := readAll(t, strings.NewReader("1. e4 "+strings.Repeat("Q", 100_000)+" *\n"))
	if len(errs) != 1 || !errors.Is(errs[0], ErrBadMove) || len(errs[0].Error()) > 200 {
		t.Fatalf("errors %v; want one short unparsable-move error", errs)
	}
}

func TestParseGameMaxPlies(t *testing.T) {
	if g, err := ParseGame("startpos", shuffle(MaxPlies)); err != nil || g.Ply() != MaxPlies {
		t.Fatalf("MaxPlies moves: %v", err)
	}
	_, err := ParseGame("startpos", shuffle(MaxPlies+1))
	var me *MoveError
	if !errors.As(err, &me) || !errors.Is(err, ErrTooLong) || me.Ply != MaxPlies+1 {
		t.Fatalf("MaxPlies+1 moves: %v; want a *MoveError at ply %d wrapping ErrTooLong", err, MaxPlies+1)
	}
}
