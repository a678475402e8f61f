package render

import (
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/lczerolens/lczerolens/internal/board"
)

// TextOptions say how to draw a board on a terminal.
type TextOptions struct {
	// Color paints each square's background with the colour map (24-bit ANSI escapes), for terminals that
	// show colour; without it the values alone are printed.
	Color bool
	// BlackBottom draws the board from black's side: rank 1 at the top, file h on the left.
	BlackBottom bool
	Colormap    Colormap // "" means Diverging
	// NoValue marks squares shown as having no value, like NaN (see Options.NoValue).
	NoValue []bool
}

// noValue is printed for a square without a value (NaN: a king square of occlusion, say).
const noValue = "·"

// ValueFormat is how TextGrid prints the values of one map: a printf verb of fixed width chosen from the
// largest absolute value, so that every cell has three significant digits of the largest one, and values
// too small or too large for a fixed point are printed in exponent form.
func ValueFormat(values []float32) string {
	m := 0.0
	for _, v := range values {
		if f := math.Abs(float64(v)); !math.IsNaN(f) && !math.IsInf(f, 0) {
			m = math.Max(m, f)
		}
	}
	if m == 0 {
		return "%+7.3f"
	}
	e := int(math.Floor(math.Log10(m)))
	if e < -4 || e > 4 {
		return "%+9.2e"
	}
	digits := min(max(2-e, 0), 6)
	return fmt.Sprintf("%%+%d.%df", max(e, 0)+digits+4, digits)
}

// TextGrid writes an [8,8] map (64 values, a1 first) as a grid of values with rank numbers on both sides
// and file letters above and below, one rank per line, in the orientation asked for.
func TextGrid(w io.Writer, values []float32, o TextOptions) error {
	if len(values) != 64 {
		return fmt.Errorf("render: grid has %d values, want 64 (an [8,8] map, a1 first)", len(values))
	}
	if o.NoValue != nil && len(o.NoValue) != 64 {
		return fmt.Errorf("render: no-value mask has %d squares, want 64", len(o.NoValue))
	}
	shown := values
	if o.NoValue != nil {
		shown = make([]float32, 64)
		for sq, v := range values {
			if o.NoValue[sq] {
				v = float32(math.NaN())
			}
			shown[sq] = v
		}
	}
	format := ValueFormat(shown)
	width := len(fmt.Sprintf(format, 0.0))
	sc := NewScale(o.Colormap, shown)
	var b strings.Builder
	files := func() {
		b.WriteString("   ")
		for col := range 8 {
			f := col
			if o.BlackBottom {
				f = 7 - col
			}
			fmt.Fprintf(&b, " %*c", width, 'a'+f)
		}
		b.WriteString("\n")
	}
	files()
	for row := range 8 {
		rank := 7 - row
		if o.BlackBottom {
			rank = row
		}
		fmt.Fprintf(&b, " %d ", rank+1)
		for col := range 8 {
			file := col
			if o.BlackBottom {
				file = 7 - col
			}
			v := float64(values[rank*8+file])
			if o.NoValue != nil && o.NoValue[rank*8+file] {
				v = math.NaN()
			}
			cell := fmt.Sprintf(format, v)
			switch {
			case math.IsNaN(v) || math.IsInf(v, 0):
				cell = fmt.Sprintf("%*s", width, noValue)
			case v == 0:
				cell = fmt.Sprintf("%*s", width, "0") // the many empty squares of a map, quieter
			}
			b.WriteString(" ")
			if !o.Color {
				b.WriteString(cell)
				continue
			}
			bg := rgb{200, 200, 200}
			if !math.IsNaN(v) && !math.IsInf(v, 0) {
				bg = sc.rgb(v)
			}
			fg := "30" // black text on light squares, white on dark ones
			if 0.2126*bg.r+0.7152*bg.g+0.0722*bg.b < 128 {
				fg = "97"
			}
			fmt.Fprintf(&b, "\x1b[%s;48;2;%d;%d;%dm%s\x1b[0m", fg, int(bg.r), int(bg.g), int(bg.b), cell)
		}
		fmt.Fprintf(&b, "  %d\n", rank+1)
	}
	files()
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("render: write grid: %w", err)
	}
	return nil
}

// pieceLetters are FEN's letters, white upper case.
var pieceLetters = map[board.PieceType]byte{board.Pawn: 'p', board.Knight: 'n', board.Bishop: 'b',
	board.Rook: 'r', board.Queen: 'q', board.King: 'k'}

// TextBoard writes a position's pieces as FEN letters (white upper case, "." for an empty square) with rank
// and file labels.
func TextBoard(w io.Writer, pos *board.Position, blackBottom bool) error {
	var b strings.Builder
	files := "    a b c d e f g h\n"
	if blackBottom {
		files = "    h g f e d c b a\n"
	}
	for row := range 8 {
		rank := 7 - row
		if blackBottom {
			rank = row
		}
		fmt.Fprintf(&b, " %d ", rank+1)
		for col := range 8 {
			file := col
			if blackBottom {
				file = 7 - col
			}
			ch := byte('.')
			if c, pt, ok := pos.PieceAt(board.Square(rank*8 + file)); ok {
				ch = pieceLetters[pt]
				if c == board.White {
					ch -= 'a' - 'A'
				}
			}
			b.WriteByte(' ')
			b.WriteByte(ch)
		}
		b.WriteString("\n")
	}
	b.WriteString(files)
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("render: write board: %w", err)
	}
	return nil
}
