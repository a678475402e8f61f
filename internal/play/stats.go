package play

import (
	"fmt"
	"io"
	"math"
	"strings"
)

// Tally counts one player's results.
type Tally struct {
	Wins, Draws, Losses int
}

// Games is the number of games counted.
func (t Tally) Games() int { return t.Wins + t.Draws + t.Losses }

// Score is the mean score per game (win 1, draw 1/2).
func (t Tally) Score() float64 {
	if t.Games() == 0 {
		return math.NaN()
	}
	return (float64(t.Wins) + 0.5*float64(t.Draws)) / float64(t.Games())
}

// EloDiff is the logistic Elo difference for a score, -400 log10(1/s - 1): ±Inf at 0 and 1.
func EloDiff(s float64) float64 { return -400 * math.Log10(1/s-1) }

// Elo returns the Elo difference the score implies and its 95% interval, from the normal approximation of
// the mean score with the per-game variance of the observed results (as cutechess-cli and fastchess report
// it): the interval is the Elo of score ± 1.96 standard errors, so it is asymmetric and can be infinite.
func (t Tally) Elo() (elo, lo, hi float64) {
	n := float64(t.Games())
	s := t.Score()
	v := (float64(t.Wins)*(1-s)*(1-s) + float64(t.Draws)*(0.5-s)*(0.5-s) + float64(t.Losses)*s*s) / n
	se := math.Sqrt(v / n)
	return EloDiff(s), EloDiff(math.Max(s-1.96*se, 0)), EloDiff(math.Min(s+1.96*se, 1))
}

// TallyA counts players[0]'s results, overall and with each colour.
func TallyA(recs []*Record) (all, asWhite, asBlack Tally) {
	for _, r := range recs {
		t := &asBlack
		if r.WhiteIsA {
			t = &asWhite
		}
		switch r.ScoreA() {
		case 1:
			t.Wins++
		case 0.5:
			t.Draws++
		default:
			t.Losses++
		}
	}
	all = Tally{asWhite.Wins + asBlack.Wins, asWhite.Draws + asBlack.Draws, asWhite.Losses + asBlack.Losses}
	return all, asWhite, asBlack
}

// WriteTable writes the result table: each player's wins, draws, losses and score, then players[0]'s Elo
// difference over players[1] with its 95% interval, and how the games ended.
func WriteTable(w io.Writer, names [2]string, recs []*Record) error {
	all, white, black := TallyA(recs)
	var b strings.Builder
	width := max(len(names[0]), len(names[1]), 6)
	fmt.Fprintf(&b, "%-*s %6s %6s %6s %6s %7s\n", width, "player", "games", "wins", "draws", "losses", "score")
	for i, t := range []Tally{all, {all.Losses, all.Draws, all.Wins}} {
		fmt.Fprintf(&b, "%-*s %6d %6d %6d %6d %7.3f\n", width, names[i], t.Games(), t.Wins, t.Draws, t.Losses, t.Score())
	}
	fmt.Fprintf(&b, "%s as white %d-%d-%d, as black %d-%d-%d (wins-draws-losses)\n", names[0],
		white.Wins, white.Draws, white.Losses, black.Wins, black.Draws, black.Losses)
	elo, lo, hi := all.Elo()
	fmt.Fprintf(&b, "elo difference %s - %s: %s, 95%% interval [%s, %s]\n", names[0], names[1], fmtElo(elo), fmtElo(lo), fmtElo(hi))
	ends := map[string]int{}
	var order []string
	for _, r := range recs {
		k := r.Termination.String()
		if r.MaxPlies {
			k = "ply limit"
		}
		if ends[k] == 0 {
			order = append(order, k)
		}
		ends[k]++
	}
	var parts []string
	for _, k := range order {
		parts = append(parts, fmt.Sprintf("%s %d", k, ends[k]))
	}
	fmt.Fprintf(&b, "endings: %s\n", strings.Join(parts, ", "))
	_, err := io.WriteString(w, b.String())
	return err
}

func fmtElo(x float64) string {
	switch {
	case math.IsInf(x, 1):
		return "+inf"
	case math.IsInf(x, -1):
		return "-inf"
	case math.IsNaN(x):
		return "n/a"
	}
	return fmt.Sprintf("%+.0f", x)
}
