// Package shape infers the element type and shape of every tensor of an ONNX graph without running it. It is
// the one shape engine of the project: internal/model uses it for module listings, hooks and patch plans, and
// internal/model/autograd plans backward graphs with it.
//
// Dims are symbolic. A dim is a number, or a number times a symbol: the graph inputs' open dims (lc0's
// "batch") are symbols, and so are fresh "?N" names for sizes nothing pins down. Tracking c*batch keeps shapes
// exact through batch folds (Reshape [B,64,C] -> [B*64,C] and back), so one inference serves every batch
// size. Inference.Concrete specialises a shape to one batch size by giving the input symbols a value.
//
// Each op's rule is written once, in infer.go; ops without one leave their outputs unknown (never wrong).
// Ops lists them. Tests in internal/model check them against ONNX Runtime: every rule on small graphs, and
// every tensor of every reference net and of the demo net, at two batch sizes.
package shape

import "fmt"

// Dim is one tensor dimension: the value C when S is empty, else C times the symbol S. Two dims are equal
// exactly when they are known to be, so == compares them.
type Dim struct {
	C int64
	S string
}

// Known returns the dim of fixed size v.
func Known(v int64) Dim { return Dim{C: v} }

// IsKnown reports whether d is a plain number.
func (d Dim) IsKnown() bool { return d.S == "" }

// IsOne reports whether d is the number 1 (which broadcasts).
func (d Dim) IsOne() bool { return d.S == "" && d.C == 1 }

// String writes d as 64, batch or 64*batch.
func (d Dim) String() string {
	if d.S == "" {
		return fmt.Sprint(d.C)
	}
	if d.C == 1 {
		return d.S
	}
	return fmt.Sprintf("%d*%s", d.C, d.S)
}

// fresh returns a symbol no other dim shares: a size inference cannot pin down.
func (f *Inference) fresh() Dim {
	f.nsym++
	return Dim{C: 1, S: fmt.Sprintf("?%d", f.nsym)}
}

// Mul returns a*b, a fresh symbol when both are symbolic.
func (f *Inference) Mul(a, b Dim) Dim {
	switch {
	case a.IsKnown() && b.IsKnown():
		return Known(a.C * b.C)
	case a.IsKnown():
		if a.C == 0 {
			return Known(0)
		}
		return Dim{C: a.C * b.C, S: b.S}
	case b.IsKnown():
		if b.C == 0 {
			return Known(0)
		}
		return Dim{C: a.C * b.C, S: a.S}
	}
	return f.fresh()
}

// Prod returns the product of ds (the element count of a shape).
func (f *Inference) Prod(ds []Dim) Dim {
	p := Known(1)
	for _, d := range ds {
		p = f.Mul(p, d)
	}
	return p
}

// Div divides a by b when the result is exact, else returns a fresh symbol.
func (f *Inference) Div(a, b Dim) Dim {
	switch {
	case b.IsKnown() && b.C != 0 && a.C%b.C == 0:
		return Dim{C: a.C / b.C, S: a.S}
	case !b.IsKnown() && a.S == b.S && b.C != 0 && a.C%b.C == 0:
		return Known(a.C / b.C)
	}
	return f.fresh()
}

// Add returns a+b, a fresh symbol when they do not share a symbol.
func (f *Inference) Add(a, b Dim) Dim {
	switch {
	case a.IsKnown() && b.IsKnown():
		return Known(a.C + b.C)
	case a.S == b.S:
		return Dim{C: a.C + b.C, S: a.S}
	case b == Known(0): // padding or shape arithmetic that leaves the batch as it is
		return a
	case a == Known(0):
		return b
	}
	return f.fresh()
}

func neg(d Dim) Dim { return Dim{C: -d.C, S: d.S} }

// Broadcast applies numpy broadcasting to shapes, trusting the model to be valid where a symbol meets a
// number.
func (f *Inference) Broadcast(shapes ...[]Dim) []Dim {
	r := 0
	for _, s := range shapes {
		r = max(r, len(s))
	}
	out := make([]Dim, r)
	for i := range out {
		out[i] = Known(1)
	}
	for _, s := range shapes {
		off := r - len(s)
		for i, d := range s {
			o := out[off+i]
			switch {
			case d.IsOne():
			case o.IsOne():
				out[off+i] = d
			case o == d:
			case o.IsKnown():
			case d.IsKnown():
				out[off+i] = d
			default:
				out[off+i] = f.fresh()
			}
		}
	}
	return out
}

// NormAxis maps a possibly negative axis into [0, rank).
func NormAxis(a int64, rank int) (int, bool) {
	if a < 0 {
		a += int64(rank)
	}
	if a < 0 || a >= int64(rank) {
		return 0, false
	}
	return int(a), true
}

func clampRange(v, r int64) int64 {
	if v < 0 {
		v += r
	}
	return max(0, min(v, r))
}
