package lens

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/lczerolens/lczerolens/internal/board"
	"github.com/lczerolens/lczerolens/internal/model"
)

// Selection is the part of a module's activation an intervention touches: the channels, the squares (in the
// absolute board frame, a1=0..h8=63) and, for attention modules, the heads; a nil set means all of them.
type Selection struct {
	Channels, Squares, Heads []int
}

// Whole reports whether the selection is the whole activation.
func (s Selection) Whole() bool { return s.Channels == nil && s.Squares == nil && s.Heads == nil }

// ParseIndexList parses "0,3,5-7" into the indices it names, each in [0, limit) when limit > 0; "" is nil.
func ParseIndexList(s string, limit int) ([]int, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []int
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		b := a
		if err == nil && isRange {
			b, err = strconv.Atoi(hi)
		}
		if err != nil || a < 0 || b < a || (limit > 0 && b >= limit) {
			if limit > 0 {
				return nil, fmt.Errorf("%q is not an index or range (like 3 or 5-7) below %d", part, limit)
			}
			return nil, fmt.Errorf("%q is not an index or range (like 3 or 5-7)", part)
		}
		for i := a; i <= b; i++ {
			out = append(out, i)
		}
	}
	return out, nil
}

// ParseSquareList parses "e4,d5" (or "all"/"" for nil) into absolute squares.
func ParseSquareList(s string) ([]int, error) {
	if s = strings.TrimSpace(s); s == "" || s == "all" {
		return nil, nil
	}
	var out []int
	for _, part := range strings.Split(s, ",") {
		sq, err := board.ParseSquare(strings.TrimSpace(part))
		if err != nil {
			return nil, fmt.Errorf("%q is not a square like e4", part)
		}
		out = append(out, int(sq))
	}
	return out, nil
}

func checkIndexList(v any) error  { _, err := ParseIndexList(v.(string), 0); return err }
func checkSquareList(v any) error { _, err := ParseSquareList(v.(string)); return err }

// selectionOf reads the channels, squares and heads options.
func selectionOf(v Values) Selection {
	// The options were checked when they were resolved.
	var s Selection
	s.Channels, _ = ParseIndexList(v.GetString("channels"), 0)
	s.Squares, _ = ParseSquareList(v.GetString("squares"))
	s.Heads, _ = ParseIndexList(v.GetString("heads"), 0)
	return s
}

// view is how one position's row of a module's activation is indexed: heads x squares x channels, with
// strides; squares < 0 means the module has no square axis (a vector such as squeeze-excitation's).
type view struct {
	heads, squares, channels  int
	hStride, sStride, cStride int
}

// viewOf describes the row layout of a module tensor of the given batch shape for a batch of n.
func viewOf(shape []int64, n int) view {
	row := 1
	for _, d := range shape {
		row *= int(d)
	}
	row /= n
	switch {
	case len(shape) == 4 && shape[2] == 8 && shape[3] == 8: // [batch,C,8,8]
		return view{heads: 1, squares: 64, channels: int(shape[1]), sStride: 1, cStride: 64}
	case len(shape) == 4 && shape[2] == 64: // [batch,heads,64,X]: attention, query square on axis 2
		x := int(shape[3])
		return view{heads: int(shape[1]), squares: 64, channels: x, hStride: 64 * x, sStride: x, cStride: 1}
	case len(shape) == 3 && shape[1] == 64, len(shape) == 2 && shape[0] == 64*int64(n): // [batch,64,C], [batch*64,C]
		return view{heads: 1, squares: 64, channels: row / 64, sStride: row / 64, cStride: 1}
	}
	return view{heads: 1, squares: -1, channels: row, cStride: 1}
}

// check reports why sel cannot address a module with this view.
func (w view) check(m model.Module, sel Selection) error {
	for _, c := range sel.Channels {
		if c >= w.channels {
			return fmt.Errorf("--channels %d: module %s has %d channels", c, m.Name, w.channels)
		}
	}
	if sel.Squares != nil && w.squares < 0 {
		return fmt.Errorf("--squares: module %s has no square axis (shape %v)", m.Name, m.Shape)
	}
	if sel.Heads != nil && w.heads == 1 && (len(m.Shape) != 4 || m.Shape[2] != 64) {
		return fmt.Errorf("--heads: module %s has no head axis (shape %v); pick attention modules such as encoder0/mha/QK/softmax", m.Name, m.Shape)
	}
	for _, h := range sel.Heads {
		if h >= w.heads {
			return fmt.Errorf("--heads %d: module %s has %d heads", h, m.Name, w.heads)
		}
	}
	return nil
}

// indices lists the row offsets sel covers for batch position i (whose squares are in the planes' frame).
func (w view) indices(sel Selection, b *Batch, i int) []int {
	all := func(n int) []int {
		out := make([]int, n)
		for k := range out {
			out[k] = k
		}
		return out
	}
	hs, cs := sel.Heads, sel.Channels
	if hs == nil {
		hs = all(w.heads)
	}
	if cs == nil {
		cs = all(w.channels)
	}
	ss := []int{0}
	if w.squares > 0 {
		ss = all(64)
		if sel.Squares != nil {
			ss = ss[:0]
			for _, abs := range sel.Squares {
				ss = append(ss, planesSquare(b, i, abs))
			}
		}
	}
	out := make([]int, 0, len(hs)*len(ss)*len(cs))
	for _, h := range hs {
		for _, s := range ss {
			for _, c := range cs {
				out = append(out, h*w.hStride+s*w.sStride+c*w.cStride)
			}
		}
	}
	return out
}

// absSquare is the absolute board square of planes-frame square sq of batch position i: activations are
// in the planes' frame, so undo the canonical transform, then the rank mirror for black.
func absSquare(b *Batch, i, sq int) int {
	abs := int(board.UntransformSquare(board.Square(sq), b.Transform(i)))
	if b.Positions[i].SideToMove() == board.Black {
		abs ^= 56
	}
	return abs
}

// planesSquare is absSquare's inverse.
func planesSquare(b *Batch, i, abs int) int {
	for sq := range 64 {
		if absSquare(b, i, sq) == abs {
			return sq
		}
	}
	return abs
}

// mix returns a copy of the batch tensor clean with the selected part of each position's row taken from
// ref: ref rows per position (len(ref) == len(clean)), or one row shared by all (len(ref) == row).
func mix(clean model.Tensor, ref []float32, w view, sel Selection, b *Batch) model.Tensor {
	bn := b.Len()
	row := len(clean.Data) / bn
	out := model.Tensor{Shape: clean.Shape, Data: append([]float32(nil), clean.Data...)}
	for i := range bn {
		r := ref
		if len(ref) != row {
			r = ref[i*row : (i+1)*row]
		}
		dst := out.Data[i*row : (i+1)*row]
		if sel.Whole() {
			copy(dst, r)
			continue
		}
		for _, k := range w.indices(sel, b, i) {
			dst[k] = r[k]
		}
	}
	return out
}
