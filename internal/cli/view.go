package cli

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strings"

	"github.com/lczerolens/lczerolens/internal/board"
	"github.com/lczerolens/lczerolens/internal/lens"
	"github.com/lczerolens/lczerolens/internal/render"
)

// humanView is what analyse and predict show a person at a terminal: the position as a board, the
// network's top moves and W/D/L, and each lens result that is a board as a grid of values; bigger results
// by shape and range only, since thousands of numbers on a terminal help nobody.
type humanView struct {
	Model    string
	Pos      *board.Position
	Heads    headsJSON
	Lens     string         // "" for none (predict)
	LensOpts map[string]any // the lens's options, shown next to its name
	Results  []lens.BatchResult
	Color    bool   // the terminal shows colour
	Command  string // for the hint: "analyse"
}

// sideName names a colour for people.
func sideName(c board.Color) string {
	if c == board.White {
		return "white"
	}
	return "black"
}

// writeHumanView writes v to w.
func writeHumanView(w io.Writer, v humanView) error {
	var b strings.Builder
	stm := sideName(v.Pos.SideToMove())
	fmt.Fprintf(&b, "position  %s\nmodel     %s\n", v.Pos.FEN(), v.Model)
	if v.Lens != "" {
		b.WriteString("lens      " + v.Lens + "\n")
		if len(v.LensOpts) > 0 {
			keys := make([]string, 0, len(v.LensOpts))
			for k := range v.LensOpts {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			opts := make([]string, len(keys))
			for i, k := range keys {
				opts[i] = fmt.Sprintf("%s=%v", k, v.LensOpts[k])
			}
			writeWrapped(&b, "options   "+strings.Join(opts, ", "), 10)
		}
	}
	b.WriteString("\n")
	if err := render.TextBoard(&b, v.Pos, false); err != nil {
		return err
	}
	fmt.Fprintf(&b, "    %s to move\n\n", stm)
	if len(v.Heads.Moves) == 0 {
		b.WriteString("moves     none (game over)\n")
	} else {
		moves := make([]string, len(v.Heads.Moves))
		for i, m := range v.Heads.Moves {
			moves[i] = fmt.Sprintf("%s %.3f", m.UCI, m.P)
		}
		writeWrapped(&b, "moves     "+strings.Join(moves, ", "), 10)
	}
	if v.Heads.WDL != nil {
		fmt.Fprintf(&b, "W/D/L     %.3f / %.3f / %.3f  (from the side to move's view: %s)\n", v.Heads.WDL[0], v.Heads.WDL[1], v.Heads.WDL[2], stm)
	}
	fmt.Fprintf(&b, "value     %+.4f  (W - L for %s)\n", v.Heads.Value, stm)
	if v.Heads.MLH != nil {
		fmt.Fprintf(&b, "mlh       %.1f plies left\n", *v.Heads.MLH)
	}
	hidden, prevGrid := false, false
	for k, r := range v.Results {
		grid := !r.JSONOnly() && len(r.Shape) == 2 && r.Shape[0] == 8 && r.Shape[1] == 8
		if k == 0 || grid || prevGrid {
			b.WriteString("\n") // summary lines stay together; grids stand apart
		}
		prevGrid = grid
		if r.JSONOnly() {
			fmt.Fprintf(&b, "%s  (structured: not shown)\n", r.Key)
			hidden = true
			continue
		}
		row := r.Row(0)
		mask := noValueMask(v.Results, r.Key, 0, v.Pos)
		if mask != nil {
			row = append([]float32(nil), row...)
			for sq, none := range mask {
				if none {
					row[sq] = float32(math.NaN())
				}
			}
		}
		if len(row) == 1 {
			fmt.Fprintf(&b, "%s  %.6g\n", r.Key, row[0])
			continue
		}
		fmt.Fprintf(&b, "%s %s  %s\n", r.Key, shapeString(r.Shape), rangeString(row))
		if len(r.Shape) == 2 && r.Shape[0] == 8 && r.Shape[1] == 8 {
			if err := render.TextGrid(&b, row, render.TextOptions{Color: v.Color}); err != nil {
				return err
			}
			continue
		}
		hidden = true
	}
	if hidden {
		fmt.Fprintf(&b, "\nResults that are not boards are summarised. Every value: %s ... --format json (or -o FILE)\n"+
			"or --format npy -o DIR; then \"lczerolens render\" draws their boards as SVG.\n", v.Command)
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("%s: write: %w", v.Command, err)
	}
	return nil
}

// noValueMask marks the squares of row i of result key that have no value although they hold a number: the
// squares occlusion did not edit (kings), known from its variants; nil for other results.
func noValueMask(results []lens.BatchResult, key string, i int, pos *board.Position) []bool {
	if key != "heatmap" {
		return nil
	}
	for _, r := range results {
		if r.Key == "variants" && r.JSONOnly() {
			return lens.UneditedSquares(pos, r.JSON[i])
		}
	}
	return nil
}

// svgText is the title and caption of a picture of result key: what it shows (lens, options and target),
// of which network and position, and the range of its values.
func svgText(key, lensName string, lensOpts map[string]any, model, fen string, vals []float32) (string, []string) {
	title := key + " (lens " + lensName + ")"
	var caption []string
	if len(lensOpts) > 0 {
		keys := make([]string, 0, len(lensOpts))
		for k := range lensOpts {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		opts := make([]string, len(keys))
		for i, k := range keys {
			opts[i] = fmt.Sprintf("%s=%v", k, lensOpts[k])
		}
		caption = append(caption, strings.Join(opts, ", "))
	}
	if model != "" {
		caption = append(caption, "model "+model)
	}
	if fen != "" {
		caption = append(caption, "FEN "+fen)
	}
	if vals != nil {
		caption = append(caption, "values "+strings.ReplaceAll(rangeString(vals), "  ", ", "))
	}
	return title, caption
}

// shapeString writes a shape as [112,8,8].
func shapeString(shape []int) string {
	s := make([]string, len(shape))
	for i, d := range shape {
		s[i] = fmt.Sprint(d)
	}
	return "[" + strings.Join(s, ",") + "]"
}

// rangeString summarises values: their range, and how many have no value.
func rangeString(vals []float32) string {
	lo, hi := math.Inf(1), math.Inf(-1)
	bad := 0
	for _, v := range vals {
		f := float64(v)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			bad++
			continue
		}
		lo, hi = math.Min(lo, f), math.Max(hi, f)
	}
	if bad == len(vals) {
		return "no finite value"
	}
	s := fmt.Sprintf("min %.4g  max %.4g", lo, hi)
	if bad > 0 {
		s += fmt.Sprintf("  (%d without a value, shown %s)", bad, "·")
	}
	return s
}
