package shape

import (
	"fmt"
	"math"

	"github.com/lczerolens/lczerolens/internal/onnxgraph"
	pb "github.com/lczerolens/lczerolens/internal/onnxpb"
)

// ConvAttrs are a Conv node's geometry with defaults filled in. Inference and the gradient rules read them
// alike, so both agree on what a node computes.
type ConvAttrs struct {
	Strides, Dil, Pads []int64 // Pads: the begin pads of every spatial axis, then the end pads
	AutoPad            string  // "" once stride-1 'same' padding is resolved into Pads
	Group              int64
}

// ConvParams reads n's geometry for sp spatial axes and kernel ks.
func ConvParams(n *pb.NodeProto, sp int, ks []int64) (ConvAttrs, error) {
	ones := func() []int64 {
		o := make([]int64, sp)
		for i := range o {
			o[i] = 1
		}
		return o
	}
	c := ConvAttrs{
		Strides: onnxgraph.AttrIntsOr(n, "strides", ones()),
		Dil:     onnxgraph.AttrIntsOr(n, "dilations", ones()),
		Pads:    onnxgraph.AttrIntsOr(n, "pads", make([]int64, 2*sp)),
		Group:   onnxgraph.AttrIntOr(n, "group", 1),
	}
	if a := onnxgraph.Attr(n, "auto_pad"); a != nil {
		c.AutoPad = string(a.GetS())
		if c.AutoPad == "NOTSET" {
			c.AutoPad = ""
		}
	}
	if len(c.Strides) != sp || len(c.Dil) != sp || len(c.Pads) != 2*sp || len(ks) != sp {
		return c, fmt.Errorf("conv attributes do not match %d spatial dims", sp)
	}
	for i := range sp {
		if c.Strides[i] < 1 || c.Dil[i] < 1 {
			return c, fmt.Errorf("conv strides %v and dilations %v must be positive", c.Strides, c.Dil)
		}
	}
	switch c.AutoPad {
	case "VALID":
		c.Pads = make([]int64, 2*sp)
	case "SAME_UPPER", "SAME_LOWER":
		// Stride-1 'same' padding does not depend on the input size; larger strides do, and are resolved by the
		// caller from static shapes when it needs them.
		for i := range sp {
			if c.Strides[i] != 1 {
				return c, nil
			}
		}
		c.Pads = make([]int64, 2*sp)
		for i := range sp {
			total := c.Dil[i] * (ks[i] - 1)
			small, big := total/2, total-total/2
			if c.AutoPad == "SAME_UPPER" {
				c.Pads[i], c.Pads[i+sp] = small, big
			} else {
				c.Pads[i], c.Pads[i+sp] = big, small
			}
		}
		c.AutoPad = ""
	}
	return c, nil
}

// SliceSpec is a Slice node's constant parameters, one entry per sliced axis, axes normalised.
type SliceSpec struct {
	Axes, Starts, Ends, Steps []int64
}

// SliceParams reads a Slice node's parameters for an input of the given rank; ok is false when they are not
// constants inference knows, or are invalid.
func (f *Inference) SliceParams(n *pb.NodeProto, rank int) (SliceSpec, bool) {
	var s SliceSpec
	get := func(i int) ([]int64, bool, bool) {
		if i >= len(n.GetInput()) || n.GetInput()[i] == "" {
			return nil, true, false
		}
		v, ok := f.Get(n.GetInput()[i]).KnownVals()
		return v, ok, true
	}
	var ok, present bool
	if s.Starts, ok, _ = get(1); !ok || s.Starts == nil {
		return s, false
	}
	if s.Ends, ok, _ = get(2); !ok || len(s.Ends) != len(s.Starts) {
		return s, false
	}
	if s.Axes, ok, present = get(3); !ok {
		return s, false
	}
	if !present {
		for i := range s.Starts {
			s.Axes = append(s.Axes, int64(i))
		}
	}
	if s.Steps, ok, present = get(4); !ok {
		return s, false
	}
	if !present {
		for range s.Starts {
			s.Steps = append(s.Steps, 1)
		}
	}
	if len(s.Axes) != len(s.Starts) || len(s.Steps) != len(s.Starts) {
		return s, false
	}
	for i, a := range s.Axes {
		na, ok := NormAxis(a, rank)
		if !ok || s.Steps[i] == 0 {
			return s, false
		}
		s.Axes[i] = int64(na)
	}
	return s, true
}

// SliceBounds resolves one axis of a slice against its size: the clamped start, end, and output length. With
// an unknown size it succeeds only for the 'whole axis' form (start 0, end past any size, step 1).
func SliceBounds(start, end, step int64, d Dim) (int64, int64, Dim, bool) {
	if !d.IsKnown() {
		if start == 0 && step == 1 && end >= math.MaxInt32 {
			return 0, -1, d, true
		}
		return 0, 0, Dim{}, false
	}
	size := d.C
	if start < 0 {
		start += size
	}
	if end < 0 {
		end += size
	}
	if step > 0 {
		start, end = max(0, min(start, size)), max(0, min(end, size))
		return start, end, Known(max(0, (end-start+step-1)/step)), true
	}
	start, end = max(-1, min(start, size-1)), max(-1, min(end, size-1))
	return start, end, Known(max(0, (start-end-step-1)/(-step))), true
}
